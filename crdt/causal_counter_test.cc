#include "crdt/causal_counter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "crdt/causal_context.h"
#include "crdt/checked.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

CausalCounter Joined(CausalCounter a, const CausalCounter& b) {
  a.Join(b);
  return a;
}

TEST(CausalCounterTest, DefaultIsBottomWithValueZero) {
  const CausalCounter c;
  EXPECT_TRUE(c.IsBottom());
  EXPECT_EQ(c.Value(), 0u);
}

TEST(CausalCounterTest, IncrementsOnAllReplicasSum) {
  CausalCounter a;
  CausalCounter b;
  a.Increment(kA, 2);
  b.Increment(kB, 3);
  a.Increment(kA, 4);
  EXPECT_EQ(Joined(a, b).Value(), 9u);
  EXPECT_EQ(Joined(b, a).Value(), 9u);
  EXPECT_EQ(Joined(a, b), Joined(b, a));
  EXPECT_EQ(Joined(Joined(a, b), b).Value(), 9u);
}

TEST(CausalCounterTest, IncrementDeltaIsOneDotWithItsAmount) {
  CausalCounter c;
  c.Increment(kA, 2);
  const CausalCounter delta = c.Increment(kA, 5);
  ASSERT_EQ(delta.store().size(), 1u);
  EXPECT_EQ(delta.store().items()[0].dot, (Dot{kA, 2}));
  EXPECT_EQ(delta.store().items()[0].value, 5u);
  EXPECT_EQ(delta.context().DotCount(), 1u);
  EXPECT_EQ(delta.Value(), 5u);
  CausalCounter elsewhere;
  elsewhere.Increment(kA, 2);
  elsewhere.Join(delta);
  EXPECT_EQ(elsewhere, c);
  EXPECT_EQ(elsewhere.Value(), 7u);
}

TEST(CausalCounterTest, IncrementByZeroIsANoOp) {
  CausalCounter c;
  c.Increment(kA, 1);
  const CausalCounter before = c;
  EXPECT_TRUE(c.Increment(kA, 0).IsBottom());
  EXPECT_EQ(c, before);
}

TEST(CausalCounterTest, ResetRemovesTheObservedIncrements) {
  CausalCounter a;
  a.Increment(kA, 2);
  CausalCounter b = a;
  b.Increment(kB, 3);
  a.Join(b);
  const CausalCounter reset = a.Reset();
  EXPECT_EQ(a.Value(), 0u);
  EXPECT_TRUE(a.store().empty());
  EXPECT_TRUE(reset.store().empty());
  EXPECT_TRUE(reset.context().Contains(Dot{kA, 1}));
  EXPECT_TRUE(reset.context().Contains(Dot{kB, 1}));
  b.Join(reset);
  EXPECT_EQ(b.Value(), 0u);
  EXPECT_EQ(b, a);
  // Counting starts again from zero.
  b.Increment(kB, 4);
  a.Join(b);
  EXPECT_EQ(a.Value(), 4u);
}

TEST(CausalCounterTest, SetMakesTheValueExactWithOneDot) {
  CausalCounter a;
  a.Increment(kA, 2);
  a.Increment(kA, 3);
  CausalCounter b = a;
  const CausalCounter delta = a.Set(kA, 10);
  EXPECT_EQ(a.Value(), 10u);
  EXPECT_EQ(a.store().size(), 1u);
  b.Join(delta);
  EXPECT_EQ(b.Value(), 10u);
  EXPECT_EQ(b, a);
  a.Set(kA, 0);
  EXPECT_EQ(a.Value(), 0u);
  EXPECT_TRUE(a.store().empty());
}

TEST(CausalCounterTest, ConcurrentIncrementIsAddedOnTopOfSet) {
  CausalCounter a;
  a.Increment(kA, 5);
  CausalCounter b = a;
  const CausalCounter set = a.Set(kA, 10);
  const CausalCounter increment = b.Increment(kB, 3);
  a.Join(increment);
  b.Join(set);
  EXPECT_EQ(a.Value(), 13u);
  EXPECT_EQ(b.Value(), 13u);
}

