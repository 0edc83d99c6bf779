// Tests of crdt/internal/probe_table.h (kept in crdt/ with the other unit
// tests so that one glob builds them all).

#include "crdt/internal/probe_table.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "crdt/replica_id.h"

namespace converge::crdt::internal {
namespace {

std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

// key 0 marks an empty slot.
struct Slot {
  std::uint64_t key = 0;
  std::uint64_t value = 0;
};

// Well-mixed hashes.
struct MixedTraits {
  static std::uint64_t Hash(const Slot& s) { return Mix64(s.key); }
  static bool Empty(const Slot& s) { return s.key == 0; }
};
// Four home positions for every key: long runs of colliding probes.
struct FewHomesTraits {
  static std::uint64_t Hash(const Slot& s) { return s.key & 3; }
  static bool Empty(const Slot& s) { return s.key == 0; }
};
// Every key has the same hash.
struct OneHomeTraits {
  static std::uint64_t Hash(const Slot&) { return 42; }
  static bool Empty(const Slot& s) { return s.key == 0; }
};
// Homes in the last few positions of any power-of-two table, so probe runs
// wrap around the end: the cyclic case of backward-shift deletion.
struct WrappingTraits {
  static std::uint64_t Hash(const Slot& s) {
    return std::numeric_limits<std::uint64_t>::max() - (s.key % 3);
  }
  static bool Empty(const Slot& s) { return s.key == 0; }
};
// Clustered homes: runs that start at many places and merge.
struct ClusteredTraits {
  static std::uint64_t Hash(const Slot& s) { return s.key / 8; }
  static bool Empty(const Slot& s) { return s.key == 0; }
};

template <class Traits>
using Table = ProbeTable<Slot, Traits>;

template <class Traits>
Slot* FindKey(Table<Traits>& table, std::uint64_t key) {
  return table.Find(Traits::Hash(Slot{key, 0}), [key](const Slot& s) { return s.key == key; });
}

template <class Traits>
bool EraseKey(Table<Traits>& table, std::uint64_t key) {
  return table.Erase(Traits::Hash(Slot{key, 0}), [key](const Slot& s) { return s.key == key; });
}

// Every model entry is found with its value, every absent key in
// [1, key_limit] is not, and ForEach visits exactly the model.
template <class Traits>
testing::AssertionResult Matches(Table<Traits>& table,
                                 const std::unordered_map<std::uint64_t, std::uint64_t>& model,
                                 std::uint64_t key_limit) {
  if (table.size() != model.size()) {
    return testing::AssertionFailure() << "size " << table.size() << " vs " << model.size();
  }
  for (std::uint64_t key = 1; key <= key_limit; ++key) {
    const Slot* slot = FindKey(table, key);
    const auto it = model.find(key);
    if (it == model.end()) {
      if (slot != nullptr) return testing::AssertionFailure() << "erased key " << key << " found";
    } else if (slot == nullptr) {
      return testing::AssertionFailure() << "key " << key << " lost";
    } else if (slot->value != it->second) {
      return testing::AssertionFailure() << "key " << key << " has value " << slot->value;
    }
  }
  std::size_t visited = 0;
  bool all_known = true;
  table.ForEach([&](const Slot& s) {
    ++visited;
    all_known = all_known && model.count(s.key) == 1;
  });
  if (visited != model.size() || !all_known) {
    return testing::AssertionFailure() << "ForEach visited " << visited << " slots";
  }
  if (table.capacity() != 0 &&
      (!std::has_single_bit(table.capacity()) || table.size() * 4 > table.capacity() * 3)) {
    return testing::AssertionFailure()
           << "capacity " << table.capacity() << " for " << table.size();
  }
  return testing::AssertionSuccess();
}

TEST(ProbeTableTest, EmptyTableFindsNothing) {
  Table<MixedTraits> table;
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(FindKey(table, 1), nullptr);
  EXPECT_FALSE(EraseKey(table, 1));
  const Table<MixedTraits>& const_table = table;
  EXPECT_EQ(const_table.Find(0, [](const Slot&) { return true; }), nullptr);
}

TEST(ProbeTableTest, InsertThenFindEveryKey) {
  Table<MixedTraits> table;
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  for (std::uint64_t key = 1; key <= 1000; key += 2) {
    table.Insert(Slot{key, key * 10});
    model[key] = key * 10;
  }
  EXPECT_EQ(table.size(), 500u);
  EXPECT_FALSE(table.empty());
  EXPECT_TRUE(Matches(table, model, 1001));
}

TEST(ProbeTableTest, FindReturnsAMutableSlot) {
  Table<MixedTraits> table;
  table.Insert(Slot{5, 1});
  Slot* slot = FindKey(table, 5);
  ASSERT_NE(slot, nullptr);
  slot->value = 2;
  const Slot* again = FindKey(table, 5);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->value, 2u);
}

TEST(ProbeTableTest, FindAndEraseMatchAmongCollidingSlots) {
  Table<OneHomeTraits> table;
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  for (std::uint64_t key = 1; key <= 200; ++key) {
    table.Insert(Slot{key, key + 7});
    model[key] = key + 7;
  }
  ASSERT_TRUE(Matches(table, model, 201));
  for (std::uint64_t key = 1; key <= 200; key += 2) {
    ASSERT_TRUE(EraseKey(table, key)) << key;
    ASSERT_FALSE(EraseKey(table, key)) << key;
    model.erase(key);
  }
  ASSERT_TRUE(Matches(table, model, 201));
  for (std::uint64_t key = 1; key <= 200; key += 4) {
    table.Insert(Slot{key, 1});
    model[key] = 1;
  }
  EXPECT_TRUE(Matches(table, model, 201));
}

TEST(ProbeTableTest, EraseFromTheMiddleOfWrappingRuns) {
  Table<WrappingTraits> table;
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  // Capacity 8: homes 7, 6 and 5; the run wraps to the front of the table.
  for (std::uint64_t key = 1; key <= 6; ++key) {
    table.Insert(Slot{key, key});
    model[key] = key;
  }
  ASSERT_EQ(table.capacity(), 8u);
  ASSERT_TRUE(Matches(table, model, 10));
  for (std::uint64_t key : {4u, 1u, 6u, 2u, 5u, 3u}) {
    ASSERT_TRUE(EraseKey(table, key));
    model.erase(key);
    ASSERT_TRUE(Matches(table, model, 10)) << "after erasing " << key;
  }
  EXPECT_TRUE(table.empty());
}

TEST(ProbeTableTest, GrowsByDoublingAtThreeQuartersLoad) {
  Table<MixedTraits> table;
  table.Insert(Slot{1, 0});
  EXPECT_EQ(table.capacity(), 8u);
  for (std::uint64_t key = 2; key <= 6; ++key) table.Insert(Slot{key, 0});
  EXPECT_EQ(table.capacity(), 8u);  // 6/8 = 3/4
  table.Insert(Slot{7, 0});
  EXPECT_EQ(table.capacity(), 16u);
}

TEST(ProbeTableTest, ReserveAvoidsGrowth) {
  Table<MixedTraits> table;
  table.Reserve(100);
  const std::size_t capacity = table.capacity();
  EXPECT_TRUE(std::has_single_bit(capacity));
  EXPECT_GE(capacity * 3, 100u * 4);
  for (std::uint64_t key = 1; key <= 100; ++key) table.Insert(Slot{key, key});
  EXPECT_EQ(table.capacity(), capacity);
  table.Reserve(10);  // never shrinks
  EXPECT_EQ(table.capacity(), capacity);
  for (std::uint64_t key = 1; key <= 100; ++key) ASSERT_NE(FindKey(table, key), nullptr);
}

TEST(ProbeTableTest, ClearReleasesEverything) {
  Table<MixedTraits> table;
  for (std::uint64_t key = 1; key <= 50; ++key) table.Insert(Slot{key, key});
  table.Clear();
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(table.heap_bytes(), 0u);
  EXPECT_EQ(FindKey(table, 3), nullptr);
  table.Insert(Slot{3, 9});
  const Slot* slot = FindKey(table, 3);
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(slot->value, 9u);
}

// Randomized insert/erase workload against std::unordered_map, for hashes
// from well mixed to fully colliding.
template <class Traits>
class ProbeTableWorkloadTest : public testing::Test {};

using AllTraits =
    testing::Types<MixedTraits, FewHomesTraits, OneHomeTraits, WrappingTraits, ClusteredTraits>;
TYPED_TEST_SUITE(ProbeTableWorkloadTest, AllTraits);

TYPED_TEST(ProbeTableWorkloadTest, BackwardShiftDeletionMatchesUnorderedMap) {
  std::mt19937_64 rng(TestSeed(9001));
  Table<TypeParam> table;
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  // Few keys for the fully colliding hash, whose operations are linear.
  const std::uint64_t key_limit = std::is_same_v<TypeParam, OneHomeTraits> ? 48 : 400;
  for (std::uint64_t step = 0; step < 6000; ++step) {
    const std::uint64_t key = rng() % key_limit + 1;
    // Bias towards growth in the first half and shrinkage in the second, so
    // the table passes through every load.
    const bool insert = (rng() % 100) < (step < 3000 ? 65u : 35u);
    if (insert) {
      if (model.count(key) == 0) {
        table.Insert(Slot{key, step + 1});
        model[key] = step + 1;
      } else {
        Slot* slot = FindKey(table, key);
        ASSERT_NE(slot, nullptr) << "step " << step;
        slot->value = step + 1;
        model[key] = step + 1;
      }
    } else {
      ASSERT_EQ(EraseKey(table, key), model.erase(key) == 1) << "step " << step;
    }
    if (step % 7 == 0 || !insert) {
      ASSERT_TRUE(Matches(table, model, key_limit + 1)) << "step " << step;
    }
  }
  while (!model.empty()) {
    const std::uint64_t key = model.begin()->first;
    ASSERT_TRUE(EraseKey(table, key));
    model.erase(key);
    ASSERT_TRUE(Matches(table, model, key_limit + 1));
  }
  EXPECT_TRUE(table.empty());
}

}  // namespace
}  // namespace converge::crdt::internal
