#include "crdt/or_set.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};

using StringSet = OrSet<std::string>;
using Strings = std::vector<std::string>;

// The API contract, exactly.
static_assert(std::is_constructible_v<ReplicaId, std::uint64_t>);
static_assert(!std::is_convertible_v<std::uint64_t, ReplicaId>, "ReplicaId must be explicit");
static_assert(
    std::is_same_v<decltype(&StringSet::Add), StringSet (StringSet::*)(ReplicaId, std::string)>);
static_assert(
    std::is_same_v<decltype(std::declval<StringSet&>().Remove(std::string())), StringSet>);
static_assert(
    std::is_same_v<decltype(std::declval<StringSet&>().Remove(std::string(), CausalContext())),
                   StringSet>);
static_assert(
    std::is_same_v<decltype(&StringSet::Contains), bool (StringSet::*)(const std::string&) const>);
static_assert(std::is_same_v<decltype(&StringSet::Join), void (StringSet::*)(const StringSet&)>);
static_assert(std::is_same_v<decltype(&StringSet::size), std::size_t (StringSet::*)() const>);
static_assert(std::is_same_v<decltype(&StringSet::Elements),
                             std::vector<std::string> (StringSet::*)() const>);
static_assert(  // NOLINTNEXTLINE(misc-redundant-expression): two operands of one type
    std::is_same_v<decltype(std::declval<const StringSet&>() == std::declval<const StringSet&>()),
                   bool>);
static_assert(std::is_same_v<decltype(std::declval<const StringSet&>().IsBottom()), bool>);

std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

template <class T>
OrSet<T> Joined(OrSet<T> a, const OrSet<T>& b) {
  a.Join(b);
  return a;
}

TEST(OrSetTest, DefaultIsEmptyBottom) {
  const StringSet s;
  EXPECT_TRUE(s.IsBottom());
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(s.Elements().empty());
  EXPECT_FALSE(s.Contains("x"));
}

TEST(OrSetTest, AddedElementsAreContainedAndListedSorted) {
  StringSet s;
  s.Add(kA, "pear");
  s.Add(kB, "apple");
  s.Add(kA, "fig");
  s.Add(kA, "apple");  // again: still one element
  EXPECT_EQ(s.size(), 3u);
  EXPECT_TRUE(s.Contains("apple"));
  EXPECT_TRUE(s.Contains("fig"));
  EXPECT_FALSE(s.Contains("plum"));
  EXPECT_EQ(s.Elements(), (Strings{"apple", "fig", "pear"}));

  Strings visited;
  s.ForEach([&](const std::string& e) { visited.push_back(e); });
  std::sort(visited.begin(), visited.end());
  EXPECT_EQ(visited, s.Elements());
}

TEST(OrSetTest, AddReturnsADeltaWithJustThatElement) {
  StringSet s;
  s.Add(kA, "pear");
  const StringSet delta = s.Add(kA, "apple");
  EXPECT_EQ(delta.Elements(), Strings{"apple"});
  EXPECT_EQ(delta.context().DotCount(), 1u);
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 2}));
  StringSet other;
  other.Join(delta);
  EXPECT_TRUE(other.Contains("apple"));
  EXPECT_FALSE(other.Contains("pear"));
}

TEST(OrSetTest, RemoveReturnsADeltaThatRemovesElsewhere) {
  StringSet a;
  a.Add(kA, "apple");
  a.Add(kA, "pear");
  StringSet b = a;
  const StringSet delta = a.Remove("apple");
  EXPECT_FALSE(a.Contains("apple"));
  EXPECT_TRUE(a.Contains("pear"));
  EXPECT_TRUE(delta.empty());
  EXPECT_FALSE(delta.IsBottom());
  b.Join(delta);
  EXPECT_EQ(b.Elements(), Strings{"pear"});
  EXPECT_EQ(b, a);
}

TEST(OrSetTest, RemoveOfAnAbsentElementReturnsBottom) {
  StringSet s;
  EXPECT_TRUE(s.Remove("ghost").IsBottom());
  s.Add(kA, "apple");
  s.Remove("apple");
  const StringSet before = s;
  const StringSet delta = s.Remove("apple");
  EXPECT_TRUE(delta.IsBottom());
  EXPECT_TRUE(s.Remove("ghost").IsBottom());
  EXPECT_EQ(s, before);
}

TEST(OrSetTest, ReAddReplacesTheElementsDots) {
  StringSet s;
  for (int i = 0; i < 1000; ++i) s.Add(kA, "apple");
  const DotSet* dots = s.store().Find("apple");
  ASSERT_NE(dots, nullptr);
  ASSERT_EQ(dots->size(), 1u);
  EXPECT_EQ(dots->dots()[0], (Dot{kA, 1000}));
  ASSERT_EQ(s.context().vector().size(), 1u);
  EXPECT_EQ(s.context().vector()[0].replica, kA);
  EXPECT_EQ(s.context().vector()[0].counter, 1000u);
  EXPECT_TRUE(s.context().cloud().empty());
}

