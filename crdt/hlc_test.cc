#include "crdt/hlc.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>

namespace converge::crdt {
namespace {

constexpr std::uint32_t kMaxLogical = std::numeric_limits<std::uint32_t>::max();

// A physical clock the test moves by hand.
class ManualClock {
 public:
  explicit ManualClock(std::uint64_t now_ms) : now_ms_(now_ms) {}
  void Set(std::uint64_t now_ms) { now_ms_ = now_ms; }
  Hlc::PhysicalClock AsFunction() {
    return [this] { return now_ms_; };
  }

 private:
  std::uint64_t now_ms_;
};

HlcTimestamp Ts(std::uint64_t physical_ms, std::uint32_t logical) {
  return HlcTimestamp{physical_ms, logical};
}

TEST(HlcTimestampTest, OrdersByPhysicalThenLogical) {
  EXPECT_LT(Ts(1, 9), Ts(2, 0));
  EXPECT_LT(Ts(2, 0), Ts(2, 1));
  EXPECT_EQ(Ts(3, 4), Ts(3, 4));
}

TEST(HlcTest, FreshClockStartsAtZeroAndUsesTheInjectedClock) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  EXPECT_EQ(clock.Current(), Ts(0, 0));
  EXPECT_EQ(clock.max_offset_ms(), Hlc::kDefaultMaxOffsetMs);
  EXPECT_EQ(clock.Now(), Ts(1000, 0));
  EXPECT_EQ(clock.Current(), Ts(1000, 0));
}

TEST(HlcTest, NowIsStrictlyMonotonicWithinOneMillisecond) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  HlcTimestamp last = clock.Now();
  for (std::uint32_t i = 1; i <= 100; ++i) {
    const HlcTimestamp next = clock.Now();
    ASSERT_GT(next, last);
    ASSERT_EQ(next, Ts(1000, i));
    last = next;
  }
}

TEST(HlcTest, NowFollowsPhysicalTimeAndResetsLogical) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  clock.Now();
  clock.Now();
  physical.Set(1005);
  EXPECT_EQ(clock.Now(), Ts(1005, 0));
}

TEST(HlcTest, PhysicalClockJumpingBackwardStillIncreases) {
  ManualClock physical(5000);
  Hlc clock(physical.AsFunction());
  const HlcTimestamp before = clock.Now();
  physical.Set(1000);
  const HlcTimestamp after = clock.Now();
  EXPECT_GT(after, before);
  EXPECT_EQ(after, Ts(5000, 1));
  physical.Set(4999);
  EXPECT_EQ(clock.Now(), Ts(5000, 2));
  physical.Set(5001);
  EXPECT_EQ(clock.Now(), Ts(5001, 0));
}

TEST(HlcTest, ObserveFollowsARemoteTimestampAhead) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  clock.Now();
  const std::optional<HlcTimestamp> observed = clock.Observe(Ts(1500, 7));
  ASSERT_TRUE(observed.has_value());
  EXPECT_EQ(*observed, Ts(1500, 8));
  EXPECT_EQ(clock.Current(), Ts(1500, 8));
  // Later local events stay above the remote one although physical time is
  // behind it.
  EXPECT_EQ(clock.Now(), Ts(1500, 9));
}

TEST(HlcTest, ObserveOfAnOlderRemoteStillAdvances) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  clock.Now();
  clock.Now();  // 1000.1
  EXPECT_EQ(clock.Observe(Ts(900, 50)), Ts(1000, 2));
  physical.Set(1200);
  EXPECT_EQ(clock.Observe(Ts(900, 50)), Ts(1200, 0));
}

TEST(HlcTest, ObserveAtTheSameMillisecondTakesTheLargerLogical) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  for (int i = 0; i < 4; ++i) clock.Now();  // 1000.3
  EXPECT_EQ(clock.Observe(Ts(1000, 7)), Ts(1000, 8));
  EXPECT_EQ(clock.Observe(Ts(1000, 2)), Ts(1000, 9));
}

