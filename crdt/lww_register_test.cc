#include "crdt/lww_register.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "crdt/hlc.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};

using Register = LwwRegister<std::string>;

HlcTimestamp Ts(std::uint64_t physical_ms, std::uint32_t logical) {
  return HlcTimestamp{physical_ms, logical};
}

// The register's value, "<none>" before the first write.
std::string ValueOf(const Register& r) { return r.Value() == nullptr ? "<none>" : *r.Value(); }

Register Joined(Register a, const Register& b) {
  a.Join(b);
  return a;
}

TEST(LwwRegisterTest, DefaultIsBottomWithoutValue) {
  const Register r;
  EXPECT_TRUE(r.IsBottom());
  EXPECT_EQ(r.Value(), nullptr);
  EXPECT_FALSE(r.write().has_value());
}

TEST(LwwRegisterTest, AssignSetsTheValueAndReturnsTheWriteAsDelta) {
  Register r;
  const Register delta = r.Assign(kA, Ts(10, 0), "x");
  EXPECT_EQ(ValueOf(r), "x");
  EXPECT_EQ(r.write()->timestamp, Ts(10, 0));
  EXPECT_EQ(r.write()->writer, kA);
  EXPECT_EQ(delta, r);
  EXPECT_FALSE(delta.IsBottom());
}

TEST(LwwRegisterTest, LaterTimestampWinsInBothJoinOrders) {
  Register early;
  early.Assign(kB, Ts(10, 5), "early");
  Register late;
  late.Assign(kA, Ts(11, 0), "late");  // smaller writer id, later time
  EXPECT_EQ(ValueOf(Joined(early, late)), "late");
  EXPECT_EQ(ValueOf(Joined(late, early)), "late");
  Register logical_later;
  logical_later.Assign(kA, Ts(10, 6), "logical");
  EXPECT_EQ(ValueOf(Joined(early, logical_later)), "logical");
  EXPECT_EQ(ValueOf(Joined(logical_later, early)), "logical");
}

TEST(LwwRegisterTest, EqualTimestampsAreBrokenByReplicaIdInBothJoinOrders) {
  // kA's value sorts after kB's, so a tie broken by value would pick kA.
  Register from_a;
  from_a.Assign(kA, Ts(10, 3), "zzz");
  Register from_b;
  from_b.Assign(kB, Ts(10, 3), "aaa");
  const Register ab = Joined(from_a, from_b);
  const Register ba = Joined(from_b, from_a);
  EXPECT_EQ(ValueOf(ab), "aaa");
  EXPECT_EQ(ab.write()->writer, kB);
  EXPECT_EQ(ab, ba);
}

TEST(LwwRegisterTest, AssignWithAnOlderTimestampLoses) {
  Register r;
  r.Assign(kA, Ts(20, 0), "current");
  const Register delta = r.Assign(kB, Ts(19, 9), "stale");
  EXPECT_EQ(ValueOf(r), "current");
  EXPECT_EQ(r.write()->timestamp, Ts(20, 0));
  // The delta carries the losing write; every replica discards it too.
  EXPECT_EQ(ValueOf(delta), "stale");
  Register elsewhere;
  elsewhere.Assign(kA, Ts(20, 0), "current");
  elsewhere.Join(delta);
  EXPECT_EQ(elsewhere, r);
}

TEST(LwwRegisterTest, SameWriterAndTimestampIsResolvedByValueOnEveryReplica) {
  Register a;
  a.Assign(kA, Ts(5, 0), "apple");
  Register b;
  b.Assign(kA, Ts(5, 0), "pear");
  EXPECT_EQ(Joined(a, b), Joined(b, a));
  EXPECT_EQ(ValueOf(Joined(a, b)), "pear");
}

TEST(LwwRegisterTest, AssignWithAClockUsesItsNextTimestamp) {
  std::uint64_t now = 777;
  Hlc clock([&now] { return now; });
  Register r;
  r.Assign(kA, clock, "one");
  EXPECT_EQ(r.write()->timestamp, Ts(777, 0));
  r.Assign(kA, clock, "two");  // same millisecond: still later
  EXPECT_EQ(ValueOf(r), "two");
  EXPECT_EQ(r.write()->timestamp, Ts(777, 1));
}

TEST(LwwRegisterTest, JoinIsIdempotentAndBottomIsItsIdentity) {
  Register r;
  r.Assign(kA, Ts(1, 0), "v");
  EXPECT_EQ(Joined(r, r), r);
  EXPECT_EQ(Joined(r, Register{}), r);
  EXPECT_EQ(Joined(Register{}, r), r);
}

TEST(LwwRegisterTest, WorksForValuesWithoutAnOrder) {
  struct Opaque {
    int id;
    bool operator==(const Opaque&) const = default;
  };
  LwwRegister<Opaque> a;
  a.Assign(kA, Ts(1, 0), Opaque{1});
  LwwRegister<Opaque> b;
  b.Assign(kB, Ts(1, 0), Opaque{2});
  LwwRegister<Opaque> ab = a;
  ab.Join(b);
  LwwRegister<Opaque> ba = b;
  ba.Join(a);
  ASSERT_TRUE(ab.write().has_value());
  ASSERT_TRUE(ba.write().has_value());
  EXPECT_EQ(ab.write()->value.id, 2);
  EXPECT_EQ(ba.write()->value.id, 2);
}

}  // namespace
}  // namespace converge::crdt
