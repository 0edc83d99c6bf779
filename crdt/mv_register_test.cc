#include "crdt/mv_register.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};

using Register = MvRegister<std::string>;
using Values = std::vector<std::string>;

Register Joined(Register a, const Register& b) {
  a.Join(b);
  return a;
}

TEST(MvRegisterTest, DefaultIsBottomWithoutValues) {
  const Register r;
  EXPECT_TRUE(r.IsBottom());
  EXPECT_TRUE(r.Values().empty());
}

TEST(MvRegisterTest, AssignHoldsOneValueUnderOneDot) {
  Register r;
  r.Assign(kA, "x");
  const Register delta = r.Assign(kA, "y");
  EXPECT_EQ(r.Values(), Values{"y"});
  EXPECT_EQ(r.store().size(), 1u);
  // The delta: the new value with its dot, and a context removing "x".
  EXPECT_EQ(delta.Values(), Values{"y"});
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 1}));
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 2}));
  Register elsewhere;
  elsewhere.Assign(kA, "x");
  elsewhere.Join(delta);
  EXPECT_EQ(elsewhere, r);
}

TEST(MvRegisterTest, ConcurrentAssignsAreAllKept) {
  Register a;
  a.Assign(kA, "red");
  Register b;
  b.Assign(kB, "blue");
  const Register ab = Joined(a, b);
  const Register ba = Joined(b, a);
  EXPECT_EQ(ab.Values(), (Values{"blue", "red"}));
  EXPECT_EQ(ab, ba);
}

TEST(MvRegisterTest, AssignAfterObservingBothReplacesThem) {
  Register a;
  a.Assign(kA, "red");
  Register b;
  b.Assign(kB, "blue");
  a.Join(b);
  const Register delta = a.Assign(kA, "green");
  EXPECT_EQ(a.Values(), Values{"green"});
  b.Join(delta);  // b still holds blue, which the delta observed
  EXPECT_EQ(b.Values(), Values{"green"});
  EXPECT_EQ(b, a);
}

TEST(MvRegisterTest, AssignReplacesOnlyWhatItObserved) {
  Register a;
  a.Assign(kA, "red");
  Register c = a;
  c.Assign(kC, "yellow");  // concurrent with a's next write
  a.Assign(kA, "green");
  EXPECT_EQ(Joined(a, c).Values(), (Values{"green", "yellow"}));
  EXPECT_EQ(Joined(c, a).Values(), (Values{"green", "yellow"}));
}

TEST(MvRegisterTest, ClearRemovesObservedValues) {
  Register a;
  a.Assign(kA, "red");
  Register b = a;
  const Register delta = a.Clear();
  EXPECT_TRUE(a.Values().empty());
  EXPECT_TRUE(delta.Values().empty());
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 1}));
  b.Join(delta);
  EXPECT_TRUE(b.Values().empty());
  EXPECT_FALSE(a.IsBottom());  // the context remembers the cleared write
}

TEST(MvRegisterTest, ClearLosesToAConcurrentAssign) {
  Register a;
  a.Assign(kA, "red");
  Register b = a;
  const Register cleared = a.Clear();
  const Register assigned = b.Assign(kB, "blue");
  a.Join(assigned);
  b.Join(cleared);
  EXPECT_EQ(a.Values(), Values{"blue"});
  EXPECT_EQ(a, b);
}

TEST(MvRegisterTest, ClearOfAnEmptyRegisterIsBottom) {
  Register r;
  EXPECT_TRUE(r.Clear().IsBottom());
}

}  // namespace
}  // namespace converge::crdt
