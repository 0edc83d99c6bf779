// The README's first example, compiled and run, so the README cannot drift
// from the API.

#include <gtest/gtest.h>

#include <string>

#include "crdt/crdt.h"

namespace {

using converge::crdt::OrSet;
using converge::crdt::ReplicaId;

TEST(ReadmeExample, TwoReplicasOfAnOrSetConverge) {
  const ReplicaId alice{1}, bob{2};
  OrSet<std::string> a, b;

  auto d1 = a.Add(alice, "apple");
  auto d2 = b.Add(bob, "pear");
  b.Join(d1);
  a.Join(d2);

  auto d3 = a.Remove("apple");
  auto d4 = b.Add(bob, "apple");
  b.Join(d3);
  a.Join(d4);

  EXPECT_EQ(a, b);
  EXPECT_TRUE(a.Contains("apple"));
  EXPECT_EQ(a.size(), 2u);
}

}  // namespace
