#include "crdt/pn_counter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "crdt/checked.h"
#include "crdt/g_counter.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();
constexpr std::uint64_t kTwoTo63 = std::uint64_t{1} << 63;

using Entries = std::vector<GCounter::Entry>;

PnCounter Of(const Entries& plus, const Entries& minus) {
  return PnCounter::FromParts(GCounter::FromEntries(plus), GCounter::FromEntries(minus));
}

template <class F>
std::string OverflowMessage(F&& f) {
  try {
    f();
  } catch (const CounterOverflow& e) {
    return e.what();
  }
  return "";
}

TEST(PnCounterTest, DefaultIsBottomWithValueZero) {
  const PnCounter c;
  EXPECT_TRUE(c.IsBottom());
  EXPECT_EQ(c.Value(), 0);
}

TEST(PnCounterTest, IncrementsAndDecrementsGiveASignedValue) {
  PnCounter c;
  c.Increment(kA, 5);
  c.Decrement(kB, 8);
  EXPECT_EQ(c.Value(), -3);
  c.Increment(kB, 10);
  EXPECT_EQ(c.Value(), 7);
  EXPECT_EQ(c.increments().CountOf(kB), 10u);
  EXPECT_EQ(c.decrements().CountOf(kB), 8u);
}

TEST(PnCounterTest, DeltasTouchOneEntryOfOneSide) {
  PnCounter c;
  c.Increment(kA, 2);
  c.Decrement(kB, 3);
  const PnCounter up = c.Increment(kA, 1);
  EXPECT_EQ(up.increments(), GCounter::FromEntries(Entries{{kA, 3}}));
  EXPECT_TRUE(up.decrements().IsBottom());
  const PnCounter down = c.Decrement(kA, 4);
  EXPECT_TRUE(down.increments().IsBottom());
  EXPECT_EQ(down.decrements(), GCounter::FromEntries(Entries{{kA, 4}}));
  EXPECT_TRUE(c.Increment(kA, 0).IsBottom());

  PnCounter other = Of({{kA, 2}}, {{kB, 3}});
  other.Join(up);
  other.Join(down);
  EXPECT_EQ(other, c);
}

TEST(PnCounterTest, JoinTakesTheMaximumOfEachSide) {
  PnCounter a;
  a.Increment(kA, 5);
  a.Decrement(kA, 1);
  PnCounter b = a;
  b.Decrement(kB, 4);
  a.Increment(kA, 2);
  PnCounter ab = a;
  ab.Join(b);
  PnCounter ba = b;
  ba.Join(a);
  EXPECT_EQ(ab, ba);
  EXPECT_EQ(ab.Value(), 7 - 1 - 4);
  ab.Join(b);
  EXPECT_EQ(ab, ba);
}

TEST(PnCounterTest, IncrementOrDecrementPastTheMaximumThrowsAndChangesNothing) {
  PnCounter c;
  c.Increment(kA, kMax);
  c.Decrement(kA, kMax - 1);
  const PnCounter before = c;
  EXPECT_THROW(c.Increment(kA, 1), CounterOverflow);
  EXPECT_EQ(c, before);
  EXPECT_THROW(c.Decrement(kA, 2), CounterOverflow);
  EXPECT_EQ(c, before);
  EXPECT_NO_THROW(c.Decrement(kA, 1));
  EXPECT_EQ(c.Value(), 0);
}

TEST(PnCounterTest, ValuesAtTheInt64LimitsAreExact) {
  EXPECT_EQ(Of({{kA, static_cast<std::uint64_t>(kInt64Max)}}, {}).Value(), kInt64Max);
  EXPECT_EQ(Of({}, {{kA, kTwoTo63}}).Value(), kInt64Min);
  // Sides far beyond int64 whose difference fits.
  EXPECT_EQ(Of({{kA, kMax}}, {{kB, kTwoTo63}}).Value(), kInt64Max);
  EXPECT_EQ(Of({{kA, kMax}, {kB, kMax}}, {{kA, kMax}, {kB, kMax - 5}}).Value(), 5);
  EXPECT_EQ(Of({{kA, kMax - 5}, {kB, kMax}}, {{kA, kMax}, {kB, kMax}}).Value(), -5);
  EXPECT_EQ(Of({{kA, kMax}, {kB, 1}}, {{kA, kMax}, {kB, kTwoTo63 + 1}}).Value(), kInt64Min);
}

TEST(PnCounterTest, ValueBeyondInt64IsReported) {
  const PnCounter above = Of({{kA, kTwoTo63}}, {});
  EXPECT_EQ(above.TryValue(), std::nullopt);
  EXPECT_THROW((void)above.Value(), CounterOverflow);
  const PnCounter below = Of({}, {{kA, kTwoTo63 + 1}});
  EXPECT_EQ(below.TryValue(), std::nullopt);
  EXPECT_THROW((void)below.Value(), CounterOverflow);
  // Each side's sum is beyond uint64 as well.
  const PnCounter huge = Of({{kA, kMax}, {kB, kMax}}, {{kA, 1}});
  EXPECT_EQ(huge.TryValue(), std::nullopt);
  EXPECT_THROW((void)huge.Value(), CounterOverflow);
}

TEST(PnCounterTest, ValueOverflowThrowsIdenticallyOnEveryReplica) {
  PnCounter a;
  a.Increment(kA, kInt64Max);
  PnCounter b;
  b.Increment(kB, 1);
  PnCounter ab = a;
  ab.Join(b);
  PnCounter ba = b;
  ba.Join(a);
  ASSERT_EQ(ab, ba);
  const std::string message_ab = OverflowMessage([&] { (void)ab.Value(); });
  EXPECT_FALSE(message_ab.empty());
  EXPECT_EQ(message_ab, OverflowMessage([&] { (void)ba.Value(); }));
  // Bringing it back into range makes it readable again, on both.
  ab.Decrement(kA, 1);
  ba.Join(ab);
  EXPECT_EQ(ab.Value(), kInt64Max);
  EXPECT_EQ(ba.Value(), kInt64Max);
}

}  // namespace
}  // namespace converge::crdt
