// Two replicas of a shopping list, written apart and reconciled by
// exchanging the deltas their mutators return: the smallest program that
// uses converge as an installed package. Exits non-zero, saying why, if the
// replicas do not converge to the expected set.

#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "crdt/crdt.h"

namespace {

using converge::crdt::OrSet;
using converge::crdt::ReplicaId;
using List = OrSet<std::string>;

int failures = 0;

std::string Show(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += items[i];
  }
  return out + "}";
}

void Expect(bool ok, const std::string& what, const List& replica) {
  if (ok) return;
  ++failures;
  std::cerr << "consumer: FAILED: " << what << " (replica holds " << Show(replica.Elements())
            << ")\n";
}

}  // namespace

int main() {
  const ReplicaId alice_id{1};
  const ReplicaId bob_id{2};
  List alice;
  List bob;

  // Each replica writes on its own and keeps the deltas to ship.
  std::vector<List> to_bob;
  std::vector<List> to_alice;
  to_bob.push_back(alice.Add(alice_id, "apple"));
  to_bob.push_back(alice.Add(alice_id, "bread"));
  to_alice.push_back(bob.Add(bob_id, "cheese"));
  to_alice.push_back(bob.Add(bob_id, "dates"));
  Expect(!bob.Contains("apple"), "bob sees apple before any exchange", bob);

  // Bob receives alice's adds, then removes "apple", which he has now observed.
  for (const List& delta : to_bob) bob.Join(delta);
  Expect(bob.Contains("apple"), "bob has apple after joining alice's deltas", bob);
  to_alice.push_back(bob.Remove("apple"));

  // Alice receives bob's adds and his remove; one delta arrives twice.
  for (const List& delta : to_alice) alice.Join(delta);
  alice.Join(to_alice.front());

  const std::vector<std::string> expected = {"bread", "cheese", "dates"};
  Expect(alice == bob,
         "alice and bob differ after exchanging deltas: bob holds " + Show(bob.Elements()), alice);
  Expect(!alice.Contains("apple"), "apple is back after bob removed it", alice);
  Expect(alice.Contains("bread") && alice.Contains("cheese") && alice.Contains("dates"),
         "an added item is missing", alice);
  Expect(alice.size() == expected.size(), "size() is not 3", alice);
  Expect(alice.Elements() == expected, "Elements() is not " + Show(expected), alice);

  if (failures > 0) {
    std::cerr << "consumer: " << failures << " check(s) failed\n";
    return EXIT_FAILURE;
  }
  std::cout << "consumer: ok, both replicas hold " << Show(alice.Elements()) << "\n";
  return EXIT_SUCCESS;
}
