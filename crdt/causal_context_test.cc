#include "crdt/causal_context.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

using Entry = CausalContext::Entry;
using Pairs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// Seed of the randomized tests: CONVERGE_TEST_SEED when set, else a fixed
// default, so that a failure replays exactly. Printed by every test using it.
std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

Pairs VectorOf(const CausalContext& c) {
  Pairs out;
  for (const Entry& e : c.vector()) out.emplace_back(e.replica.value(), e.counter);
  return out;
}

std::vector<Dot> CloudOf(const CausalContext& c) { return {c.cloud().begin(), c.cloud().end()}; }

std::set<Dot> DotsOf(const CausalContext& c) {
  std::set<Dot> dots;
  c.ForEachDot([&](const Dot& d) { EXPECT_TRUE(dots.insert(d).second) << "visited twice: " << d; });
  return dots;
}

// The canonical form stated in causal_context.h.
testing::AssertionResult IsCanonical(const CausalContext& c) {
  const auto vector = c.vector();
  for (std::size_t i = 0; i < vector.size(); ++i) {
    if (vector[i].counter == 0) return testing::AssertionFailure() << "zero entry in " << c;
    if (i > 0 && !(vector[i - 1].replica < vector[i].replica)) {
      return testing::AssertionFailure() << "vector not sorted/unique in " << c;
    }
  }
  const auto cloud = c.cloud();
  for (std::size_t i = 0; i < cloud.size(); ++i) {
    if (i > 0 && !(cloud[i - 1] < cloud[i])) {
      return testing::AssertionFailure() << "cloud not sorted/unique in " << c;
    }
    if (cloud[i].counter <= c.VectorCounter(cloud[i].replica) + 1) {
      return testing::AssertionFailure() << "cloud dot " << cloud[i] << " foldable in " << c;
    }
  }
  return testing::AssertionSuccess();
}

CausalContext FromDots(const std::vector<Dot>& dots) { return CausalContext::FromParts({}, dots); }

// Random dots of a few replicas, dense at the low counters so that vector
// entries, gaps and clouds all occur.
std::vector<Dot> RandomDots(std::mt19937_64& rng, std::uint64_t replicas, std::uint64_t max_counter,
                            double density) {
  std::bernoulli_distribution keep(density);
  std::vector<Dot> dots;
  for (std::uint64_t r = 1; r <= replicas; ++r) {
    for (std::uint64_t c = 1; c <= max_counter; ++c) {
      if (keep(rng)) dots.push_back(Dot{ReplicaId{r}, c});
    }
  }
  std::shuffle(dots.begin(), dots.end(), rng);
  return dots;
}

TEST(CausalContextTest, DefaultIsEmpty) {
  const CausalContext c;
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.DotCount(), 0u);
  EXPECT_FALSE(c.Contains(Dot{kA, 1}));
  EXPECT_EQ(c.Max(kA), 0u);
  EXPECT_TRUE(DotsOf(c).empty());
}

TEST(CausalContextTest, CounterZeroIsIgnored) {
  CausalContext c;
  c.Insert(Dot{kA, 0});
  c.AddRange(kA, 0);
  EXPECT_TRUE(c.empty());
  c.Insert(Dot{kA, 1});
  EXPECT_FALSE(c.Contains(Dot{kA, 0}));
}

TEST(CausalContextTest, InOrderInsertsStayInTheVector) {
  CausalContext c;
  for (std::uint64_t i = 1; i <= 5; ++i) c.Insert(Dot{kA, i});
  c.Insert(Dot{kB, 1});
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 5}, {2, 1}}));
  EXPECT_TRUE(CloudOf(c).empty());
  EXPECT_TRUE(IsCanonical(c));
}

TEST(CausalContextTest, OutOfOrderDotsFoldIntoTheVectorWhenTheGapFills) {
  CausalContext c;
  c.Insert(Dot{kA, 3});
  c.Insert(Dot{kA, 5});
  EXPECT_TRUE(VectorOf(c).empty());
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 3}, {kA, 5}}));

  c.Insert(Dot{kA, 1});
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 1}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 3}, {kA, 5}}));

  c.Insert(Dot{kA, 2});  // fills the gap before 3, not the one before 5
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 3}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 5}}));

  c.Insert(Dot{kA, 4});
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 5}}));
  EXPECT_TRUE(CloudOf(c).empty());
  EXPECT_TRUE(IsCanonical(c));
}

