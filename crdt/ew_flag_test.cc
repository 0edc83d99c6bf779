#include "crdt/ew_flag.h"

#include <gtest/gtest.h>

#include "crdt/causal_context.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};

EwFlag Joined(EwFlag a, const EwFlag& b) {
  a.Join(b);
  return a;
}

TEST(EwFlagTest, DefaultIsBottomAndDisabled) {
  const EwFlag f;
  EXPECT_TRUE(f.IsBottom());
  EXPECT_FALSE(f.Value());
}

TEST(EwFlagTest, EnableSetsTheFlagAndItsDeltaDoesToo) {
  EwFlag f;
  const EwFlag delta = f.Enable(kA);
  EXPECT_TRUE(f.Value());
  EXPECT_TRUE(delta.Value());
  EXPECT_FALSE(delta.IsBottom());
  EwFlag other;
  other.Join(delta);
  EXPECT_TRUE(other.Value());
  EXPECT_EQ(other, f);
}

TEST(EwFlagTest, RepeatedEnablesKeepOneDot) {
  EwFlag f;
  for (int i = 0; i < 10; ++i) f.Enable(kA);
  EXPECT_EQ(f.store().size(), 1u);
  EXPECT_TRUE(f.store().Contains(Dot{kA, 10}));
  EXPECT_TRUE(f.context().cloud().empty());
}

TEST(EwFlagTest, EnableWinsOverConcurrentDisable) {
  EwFlag a;
  a.Enable(kA);
  EwFlag b = a;  // both see the flag enabled
  const EwFlag disable = b.Disable();
  const EwFlag enable = a.Enable(kA);  // concurrent with the disable
  EXPECT_FALSE(b.Value());
  a.Join(disable);
  b.Join(enable);
  EXPECT_TRUE(a.Value());
  EXPECT_TRUE(b.Value());
  EXPECT_EQ(a, b);

  // Also with an enable from a replica that had never seen the flag.
  EwFlag c;
  const EwFlag enable_c = c.Enable(kC);
  EXPECT_TRUE(Joined(b, enable_c).Value());
  EwFlag d = b;
  d.Disable();
  EXPECT_TRUE(Joined(d, c).Value());
  EXPECT_TRUE(Joined(c, d).Value());
}

TEST(EwFlagTest, DisableAfterObservingWins) {
  EwFlag a;
  const EwFlag enable = a.Enable(kA);
  EwFlag b;
  b.Join(enable);
  const EwFlag disable = b.Disable();
  EXPECT_FALSE(b.Value());
  EXPECT_TRUE(disable.context().Contains(Dot{kA, 1}));
  a.Join(disable);
  EXPECT_FALSE(a.Value());
  EXPECT_EQ(a, b);
  // A third replica receiving the disable before the enable stays disabled.
  EwFlag c;
  c.Join(disable);
  c.Join(enable);
  EXPECT_FALSE(c.Value());
}

TEST(EwFlagTest, DisableRemovesEnablesOfEveryReplicaItObserved) {
  EwFlag a;
  EwFlag b;
  a.Enable(kA);
  b.Enable(kB);
  a.Join(b);
  EXPECT_EQ(a.store().size(), 2u);
  const EwFlag disable = a.Disable();
  b.Join(disable);
  EXPECT_FALSE(a.Value());
  EXPECT_FALSE(b.Value());
}

TEST(EwFlagTest, DisableOfADisabledFlagIsBottom) {
  EwFlag f;
  EXPECT_TRUE(f.Disable().IsBottom());
  f.Enable(kA);
  f.Disable();
  EXPECT_TRUE(f.Disable().IsBottom());
}

}  // namespace
}  // namespace converge::crdt
