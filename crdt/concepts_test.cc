#include "crdt/concepts.h"

#include <gtest/gtest.h>

#include <string>

#include "crdt/causal_context.h"
#include "crdt/causal_counter.h"
#include "crdt/dot_store.h"
#include "crdt/ew_flag.h"
#include "crdt/g_counter.h"
#include "crdt/lww_register.h"
#include "crdt/mv_register.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "crdt/pn_counter.h"

namespace converge::crdt {
namespace {

// Every type satisfies the strongest contract it claims.
static_assert(DeltaCrdt<GCounter>);
static_assert(DeltaCrdt<PnCounter>);
static_assert(DeltaCrdt<LwwRegister<int>>);
static_assert(DeltaCrdt<LwwRegister<std::string>>);
static_assert(CausalCrdt<MvRegister<int>>);
static_assert(CausalCrdt<MvRegister<std::string>>);
static_assert(CausalCrdt<EwFlag>);
static_assert(CausalCrdt<CausalCounter>);
static_assert(CausalCrdt<OrSet<int>>);
static_assert(CausalCrdt<OrSet<std::string>>);
static_assert(CausalCrdt<OrMap<std::string, CausalCounter>>);
static_assert(CausalCrdt<OrMap<std::string, EwFlag>>);
static_assert(CausalCrdt<OrMap<std::string, MvRegister<int>>>);
static_assert(CausalCrdt<OrMap<std::string, OrSet<int>>>);
static_assert(CausalCrdt<OrMap<std::string, OrMap<std::string, EwFlag>>>);

// The concepts refine each other.
static_assert(Lattice<GCounter> && Lattice<PnCounter> && Lattice<LwwRegister<int>>);
static_assert(Lattice<EwFlag> && DeltaCrdt<EwFlag>);
static_assert(Lattice<OrSet<int>> && DeltaCrdt<OrSet<int>>);

// The causal contract needs the store/context parts, which the
// non-causal types do not have.
static_assert(!CausalCrdt<GCounter>);
static_assert(!CausalCrdt<PnCounter>);
static_assert(!CausalCrdt<LwwRegister<int>>);

// Types that break the contract are rejected.
struct NoJoin {
  bool IsBottom() const { return true; }
  friend bool operator==(const NoJoin&, const NoJoin&) = default;
};
static_assert(!Lattice<NoJoin>);
static_assert(!DeltaCrdt<NoJoin>);
static_assert(!CausalCrdt<NoJoin>);

struct JoinOnlyFromMutable {  // Join must accept a const argument
  void Join(JoinOnlyFromMutable&) {}
  friend bool operator==(const JoinOnlyFromMutable&, const JoinOnlyFromMutable&) = default;
};
static_assert(!Lattice<JoinOnlyFromMutable>);

struct NotComparable {  // not std::regular
  void Join(const NotComparable&) {}
};
static_assert(!Lattice<NotComparable>);

struct NotDefaultConstructible {  // no bottom element
  explicit NotDefaultConstructible(int) {}
  void Join(const NotDefaultConstructible&) {}
  friend bool operator==(const NotDefaultConstructible&, const NotDefaultConstructible&) = default;
};
static_assert(!Lattice<NotDefaultConstructible>);

struct NoIsBottom {  // a lattice, but its deltas cannot be told from no-ops
  void Join(const NoIsBottom&) {}
  friend bool operator==(const NoIsBottom&, const NoIsBottom&) = default;
};
static_assert(Lattice<NoIsBottom>);
static_assert(!DeltaCrdt<NoIsBottom>);

struct WrongContextType {  // context() must be exactly a const CausalContext&
  using Store = DotSet;
  void Join(const WrongContextType&) {}
  bool IsBottom() const { return true; }
  const DotSet& store() const { return store_; }
  CausalContext context() const { return {}; }
  friend bool operator==(const WrongContextType&, const WrongContextType&) = default;
  DotSet store_;
};
static_assert(DeltaCrdt<WrongContextType>);
static_assert(!CausalCrdt<WrongContextType>);

// OrMap only takes causal values.
template <class V>
concept MapValue = requires {
  typename OrMap<int, V>;
};
static_assert(MapValue<CausalCounter>);
static_assert(MapValue<OrMap<int, EwFlag>>);
static_assert(!MapValue<GCounter>);
static_assert(!MapValue<LwwRegister<int>>);

// Default construction gives the bottom element, the identity of Join.
template <class T>
class BottomTest : public testing::Test {};

using AllTypes = testing::Types<GCounter, PnCounter, LwwRegister<int>, MvRegister<int>, EwFlag,
                                CausalCounter, OrSet<int>, OrMap<std::string, CausalCounter>,
                                OrMap<std::string, OrMap<std::string, EwFlag>>>;
TYPED_TEST_SUITE(BottomTest, AllTypes);

TYPED_TEST(BottomTest, DefaultIsBottomAndTheIdentityOfJoin) {
  static_assert(DeltaCrdt<TypeParam>);
  TypeParam bottom;
  EXPECT_TRUE(bottom.IsBottom());
  bottom.Join(TypeParam{});
  EXPECT_TRUE(bottom.IsBottom());
  EXPECT_EQ(bottom, TypeParam{});
}

}  // namespace
}  // namespace converge::crdt
