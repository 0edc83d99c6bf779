// Tests of crdt/internal/inline_vector.h (kept in crdt/ with the other unit
// tests so that one glob builds them all).

#include "crdt/internal/inline_vector.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <random>
#include <utility>
#include <vector>

#include "crdt/replica_id.h"

namespace converge::crdt::internal {
namespace {

using IntVector = InlineVector<int>;

std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

std::vector<int> Contents(const IntVector& v) { return {v.begin(), v.end()}; }

IntVector Of(std::initializer_list<int> values) { return IntVector(values); }

TEST(InlineVectorTest, DefaultIsEmptyAndAllocatesNothing) {
  const IntVector v;
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(v.size(), 0u);
  EXPECT_EQ(v.begin(), v.end());
  EXPECT_EQ(v.heap_bytes(), 0u);
  EXPECT_TRUE(v.span().empty());
}

TEST(InlineVectorTest, OneElementIsStoredInline) {
  IntVector v;
  v.push_back(7);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_FALSE(v.empty());
  EXPECT_EQ(v.heap_bytes(), 0u);
  EXPECT_EQ(v.front(), 7);
  EXPECT_EQ(v.back(), 7);
  EXPECT_EQ(v[0], 7);
  EXPECT_EQ(v.end() - v.begin(), 1);
  v[0] = 9;
  EXPECT_EQ(Contents(v), std::vector<int>{9});
}

TEST(InlineVectorTest, SecondElementMovesEverythingToTheHeap) {
  IntVector v;
  v.push_back(1);
  v.push_back(2);
  EXPECT_GT(v.heap_bytes(), 0u);
  EXPECT_EQ(Contents(v), (std::vector<int>{1, 2}));
  for (int i = 3; i <= 100; ++i) v.push_back(i);
  ASSERT_EQ(v.size(), 100u);
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], static_cast<int>(i) + 1);
  EXPECT_EQ(v.span().size(), 100u);
  EXPECT_EQ(v.span().data(), v.data());
}

TEST(InlineVectorTest, InsertAtAnyPosition) {
  IntVector v;
  v.insert(0, 5);  // empty -> inline
  v.insert(0, 3);  // in front of the inline element
  EXPECT_EQ(Contents(v), (std::vector<int>{3, 5}));
  v.insert(1, 4);
  v.insert(3, 6);
  v.insert(0, 1);
  EXPECT_EQ(Contents(v), (std::vector<int>{1, 3, 4, 5, 6}));

  IntVector w;
  w.insert(0, 5);
  w.insert(1, 8);  // after the inline element
  EXPECT_EQ(Contents(w), (std::vector<int>{5, 8}));
}

TEST(InlineVectorTest, EraseSingleElement) {
  IntVector v = Of({1, 2, 3, 4});
  v.erase(1);
  EXPECT_EQ(Contents(v), (std::vector<int>{1, 3, 4}));
  v.erase(2);
  EXPECT_EQ(Contents(v), (std::vector<int>{1, 3}));
  v.erase(0);
  EXPECT_EQ(Contents(v), std::vector<int>{3});
  EXPECT_EQ(v.front(), 3);
  v.erase(0);
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(v.begin(), v.end());
  // Usable again after emptying from the heap.
  v.push_back(8);
  v.push_back(9);
  EXPECT_EQ(Contents(v), (std::vector<int>{8, 9}));

  IntVector inline_one = Of({5});
  inline_one.erase(0);
  EXPECT_TRUE(inline_one.empty());
  inline_one.push_back(6);
  EXPECT_EQ(Contents(inline_one), std::vector<int>{6});
}

TEST(InlineVectorTest, EraseRange) {
  IntVector v = Of({0, 1, 2, 3, 4, 5});
  v.erase(1, 2);
  EXPECT_EQ(Contents(v), (std::vector<int>{0, 3, 4, 5}));
  v.erase(2, 0);
  EXPECT_EQ(Contents(v), (std::vector<int>{0, 3, 4, 5}));
  v.erase(2, 2);  // up to the end
  EXPECT_EQ(Contents(v), (std::vector<int>{0, 3}));
  v.erase(0, 2);
  EXPECT_TRUE(v.empty());

  IntVector inline_one = Of({5});
  inline_one.erase(0, 0);
  EXPECT_EQ(Contents(inline_one), std::vector<int>{5});
  inline_one.erase(0, 1);
  EXPECT_TRUE(inline_one.empty());
  IntVector empty;
  empty.erase(0, 0);
  EXPECT_TRUE(empty.empty());
}