TEST(CausalContextTest, FoldingOneReplicaLeavesOtherReplicasCloudAlone) {
  CausalContext c;
  c.Insert(Dot{kB, 2});
  c.Insert(Dot{kA, 2});
  c.Insert(Dot{kC, 2});
  c.Insert(Dot{kB, 1});
  EXPECT_EQ(VectorOf(c), (Pairs{{2, 2}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 2}, {kC, 2}}));
  EXPECT_TRUE(IsCanonical(c));
}

TEST(CausalContextTest, AddRangeAbsorbsCoveredAndContiguousCloudDots) {
  CausalContext c;
  for (const std::uint64_t i : {3u, 4u, 7u}) c.Insert(Dot{kA, i});
  c.Insert(Dot{kB, 9});
  c.AddRange(kA, 2);
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 4}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 7}, {kB, 9}}));
  c.AddRange(kA, 3);  // lower than the entry: no change
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 4}}));
  c.AddRange(kA, 8);  // covers the cloud dot 7
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 8}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kB, 9}}));
  EXPECT_TRUE(IsCanonical(c));
}

TEST(CausalContextTest, FromPartsIsCanonicalForAnyOrderAndForm) {
  const std::vector<Entry> vector = {{kB, 2}, {kA, 3}, {kC, 0}, {kA, 1}};
  const std::vector<Dot> cloud = {{kA, 5}, {kB, 3}, {kA, 4}, {kC, 2}, {kA, 0}, {kA, 2}, {kC, 2}};
  const CausalContext c = CausalContext::FromParts(vector, cloud);
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 5}, {2, 3}}));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kC, 2}}));
  EXPECT_TRUE(IsCanonical(c));

  // The same set of dots as individual inserts, in another order.
  CausalContext incremental;
  for (const Dot& d : std::vector<Dot>{
           {kC, 2}, {kB, 3}, {kA, 5}, {kB, 1}, {kA, 4}, {kA, 3}, {kB, 2}, {kA, 1}, {kA, 2}}) {
    incremental.Insert(d);
  }
  EXPECT_EQ(c, incremental);
  EXPECT_EQ(VectorOf(incremental), VectorOf(c));
  EXPECT_EQ(CloudOf(incremental), CloudOf(c));
}

TEST(CausalContextTest, FromPartsOfShuffledDotsEqualsIncrementalInserts) {
  std::mt19937_64 rng(TestSeed(20240611));
  for (int round = 0; round < 200; ++round) {
    std::vector<Dot> dots = RandomDots(rng, 4, 40, 0.7);
    CausalContext incremental;
    for (const Dot& d : dots) incremental.Insert(d);
    ASSERT_TRUE(IsCanonical(incremental));

    // The same dots split at random between vector-entry form (prefixes) and
    // cloud form, both shuffled.
    std::shuffle(dots.begin(), dots.end(), rng);
    std::vector<Entry> vector;
    std::vector<Dot> cloud;
    for (const Dot& d : dots) {
      if (d.counter <= incremental.VectorCounter(d.replica) && (rng() & 3) == 0) {
        vector.push_back(Entry{d.replica, d.counter});
      } else {
        cloud.push_back(d);
      }
    }
    const CausalContext from_parts = CausalContext::FromParts(vector, cloud);
    ASSERT_TRUE(IsCanonical(from_parts));
    ASSERT_EQ(from_parts, incremental) << "round " << round;
    ASSERT_EQ(VectorOf(from_parts), VectorOf(incremental));
    ASSERT_EQ(CloudOf(from_parts), CloudOf(incremental));
    ASSERT_EQ(DotsOf(from_parts), std::set<Dot>(dots.begin(), dots.end()));
  }
}

TEST(CausalContextTest, ContainsSeesVectorAndCloud) {
  const CausalContext c =
      CausalContext::FromParts(std::vector<Entry>{{kA, 3}}, std::vector<Dot>{{kA, 6}, {kB, 2}});
  for (std::uint64_t i = 1; i <= 3; ++i) EXPECT_TRUE(c.Contains(Dot{kA, i})) << i;
  EXPECT_FALSE(c.Contains(Dot{kA, 4}));
  EXPECT_FALSE(c.Contains(Dot{kA, 5}));
  EXPECT_TRUE(c.Contains(Dot{kA, 6}));
  EXPECT_FALSE(c.Contains(Dot{kA, 7}));
  EXPECT_FALSE(c.Contains(Dot{kB, 1}));
  EXPECT_TRUE(c.Contains(Dot{kB, 2}));
  EXPECT_FALSE(c.Contains(Dot{kC, 1}));
  EXPECT_FALSE(c.Contains(Dot{kA, 0}));
}

