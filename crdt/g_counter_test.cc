#include "crdt/g_counter.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "crdt/checked.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};
constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

using Entries = std::vector<GCounter::Entry>;

Entries EntriesOf(const GCounter& c) { return {c.entries().begin(), c.entries().end()}; }

// The message of the CounterOverflow thrown by f, or "" if none was thrown.
template <class F>
std::string OverflowMessage(F&& f) {
  try {
    f();
  } catch (const CounterOverflow& e) {
    return e.what();
  }
  return "";
}

TEST(GCounterTest, DefaultIsBottomWithValueZero) {
  const GCounter c;
  EXPECT_TRUE(c.IsBottom());
  EXPECT_EQ(c.Value(), 0u);
  EXPECT_EQ(c.TryValue(), std::optional<std::uint64_t>(0));
  EXPECT_TRUE(c.entries().empty());
}

TEST(GCounterTest, IncrementsAddToTheReplicasEntry) {
  GCounter c;
  c.Increment(kA, 3);
  c.Increment(kB, 4);
  c.Increment(kA, 2);
  EXPECT_EQ(c.Value(), 9u);
  EXPECT_EQ(c.CountOf(kA), 5u);
  EXPECT_EQ(c.CountOf(kB), 4u);
  EXPECT_EQ(c.CountOf(kC), 0u);
  EXPECT_FALSE(c.IsBottom());
  EXPECT_EQ(EntriesOf(c), (Entries{{kA, 5}, {kB, 4}}));
}

TEST(GCounterTest, DeltaIsTheOneUpdatedEntry) {
  GCounter c;
  c.Increment(kB, 7);
  c.Increment(kA, 3);
  const GCounter delta = c.Increment(kA, 2);
  // The delta carries the new total of the entry, so that joining it is
  // idempotent, and nothing about other replicas.
  EXPECT_EQ(EntriesOf(delta), (Entries{{kA, 5}}));
  EXPECT_FALSE(delta.IsBottom());
}

TEST(GCounterTest, JoiningTheDeltaEqualsTheMutation) {
  GCounter a;
  a.Increment(kA, 3);
  GCounter b = a;  // b has seen a's state
  b.Increment(kB, 1);
  const GCounter delta = a.Increment(kA, 4);
  GCounter b_with_delta = b;
  b_with_delta.Join(delta);
  GCounter b_with_state = b;
  b_with_state.Join(a);
  EXPECT_EQ(b_with_delta, b_with_state);
  EXPECT_EQ(b_with_delta.Value(), 8u);
  b_with_delta.Join(delta);  // redelivery changes nothing
  EXPECT_EQ(b_with_delta.Value(), 8u);
}

TEST(GCounterTest, IncrementByZeroChangesNothing) {
  GCounter c;
  c.Increment(kA, 2);
  const GCounter before = c;
  const GCounter delta = c.Increment(kA, 0);
  EXPECT_TRUE(delta.IsBottom());
  EXPECT_EQ(c, before);
  EXPECT_TRUE(GCounter{}.Increment(kB, 0).IsBottom());
}

TEST(GCounterTest, JoinTakesTheMaximumPerReplica) {
  const GCounter a = GCounter::FromEntries(Entries{{kA, 5}, {kB, 1}});
  const GCounter b = GCounter::FromEntries(Entries{{kA, 2}, {kB, 7}, {kC, 1}});
  GCounter ab = a;
  ab.Join(b);
  EXPECT_EQ(EntriesOf(ab), (Entries{{kA, 5}, {kB, 7}, {kC, 1}}));
  EXPECT_EQ(ab.Value(), 13u);  // not the sum of the two values, 6 + 10
  GCounter ba = b;
  ba.Join(a);
  EXPECT_EQ(ba, ab);
  GCounter again = ab;
  again.Join(ab);
  again.Join(a);
  EXPECT_EQ(again, ab);
}

TEST(GCounterTest, FromEntriesIsCanonical) {
  const GCounter c = GCounter::FromEntries(Entries{{kC, 1}, {kA, 4}, {kB, 0}, {kA, 6}, {kA, 2}});
  EXPECT_EQ(EntriesOf(c), (Entries{{kA, 6}, {kC, 1}}));
  GCounter incremental;
  incremental.Increment(kA, 6);
  incremental.Increment(kC, 1);
  EXPECT_EQ(c, incremental);
}

TEST(GCounterTest, IncrementPastTheMaximumThrowsAndChangesNothing) {
  GCounter c;
  c.Increment(kA, kMax - 1);
  c.Increment(kB, 5);
  const GCounter before = c;
  EXPECT_THROW(c.Increment(kA, 2), CounterOverflow);
  EXPECT_EQ(c, before);
  EXPECT_THROW(c.Increment(kA, kMax), CounterOverflow);
  EXPECT_EQ(c, before);

  // Exactly reaching the maximum is allowed; one more is not.
  const GCounter delta = c.Increment(kA, 1);
  EXPECT_EQ(EntriesOf(delta), (Entries{{kA, kMax}}));
  EXPECT_EQ(c.CountOf(kA), kMax);
  const GCounter at_max = c;
  EXPECT_THROW(c.Increment(kA, 1), CounterOverflow);
  EXPECT_EQ(c, at_max);
  // Other entries are checked on their own.
  EXPECT_NO_THROW(c.Increment(kC, 1));
}

TEST(GCounterTest, CounterOverflowIsAnOverflowError) {
  GCounter c;
  c.Increment(kA, kMax);
  try {
    c.Increment(kA, 1);
    FAIL() << "no exception";
  } catch (const std::overflow_error& e) {
    EXPECT_NE(std::string(e.what()).find("GCounter::Increment"), std::string::npos) << e.what();
  }
}

TEST(GCounterTest, ValueOverflowThrowsIdenticallyOnEveryReplica) {
  // Two replicas reach the same state by different histories.
  GCounter a;
  a.Increment(kA, kMax);
  GCounter b;
  b.Increment(kB, 1);
  GCounter a_then_b = a;
  a_then_b.Join(b);
  GCounter b_then_a = b;
  b_then_a.Join(a);
  ASSERT_EQ(a_then_b, b_then_a);

  EXPECT_EQ(a_then_b.TryValue(), std::nullopt);
  EXPECT_EQ(b_then_a.TryValue(), std::nullopt);
  const std::string message_a = OverflowMessage([&] { (void)a_then_b.Value(); });
  const std::string message_b = OverflowMessage([&] { (void)b_then_a.Value(); });
  EXPECT_FALSE(message_a.empty());
  EXPECT_EQ(message_a, message_b);
  // The state itself stays valid and joinable.
  EXPECT_EQ(a_then_b.CountOf(kA), kMax);
  EXPECT_EQ(a_then_b.CountOf(kB), 1u);
}

TEST(GCounterTest, TryValueIsExactUpToTheMaximum) {
  const GCounter c = GCounter::FromEntries(Entries{{kA, kMax - 10}, {kB, 4}, {kC, 6}});
  EXPECT_EQ(c.TryValue(), std::optional<std::uint64_t>(kMax));
  EXPECT_EQ(c.Value(), kMax);
  const GCounter over = GCounter::FromEntries(Entries{{kA, kMax - 10}, {kB, 5}, {kC, 6}});
  EXPECT_EQ(over.TryValue(), std::nullopt);
  EXPECT_THROW((void)over.Value(), CounterOverflow);
}

}  // namespace
}  // namespace converge::crdt