TEST(InlineVectorTest, EraseIfKeepsOrderAndCountsRemovals) {
  IntVector v = Of({1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(v.erase_if([](int x) { return x % 2 == 0; }), 3u);
  EXPECT_EQ(Contents(v), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(v.erase_if([](int) { return false; }), 0u);
  EXPECT_EQ(v.erase_if([](int) { return true; }), 4u);
  EXPECT_TRUE(v.empty());

  IntVector inline_one = Of({4});
  EXPECT_EQ(inline_one.erase_if([](int x) { return x == 5; }), 0u);
  EXPECT_EQ(Contents(inline_one), std::vector<int>{4});
  EXPECT_EQ(inline_one.erase_if([](int x) { return x == 4; }), 1u);
  EXPECT_TRUE(inline_one.empty());
  EXPECT_EQ(inline_one.erase_if([](int) { return true; }), 0u);
}

TEST(InlineVectorTest, CopiesAreDeepAndIndependent) {
  const IntVector heap = Of({1, 2, 3});
  IntVector heap_copy = heap;
  heap_copy[0] = 10;
  heap_copy.push_back(4);
  EXPECT_EQ(Contents(heap), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(Contents(heap_copy), (std::vector<int>{10, 2, 3, 4}));

  const IntVector one = Of({5});
  IntVector one_copy = one;
  one_copy[0] = 6;
  EXPECT_EQ(Contents(one), std::vector<int>{5});
  EXPECT_EQ(Contents(one_copy), std::vector<int>{6});
  EXPECT_EQ(one_copy.heap_bytes(), 0u);
}

TEST(InlineVectorTest, CopyAssignmentBetweenInlineAndHeap) {
  IntVector v = Of({1, 2, 3});
  v = Of({9});  // heap <- inline (move)
  EXPECT_EQ(Contents(v), std::vector<int>{9});
  const IntVector one = Of({4});
  IntVector w = Of({1, 2, 3});
  w = one;  // heap <- inline (copy)
  EXPECT_EQ(Contents(w), std::vector<int>{4});
  w.push_back(5);
  EXPECT_EQ(Contents(w), (std::vector<int>{4, 5}));
  const IntVector many = Of({6, 7, 8});
  IntVector x = Of({1});
  x = many;  // inline <- heap
  EXPECT_EQ(Contents(x), (std::vector<int>{6, 7, 8}));
  const IntVector empty;
  x = empty;
  EXPECT_TRUE(x.empty());
  IntVector& alias = w;
  w = alias;  // self-assignment
  EXPECT_EQ(Contents(w), (std::vector<int>{4, 5}));
}

TEST(InlineVectorTest, MoveTransfersContentsAndEmptiesTheSource) {
  IntVector heap = Of({1, 2, 3});
  IntVector moved(std::move(heap));
  EXPECT_EQ(Contents(moved), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(heap.empty());  // NOLINT(bugprone-use-after-move): documented state
  heap.push_back(4);          // the moved-from vector is reusable
  EXPECT_EQ(Contents(heap), std::vector<int>{4});

  IntVector one = Of({5});
  IntVector target = Of({7, 8});
  target = std::move(one);
  EXPECT_EQ(Contents(target), std::vector<int>{5});
  EXPECT_TRUE(one.empty());  // NOLINT(bugprone-use-after-move)

  IntVector source = Of({1, 2});
  IntVector inline_target = Of({3});
  inline_target = std::move(source);
  EXPECT_EQ(Contents(inline_target), (std::vector<int>{1, 2}));
}

TEST(InlineVectorTest, ShrinkToFitReturnsToInlineStorage) {
  IntVector v = Of({1, 2, 3});
  v.erase(0, 2);
  EXPECT_GT(v.heap_bytes(), 0u);
  v.shrink_to_fit();
  EXPECT_EQ(v.heap_bytes(), 0u);
  EXPECT_EQ(Contents(v), std::vector<int>{3});
  v.push_back(4);
  EXPECT_EQ(Contents(v), (std::vector<int>{3, 4}));

  IntVector emptied = Of({1, 2});
  emptied.erase(0, 2);
  emptied.shrink_to_fit();
  EXPECT_TRUE(emptied.empty());
  EXPECT_EQ(emptied.heap_bytes(), 0u);

  IntVector many;
  many.reserve(64);
  for (int i = 0; i < 10; ++i) many.push_back(i);
  const std::size_t before = many.heap_bytes();
  many.shrink_to_fit();
  EXPECT_LT(many.heap_bytes(), before);
  EXPECT_GE(many.heap_bytes(), 10 * sizeof(int));
  EXPECT_EQ(many.size(), 10u);
  EXPECT_EQ(many.back(), 9);

  IntVector inline_one = Of({5});
  inline_one.shrink_to_fit();
  EXPECT_EQ(Contents(inline_one), std::vector<int>{5});

  // Capacity reserved while empty, then one element stored inline.
  IntVector reserved;
  reserved.reserve(32);
  reserved.push_back(7);
  reserved.shrink_to_fit();
  EXPECT_EQ(reserved.heap_bytes(), 0u);
  EXPECT_EQ(Contents(reserved), std::vector<int>{7});
}

TEST(InlineVectorTest, ClearEmptiesBothForms) {
  IntVector heap = Of({1, 2, 3});
  heap.clear();
  EXPECT_TRUE(heap.empty());
  heap.push_back(1);
  EXPECT_EQ(Contents(heap), std::vector<int>{1});
  heap.clear();
  EXPECT_TRUE(heap.empty());
}

TEST(InlineVectorTest, ReserveKeepsContents) {
  IntVector v = Of({5});
  v.reserve(1);
  EXPECT_EQ(v.heap_bytes(), 0u);
  v.reserve(16);
  EXPECT_GE(v.heap_bytes(), 16 * sizeof(int));
  EXPECT_EQ(Contents(v), std::vector<int>{5});
  for (int i = 0; i < 15; ++i) v.push_back(i);
  EXPECT_EQ(v.size(), 16u);
  EXPECT_EQ(v.front(), 5);
  EXPECT_EQ(v.back(), 14);
}

TEST(InlineVectorTest, EqualityComparesContentsNotStorage) {
  IntVector heap_one = Of({1, 2});
  heap_one.erase(1);  // one element, still on the heap
  EXPECT_EQ(heap_one, Of({1}));
  EXPECT_NE(heap_one, Of({2}));
  EXPECT_NE(heap_one, Of({1, 2}));
  EXPECT_EQ(IntVector{}, Of({}));
  EXPECT_NE(IntVector{}, Of({0}));
}

TEST(InlineVectorTest, HoldsTrivialStructs) {
  InlineVector<Dot> v{Dot{ReplicaId{2}, 2}, Dot{ReplicaId{3}, 3}, Dot{ReplicaId{4}, 4}};
  v.insert(0, Dot{ReplicaId{1}, 5});
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[0], (Dot{ReplicaId{1}, 5}));
  EXPECT_EQ(v[1], (Dot{ReplicaId{2}, 2}));
  EXPECT_EQ(v.back(), (Dot{ReplicaId{4}, 4}));
  v.erase(1, 2);
  EXPECT_EQ(v, (InlineVector<Dot>{Dot{ReplicaId{1}, 5}, Dot{ReplicaId{4}, 4}}));
}

TEST(InlineVectorTest, RandomOperationsMatchStdVector) {
  std::mt19937_64 rng(TestSeed(424242));
  IntVector v;
  std::vector<int> model;
  for (int step = 0; step < 20000; ++step) {
    const auto op = rng() % 10;
    const int value = static_cast<int>(rng() % 1000);
    if (op <= 3 || model.empty()) {
      const std::size_t pos = rng() % (model.size() + 1);
      v.insert(pos, value);
      model.insert(model.begin() + static_cast<std::ptrdiff_t>(pos), value);
    } else if (op == 4) {
      const std::size_t pos = rng() % model.size();
      v.erase(pos);
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(pos));
    } else if (op == 5) {
      const std::size_t pos = rng() % (model.size() + 1);
      const std::size_t n = rng() % (model.size() - pos + 1);
      v.erase(pos, n);
      const auto first = model.begin() + static_cast<std::ptrdiff_t>(pos);
      model.erase(first, first + static_cast<std::ptrdiff_t>(n));
    } else if (op == 6) {
      const int mod = static_cast<int>(rng() % 7) + 2;
      const auto pred = [mod](int x) { return x % mod == 0; };
      ASSERT_EQ(v.erase_if(pred), std::erase_if(model, pred));
    } else if (op == 7) {
      v.shrink_to_fit();
    } else if (op == 8) {
      IntVector copy = v;
      v = std::move(copy);
    } else {
      IntVector copy(v);
      ASSERT_EQ(copy, v);
      v = copy;
    }
    ASSERT_EQ(Contents(v), model) << "step " << step << " op " << op;
    ASSERT_EQ(v.size(), model.size());
    ASSERT_EQ(v.empty(), model.empty());
    // Drain now and then so that the inline <-> heap transitions recur.
    if (model.size() > 40) {
      v.erase(0, v.size() - 1);
      model.erase(model.begin(), model.end() - 1);
    }
  }
}

}  // namespace
}  // namespace converge::crdt::internal