TEST(CausalContextTest, MaxIncludesCloudAndVectorCounterDoesNot) {
  const CausalContext c = CausalContext::FromParts(std::vector<Entry>{{kA, 2}, {kC, 4}},
                                                   std::vector<Dot>{{kA, 7}, {kA, 9}, {kB, 5}});
  EXPECT_EQ(c.Max(kA), 9u);
  EXPECT_EQ(c.VectorCounter(kA), 2u);
  EXPECT_EQ(c.Max(kB), 5u);
  EXPECT_EQ(c.VectorCounter(kB), 0u);
  EXPECT_EQ(c.Max(kC), 4u);
  EXPECT_EQ(c.Max(ReplicaId{0}), 0u);
  EXPECT_EQ(c.Max(ReplicaId{4}), 0u);
}

TEST(CausalContextTest, NextDotOnEmptyContextStartsAtOne) {
  CausalContext c;
  EXPECT_EQ(c.NextDot(kA), (Dot{kA, 1}));
  EXPECT_EQ(c.NextDot(kA), (Dot{kA, 2}));
  EXPECT_EQ(c.NextDot(kB), (Dot{kB, 1}));
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 2}, {2, 1}}));
  EXPECT_TRUE(CloudOf(c).empty());
}

TEST(CausalContextTest, NextDotAfterOutOfOrderInsertsIsAboveEverySeenDot) {
  CausalContext c;
  c.Insert(Dot{kA, 5});
  c.Insert(Dot{kA, 2});
  const Dot next = c.NextDot(kA);
  EXPECT_EQ(next, (Dot{kA, 6}));
  EXPECT_TRUE(c.Contains(next));
  EXPECT_EQ(CloudOf(c), (std::vector<Dot>{{kA, 2}, {kA, 5}, {kA, 6}}));
  EXPECT_EQ(c.NextDot(kA), (Dot{kA, 7}));

  // Filling the gap folds the whole run into the vector.
  c.Insert(Dot{kA, 1});
  c.Insert(Dot{kA, 3});
  c.Insert(Dot{kA, 4});
  EXPECT_EQ(VectorOf(c), (Pairs{{1, 7}}));
  EXPECT_TRUE(CloudOf(c).empty());
  EXPECT_EQ(c.NextDot(kA), (Dot{kA, 8}));
  EXPECT_TRUE(IsCanonical(c));
}

TEST(CausalContextTest, JoinOfCloudOnlyContextFillsGaps) {
  CausalContext a =
      CausalContext::FromParts(std::vector<Entry>{{kA, 1}}, std::vector<Dot>{{kA, 3}, {kA, 5}});
  const CausalContext b = FromDots({{kA, 2}, {kB, 4}});
  a.Join(b);
  EXPECT_EQ(VectorOf(a), (Pairs{{1, 3}}));
  EXPECT_EQ(CloudOf(a), (std::vector<Dot>{{kA, 5}, {kB, 4}}));
  EXPECT_TRUE(IsCanonical(a));
}

TEST(CausalContextTest, JoinOfSingleEntryContextAbsorbsCoveredCloud) {
  CausalContext a = FromDots({{kA, 3}, {kA, 5}, {kA, 8}, {kB, 2}});
  const CausalContext b =
      CausalContext::FromParts(std::vector<Entry>{{kA, 4}}, std::vector<Dot>{{kA, 7}});
  a.Join(b);
  EXPECT_EQ(VectorOf(a), (Pairs{{1, 5}}));
  EXPECT_EQ(CloudOf(a), (std::vector<Dot>{{kA, 7}, {kA, 8}, {kB, 2}}));
  EXPECT_TRUE(IsCanonical(a));
}

TEST(CausalContextTest, JoinGeneralCaseMergesVectorsAndCompacts) {
  CausalContext a = CausalContext::FromParts(std::vector<Entry>{{kA, 1}, {kB, 1}},
                                             std::vector<Dot>{{kC, 3}, {kA, 4}});
  const CausalContext b = CausalContext::FromParts(std::vector<Entry>{{kA, 3}, {kC, 2}},
                                                   std::vector<Dot>{{kB, 3}, {kA, 6}});
  a.Join(b);
  // A: 1..3 from b, 4 from a's cloud folds, 6 stays; B: 1, 3 stays in cloud;
  // C: 1..2 from b, 3 from a's cloud folds.
  EXPECT_EQ(VectorOf(a), (Pairs{{1, 4}, {2, 1}, {3, 3}}));
  EXPECT_EQ(CloudOf(a), (std::vector<Dot>{{kA, 6}, {kB, 3}}));
  EXPECT_TRUE(IsCanonical(a));
}