TEST(HlcTest, RejectsRemoteBeyondMaxOffsetWithoutChangingState) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction(), /*max_offset_ms=*/100);
  const HlcTimestamp last = clock.Now();
  EXPECT_FALSE(clock.Acceptable(Ts(1101, 0)));
  EXPECT_EQ(clock.Observe(Ts(1101, 0)), std::nullopt);
  EXPECT_EQ(clock.Observe(Ts(std::numeric_limits<std::uint64_t>::max(), 0)), std::nullopt);
  EXPECT_EQ(clock.Current(), last);
  EXPECT_EQ(clock.Now(), Ts(1000, 1));  // not dragged forward

  // Exactly max_offset ahead is accepted.
  EXPECT_TRUE(clock.Acceptable(Ts(1100, 3)));
  EXPECT_EQ(clock.Observe(Ts(1100, 3)), Ts(1100, 4));
  // The bound moves with physical time.
  physical.Set(1050);
  EXPECT_TRUE(clock.Acceptable(Ts(1150, 0)));
  EXPECT_FALSE(clock.Acceptable(Ts(1151, 0)));
  EXPECT_TRUE(clock.Acceptable(Ts(10, 0)));
}

// A replica whose own clock is behind judges "too far ahead" against a
// reference it trusts more (its peers' median clock); a reference behind its
// own clock changes nothing.
TEST(HlcTest, ObserveAgainstAReferenceAheadOfTheLocalClock) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction(), /*max_offset_ms=*/100);
  EXPECT_EQ(clock.Observe(Ts(5050, 0)), std::nullopt) << "4 s ahead of the local clock";
  EXPECT_EQ(clock.Observe(Ts(5050, 0), /*reference_ms=*/5000), Ts(5050, 1));
  EXPECT_EQ(clock.Observe(Ts(5200, 0), /*reference_ms=*/5000), std::nullopt)
      << "beyond the offset of the reference too";
  EXPECT_EQ(clock.Current(), Ts(5050, 1));
  // A reference behind the local clock is ignored: never stricter.
  physical.Set(5100);
  EXPECT_EQ(clock.Observe(Ts(5200, 0), /*reference_ms=*/10), Ts(5200, 1));
  EXPECT_EQ(clock.Observe(Ts(5201, 0), /*reference_ms=*/10), std::nullopt);
}

TEST(HlcTest, LogicalOverflowMovesToTheNextMillisecond) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  clock.Restore(Ts(1000, kMaxLogical));
  const HlcTimestamp next = clock.Now();
  EXPECT_EQ(next, Ts(1001, 0));
  EXPECT_GT(next, Ts(1000, kMaxLogical));
  EXPECT_EQ(clock.Now(), Ts(1001, 1));
}

TEST(HlcTest, LogicalOverflowFromARemoteMovesToTheNextMillisecond) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  EXPECT_EQ(clock.Observe(Ts(1010, kMaxLogical)), Ts(1011, 0));
  EXPECT_EQ(clock.Now(), Ts(1011, 1));
}

TEST(HlcTest, RestoreRaisesButNeverLowers) {
  ManualClock physical(1000);
  Hlc clock(physical.AsFunction());
  clock.Restore(Ts(9000, 5));  // a high-water mark from before a restart
  EXPECT_EQ(clock.Current(), Ts(9000, 5));
  EXPECT_EQ(clock.Now(), Ts(9000, 6));  // physical clock behind the mark
  clock.Restore(Ts(2000, 0));
  EXPECT_EQ(clock.Current(), Ts(9000, 6));
  EXPECT_EQ(clock.Now(), Ts(9000, 7));
}

TEST(HlcTest, DefaultClockIsSystemTime) {
  const std::uint64_t before = Hlc::SystemMillis();
  Hlc clock;
  const HlcTimestamp now = clock.Now();
  const std::uint64_t after = Hlc::SystemMillis();
  EXPECT_GE(now.physical_ms, before);
  EXPECT_LE(now.physical_ms, after);
}

}  // namespace
}  // namespace converge::crdt