TEST(CausalCounterTest, ConcurrentIncrementSurvivesResetWithOnlyItsOwnAmount) {
  CausalCounter a;
  a.Increment(kA, 2);
  CausalCounter b = a;
  const CausalCounter reset = a.Reset();
  const CausalCounter increment = b.Increment(kB, 3);
  a.Join(increment);
  b.Join(reset);
  EXPECT_EQ(a.Value(), 3u);
  EXPECT_EQ(b.Value(), 3u);
  EXPECT_EQ(a, b);
}

TEST(CausalCounterTest, ResetAmountDoesNotComeBackWithTheIncrementersLaterIncrement) {
  // B had contributed before the reset, and the reset observed it.
  CausalCounter a;
  a.Increment(kA, 2);
  CausalCounter b = a;
  b.Increment(kB, 4);
  a.Join(b);
  ASSERT_EQ(a.Value(), 6u);
  const CausalCounter reset = a.Reset();
  const CausalCounter increment = b.Increment(kB, 3);  // concurrent with the reset
  a.Join(increment);
  b.Join(reset);
  EXPECT_EQ(a.Value(), 3u);  // neither 2 nor 4 comes back
  EXPECT_EQ(b.Value(), 3u);

  // A third replica receiving the reset before the earlier increments.
  CausalCounter c;
  c.Join(reset);
  c.Join(increment);
  c.Join(b);
  EXPECT_EQ(c.Value(), 3u);
}

TEST(CausalCounterTest, UnobservedIncrementSurvivesResetWholly) {
  // The reset did not see B's first increment: both of B's increments stay.
  CausalCounter a;
  a.Increment(kA, 2);
  CausalCounter b = a;
  b.Increment(kB, 4);
  const CausalCounter reset = a.Reset();
  b.Increment(kB, 3);
  a.Join(b);
  b.Join(reset);
  EXPECT_EQ(a.Value(), 7u);
  EXPECT_EQ(b.Value(), 7u);
}

TEST(CausalCounterTest, IncrementPastTheMaximumThrowsAndChangesNothing) {
  CausalCounter c;
  c.Increment(kA, kMax - 1);
  const CausalCounter before = c;
  EXPECT_THROW(c.Increment(kA, 2), CounterOverflow);
  EXPECT_EQ(c, before);
  EXPECT_THROW(c.Increment(kB, 2), CounterOverflow);  // the value is checked, not the entry
  EXPECT_EQ(c, before);
  EXPECT_FALSE(c.context().Contains(Dot{kB, 1}));  // no dot was spent
  EXPECT_NO_THROW(c.Increment(kB, 1));
  EXPECT_EQ(c.Value(), kMax);
}

TEST(CausalCounterTest, ConcurrentIncrementsOverflowingTheValueThrowIdentically) {
  CausalCounter a;
  a.Increment(kA, kMax);
  CausalCounter b;
  b.Increment(kB, 1);
  CausalCounter ab = Joined(a, b);
  const CausalCounter ba = Joined(b, a);
  ASSERT_EQ(ab, ba);
  EXPECT_EQ(ab.TryValue(), std::nullopt);
  std::string message_ab;
  std::string message_ba;
  try {
    (void)ab.Value();
  } catch (const CounterOverflow& e) {
    message_ab = e.what();
  }
  try {
    (void)ba.Value();
  } catch (const CounterOverflow& e) {
    message_ba = e.what();
  }
  EXPECT_FALSE(message_ab.empty());
  EXPECT_EQ(message_ab, message_ba);
  // Further increments are refused without change; a reset recovers.
  const CausalCounter before = ab;
  EXPECT_THROW(ab.Increment(kC, 1), CounterOverflow);
  EXPECT_EQ(ab, before);
  ab.Reset();
  EXPECT_EQ(ab.Value(), 0u);
}

}  // namespace
}  // namespace converge::crdt