TEST(CausalContextTest, JoinWithOnlyOurCloudStillCompacts) {
  // b has no cloud, but its vector covers and extends ours: our cloud must
  // still be folded.
  CausalContext a = FromDots({{kA, 3}, {kA, 4}, {kB, 5}});
  const CausalContext b = CausalContext::FromParts(std::vector<Entry>{{kA, 2}, {kB, 6}}, {});
  a.Join(b);
  EXPECT_EQ(VectorOf(a), (Pairs{{1, 4}, {2, 6}}));
  EXPECT_TRUE(CloudOf(a).empty());
  EXPECT_TRUE(IsCanonical(a));
}

TEST(CausalContextTest, JoinWithEmptyAndSelfIsIdentity) {
  const CausalContext original =
      CausalContext::FromParts(std::vector<Entry>{{kA, 2}, {kB, 1}}, std::vector<Dot>{{kC, 4}});
  CausalContext a = original;
  a.Join(CausalContext{});
  EXPECT_EQ(a, original);
  a.Join(a);
  EXPECT_EQ(a, original);
  CausalContext empty;
  empty.Join(original);
  EXPECT_EQ(empty, original);
}

TEST(CausalContextTest, JoinOfLargeCloudsIsTheSetUnionAndCommutes) {
  std::mt19937_64 rng(TestSeed(77));
  for (int round = 0; round < 50; ++round) {
    // Sparse dots make large clouds; some rounds are dense for long vectors.
    const double density_a = round % 3 == 0 ? 0.9 : 0.3;
    const double density_b = round % 5 == 0 ? 0.95 : 0.25;
    const std::vector<Dot> da = RandomDots(rng, 6, 300, density_a);
    const std::vector<Dot> db = RandomDots(rng, 5, 300, density_b);
    const CausalContext a = FromDots(da);
    const CausalContext b = FromDots(db);

    std::vector<Dot> all = da;
    all.insert(all.end(), db.begin(), db.end());
    const CausalContext expected = FromDots(all);

    CausalContext ab = a;
    ab.Join(b);
    CausalContext ba = b;
    ba.Join(a);
    ASSERT_TRUE(IsCanonical(ab)) << "round " << round;
    ASSERT_EQ(ab, expected) << "round " << round;
    ASSERT_EQ(ba, ab) << "round " << round;
    ASSERT_EQ(DotsOf(ab), std::set<Dot>(all.begin(), all.end()));
    EXPECT_GT(a.cloud().size() + b.cloud().size(), 0u);

    // Idempotent and associative with a third context.
    CausalContext again = ab;
    again.Join(b);
    ASSERT_EQ(again, ab);
    const CausalContext c = FromDots(RandomDots(rng, 7, 100, 0.5));
    CausalContext left = ab;
    left.Join(c);
    CausalContext bc = b;
    bc.Join(c);
    CausalContext right = a;
    right.Join(bc);
    ASSERT_EQ(left, right) << "round " << round;
  }
}

TEST(CausalContextTest, IncludesRequiresEveryDot) {
  const CausalContext big = CausalContext::FromParts(std::vector<Entry>{{kA, 3}, {kB, 1}},
                                                     std::vector<Dot>{{kA, 5}, {kC, 2}});
  EXPECT_TRUE(big.Includes(CausalContext{}));
  EXPECT_TRUE(big.Includes(big));
  EXPECT_FALSE(CausalContext{}.Includes(big));
  EXPECT_TRUE(CausalContext{}.Includes(CausalContext{}));

  EXPECT_TRUE(big.Includes(CausalContext::FromParts(std::vector<Entry>{{kA, 2}}, {})));
  EXPECT_TRUE(big.Includes(CausalContext::FromParts(std::vector<Entry>{{kA, 3}}, {})));
  EXPECT_FALSE(big.Includes(CausalContext::FromParts(std::vector<Entry>{{kA, 4}}, {})));
  // A vector entry reaching past our gap is not covered even though the
  // dot after the gap is.
  EXPECT_FALSE(big.Includes(CausalContext::FromParts(std::vector<Entry>{{kA, 5}}, {})));
  EXPECT_TRUE(big.Includes(FromDots({{kA, 5}, {kC, 2}, {kA, 2}})));
  EXPECT_FALSE(big.Includes(FromDots({{kA, 4}})));
  EXPECT_FALSE(big.Includes(FromDots({{kC, 1}})));
  EXPECT_FALSE(big.Includes(FromDots({{kB, 2}})));
}

