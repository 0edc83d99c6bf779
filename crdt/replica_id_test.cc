#include "crdt/replica_id.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <type_traits>
#include <unordered_set>

namespace converge::crdt {
namespace {

TEST(ReplicaIdTest, IsExplicitlyConstructibleOnly) {
  static_assert(std::is_constructible_v<ReplicaId, std::uint64_t>);
  static_assert(!std::is_convertible_v<std::uint64_t, ReplicaId>);
  EXPECT_EQ(ReplicaId{7}.value(), 7u);
  EXPECT_LT(ReplicaId{1}, ReplicaId{2});
}

TEST(DotTest, OrdersByReplicaThenCounter) {
  EXPECT_LT((Dot{ReplicaId{1}, 9}), (Dot{ReplicaId{2}, 1}));
  EXPECT_LT((Dot{ReplicaId{1}, 1}), (Dot{ReplicaId{1}, 2}));
  std::ostringstream os;
  os << Dot{ReplicaId{3}, 4};
  EXPECT_EQ(os.str(), "(r3,4)");
}

TEST(DotTest, HashSpreadsNeighbouringDots) {
  std::unordered_set<std::size_t> hashes;
  for (std::uint64_t r = 0; r < 64; ++r) {
    for (std::uint64_t c = 1; c <= 64; ++c) hashes.insert(std::hash<Dot>{}(Dot{ReplicaId{r}, c}));
  }
  EXPECT_EQ(hashes.size(), 64u * 64u);
}

}  // namespace
}  // namespace converge::crdt