TEST(OrSetTest, ReAddByAnotherReplicaSupersedesTheObservedDots) {
  StringSet a;
  a.Add(kA, "apple");
  StringSet b = a;
  const StringSet delta = b.Add(kB, "apple");
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 1}));  // the dot it replaces
  EXPECT_TRUE(delta.context().Contains(Dot{kB, 1}));
  EXPECT_EQ(delta.context().DotCount(), 2u);
  a.Join(delta);
  const DotSet* dots = a.store().Find("apple");
  ASSERT_NE(dots, nullptr);
  EXPECT_EQ(dots->size(), 1u);
  EXPECT_TRUE(dots->Contains(Dot{kB, 1}));
  EXPECT_EQ(a, b);
}

TEST(OrSetTest, DeltaOfOneAddIntoALargeSetIsSmall) {
  OrSet<int> s;
  for (int i = 0; i < 100'000; ++i) s.Add(kA, i);
  ASSERT_EQ(s.size(), 100'000u);
  EXPECT_TRUE(s.context().cloud().empty());
  OrSet<int> replica = s;  // another replica, in sync before the deltas

  const OrSet<int> added = s.Add(kA, 100'000);
  EXPECT_EQ(added.size(), 1u);
  EXPECT_TRUE(added.Contains(100'000));
  EXPECT_LE(added.context().DotCount(), 2u);

  const OrSet<int> readded = s.Add(kB, 50'000);
  EXPECT_EQ(readded.size(), 1u);
  EXPECT_LE(readded.context().DotCount(), 2u);

  const OrSet<int> removed = s.Remove(7);
  EXPECT_TRUE(removed.empty());
  EXPECT_EQ(removed.context().DotCount(), 1u);

  // The small deltas have the effect of the operations on a large replica,
  // which meanwhile re-added 7 itself (add wins).
  replica.Add(kC, 7);
  OrSet<int> expected = replica;
  expected.Join(s);
  replica.Join(added);
  replica.Join(readded);
  replica.Join(removed);
  EXPECT_TRUE(replica.Contains(100'000));
  EXPECT_TRUE(replica.Contains(7));
  const DotSet* readded_dots = replica.store().Find(50'000);
  ASSERT_NE(readded_dots, nullptr);
  EXPECT_TRUE(readded_dots->Contains(Dot{kB, 1}));
  EXPECT_EQ(replica.size(), 100'001u);
  EXPECT_EQ(replica, expected);
}

TEST(OrSetTest, JoinIsIdempotentCommutativeAndAssociative) {
  StringSet a;
  a.Add(kA, "apple");
  a.Add(kA, "pear");
  StringSet b = a;
  StringSet c;
  a.Remove("pear");
  a.Add(kA, "fig");
  b.Add(kB, "plum");
  b.Remove("apple");
  c.Add(kC, "apple");
  c.Add(kC, "kiwi");

  EXPECT_EQ(Joined(a, a), a);
  EXPECT_EQ(Joined(a, b), Joined(b, a));
  EXPECT_EQ(Joined(Joined(a, b), c), Joined(a, Joined(b, c)));
  const StringSet all = Joined(Joined(a, b), c);
  // apple: removed by b, but c's concurrent add survives; pear: removed by a.
  EXPECT_EQ(all.Elements(), (Strings{"apple", "fig", "kiwi", "plum"}));
  EXPECT_EQ(Joined(all, StringSet{}), all);
}

TEST(OrSetTest, ClearRemovesWhatItObserved) {
  StringSet a;
  a.Add(kA, "apple");
  a.Add(kA, "pear");
  StringSet b = a;
  const StringSet cleared = a.Clear();
  const StringSet concurrent = b.Add(kB, "plum");
  EXPECT_TRUE(a.empty());
  a.Join(concurrent);
  b.Join(cleared);
  EXPECT_EQ(a.Elements(), Strings{"plum"});
  EXPECT_EQ(a, b);
}

// Cart semantics (docs/semantics.md), on the set of items.

TEST(OrSetTest, ConcurrentAddAndRemoveOfTheSameItemAddWins) {
  StringSet a;
  a.Add(kA, "apple");
  StringSet b = a;
  const StringSet removal = a.Remove("apple");
  const StringSet addition = b.Add(kB, "apple");  // concurrent with the remove
  a.Join(addition);
  b.Join(removal);
  EXPECT_TRUE(a.Contains("apple"));
  EXPECT_TRUE(b.Contains("apple"));
  EXPECT_EQ(a, b);

  // Also when the adding replica had never seen the item.
  StringSet c;
  const StringSet fresh = c.Add(kC, "apple");
  StringSet d = b;
  const StringSet removal_d = d.Remove("apple");
  EXPECT_TRUE(Joined(Joined(d, fresh), removal_d).Contains("apple"));
  EXPECT_TRUE(Joined(Joined(c, removal_d), d).Contains("apple"));
}

TEST(OrSetTest, RemoveAfterObservingStaysRemoved) {
  StringSet a;
  const StringSet addition = a.Add(kA, "apple");
  StringSet b;
  b.Join(addition);
  const StringSet removal = b.Remove("apple");
  a.Join(removal);
  EXPECT_FALSE(a.Contains("apple"));
  // Redelivery of the add, or a full-state exchange, does not resurrect it.
  a.Join(addition);
  b.Join(addition);
  a.Join(b);
  b.Join(a);
  EXPECT_FALSE(a.Contains("apple"));
  EXPECT_FALSE(b.Contains("apple"));
  EXPECT_EQ(a, b);
}

TEST(OrSetTest, RemoveDeltaJoinedBeforeTheAddDeltaAtAThirdReplicaStaysRemoved) {
  StringSet a;
  const StringSet addition = a.Add(kA, "apple");
  StringSet b;
  b.Join(addition);
  const StringSet removal = b.Remove("apple");
  StringSet c;
  c.Join(removal);  // out of causal order
  EXPECT_FALSE(c.Contains("apple"));
  c.Join(addition);
  EXPECT_FALSE(c.Contains("apple"));
  c.Join(a);
  EXPECT_FALSE(c.Contains("apple"));
  a.Join(removal);
  EXPECT_EQ(c, a);
}

TEST(OrSetTest, ConcurrentRemovesAndAddsOnALargeSetConverge) {
  OrSet<int> a;
  for (int i = 0; i < 50; ++i) a.Add(kA, i);
  OrSet<int> b = a;
  std::vector<OrSet<int>> a_deltas;
  std::vector<OrSet<int>> b_deltas;
  b_deltas.reserve(10);
  for (int i = 0; i < 10; ++i) b_deltas.push_back(b.Remove(i));
  a_deltas.push_back(a.Add(kA, 3));  // concurrent re-adds of removed items
  a_deltas.push_back(a.Add(kA, 7));
  a_deltas.push_back(a.Add(kA, 100));
  a_deltas.push_back(a.Remove(20));

  OrSet<int> a_full = a;
  a_full.Join(b);
  OrSet<int> a_by_delta = a;
  for (const auto& d : b_deltas) a_by_delta.Join(d);
  OrSet<int> b_by_delta = b;
  for (const auto& d : a_deltas) b_by_delta.Join(d);
  EXPECT_EQ(a_full, a_by_delta);
  EXPECT_EQ(a_full, b_by_delta);
  std::vector<int> expected = {3, 7};
  for (int i = 10; i < 50; ++i) {
    if (i != 20) expected.push_back(i);
  }
  expected.push_back(100);
  EXPECT_EQ(a_full.Elements(), expected);
}

TEST(OrSetTest, ReplicasExchangingDeltasInAnyOrderConverge) {
  const std::uint64_t seed = TestSeed(2718);
  std::mt19937_64 rng(seed);
  constexpr int kReplicas = 3;
  std::vector<OrSet<int>> replicas(kReplicas);
  std::vector<OrSet<int>> deltas;
  for (int step = 0; step < 600; ++step) {
    const auto r = static_cast<std::size_t>(rng() % kReplicas);
    const int element = static_cast<int>(rng() % 30);
    OrSet<int> delta =
        rng() % 3 == 0 ? replicas[r].Remove(element) : replicas[r].Add(ReplicaId{r + 1}, element);
    // Joining the delta into a copy of the state before has the effect of
    // the mutation (checked through the state after it).
    OrSet<int> again = replicas[r];
    again.Join(delta);
    ASSERT_EQ(again, replicas[r]) << "seed " << seed << " step " << step;
    deltas.push_back(std::move(delta));
    // Deliver some earlier delta to some replica, possibly again.
    if (!deltas.empty() && rng() % 2 == 0) {
      const auto to = static_cast<std::size_t>(rng() % kReplicas);
      replicas[to].Join(deltas[rng() % deltas.size()]);
    }
  }
  // Everyone receives every delta, in its own random order.
  OrSet<int> joined_states;
  for (auto& replica : replicas) {
    std::vector<std::size_t> order(deltas.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (const std::size_t i : order) replica.Join(deltas[i]);
  }
  for (const auto& replica : replicas) joined_states.Join(replica);
  for (const auto& replica : replicas) {
    EXPECT_EQ(replica, replicas[0]) << "seed " << seed;
    EXPECT_EQ(replica, joined_states) << "seed " << seed;
  }
}

}  // namespace
}  // namespace converge::crdt