TEST(CausalContextTest, IncludesAgreesWithContainsOnRandomContexts) {
  std::mt19937_64 rng(TestSeed(5));
  int included = 0;
  for (int round = 0; round < 400; ++round) {
    const std::vector<Dot> da = RandomDots(rng, 3, 12, 0.8);
    std::vector<Dot> db = RandomDots(rng, 3, 12, 0.8);
    // Often make b a subset of a, so both outcomes are exercised.
    if (round % 2 == 0) {
      db.clear();
      for (const Dot& d : da) {
        if ((rng() & 3) != 0) db.push_back(d);
      }
    }
    const CausalContext a = FromDots(da);
    const CausalContext b = FromDots(db);
    const bool expected =
        std::all_of(db.begin(), db.end(), [&](const Dot& d) { return a.Contains(d); });
    ASSERT_EQ(a.Includes(b), expected) << a << " includes " << b;
    included += expected ? 1 : 0;
  }
  EXPECT_GT(included, 100);
  EXPECT_LT(included, 400);
}

TEST(CausalContextTest, DotCountCountsVectorAndCloud) {
  const CausalContext c = CausalContext::FromParts(std::vector<Entry>{{kA, 3}, {kB, 2}},
                                                   std::vector<Dot>{{kC, 5}, {kA, 9}});
  EXPECT_EQ(c.DotCount(), 7u);
  EXPECT_EQ(FromDots({{kA, 2}}).DotCount(), 1u);
}

TEST(CausalContextTest, DotCountSaturatesAtUint64Max) {
  EXPECT_EQ(CausalContext::FromParts(std::vector<Entry>{{kA, kMax}}, {}).DotCount(), kMax);
  EXPECT_EQ(CausalContext::FromParts(std::vector<Entry>{{kA, kMax - 1}}, {}).DotCount(), kMax - 1);
  EXPECT_EQ(CausalContext::FromParts(std::vector<Entry>{{kA, kMax}, {kB, 1}}, {}).DotCount(), kMax);
  EXPECT_EQ(CausalContext::FromParts(std::vector<Entry>{{kA, kMax}}, std::vector<Dot>{{kB, 7}})
                .DotCount(),
            kMax);
  EXPECT_EQ(CausalContext::FromParts(std::vector<Entry>{{kA, kMax / 2 + 1}, {kB, kMax / 2 + 1}}, {})
                .DotCount(),
            kMax);
}

TEST(CausalContextTest, ForEachDotVisitsEveryDotExactlyOnce) {
  const CausalContext c = CausalContext::FromParts(std::vector<Entry>{{kA, 3}, {kB, 1}},
                                                   std::vector<Dot>{{kA, 5}, {kC, 2}});
  EXPECT_EQ(DotsOf(c), (std::set<Dot>{{kA, 1}, {kA, 2}, {kA, 3}, {kA, 5}, {kB, 1}, {kC, 2}}));
  std::uint64_t visits = 0;
  c.ForEachDot([&](const Dot&) { ++visits; });
  EXPECT_EQ(visits, c.DotCount());
}

TEST(CausalContextTest, EqualityIsEqualityOfDotSets) {
  CausalContext a;
  a.Insert(Dot{kB, 1});
  a.Insert(Dot{kA, 2});
  a.Insert(Dot{kA, 1});
  const CausalContext b = CausalContext::FromParts(std::vector<Entry>{{kA, 2}, {kB, 1}}, {});
  EXPECT_EQ(a, b);
  a.Insert(Dot{kA, 4});
  EXPECT_NE(a, b);
}

TEST(CausalContextTest, CopiesAreIndependent) {
  CausalContext a = FromDots({{kA, 1}, {kA, 3}, {kB, 5}});
  const CausalContext snapshot = a;
  CausalContext b = a;
  b.Insert(Dot{kA, 2});
  b.Insert(Dot{kC, 1});
  EXPECT_EQ(a, snapshot);
  EXPECT_NE(b, a);
  CausalContext moved = std::move(b);
  EXPECT_TRUE(moved.Contains(Dot{kC, 1}));
  EXPECT_EQ(VectorOf(moved), (Pairs{{1, 3}, {3, 1}}));
}

}  // namespace
}  // namespace converge::crdt
