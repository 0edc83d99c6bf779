// The CRDT law suite: one set of property tests every converge type passes,
// and that you can run against your own CRDT types.
//
// To check a type T:
//   1. Specialize converge::testing::CrdtTraits<T> with a generator of T's
//      mutations:
//
//        template <>
//        struct converge::testing::CrdtTraits<MaxRegister> {
//          static rc::Gen<converge::testing::Operation<MaxRegister>> Operations() {
//            return rc::gen::map(rc::gen::inRange(0, 100), [](int v) {
//              return converge::testing::Operation<MaxRegister>{
//                  "Set(" + std::to_string(v) + ")",
//                  [v](MaxRegister& r, converge::crdt::ReplicaId) { return r.Set(v); }};
//            });
//          }
//        };
//
//   2. Instantiate the suite, one line:
//
//        CONVERGE_CRDT_LAWS(MaxRegister, MaxRegister);
//
// States are never made up: each property replays a random history (1 to 4
// replicas that mutate, join each other's states and join each other's
// deltas), so every state checked is one a real system can reach. The laws:
//   - Join is commutative, associative and idempotent; bottom (T{}) is its
//     identity;
//   - every mutation is an inflation (the old state is below the new one);
//   - joining the returned delta into the pre-mutation state gives exactly
//     the mutated state;
//   - deltas of concurrent mutations at different replicas commute;
//   - copies are independent values;
//   - a mutator that throws (e.g. CounterOverflow) leaves the state unchanged;
//   - when CrdtTraits<T> has `static std::optional<T> RoundTrip(const T&)`
//     (encode then decode), every reachable state and delta survives it.
// When CrdtTraits<T> also has
//   static rc::Gen<Operation<T>> SeenOperations(const T& read);
// (mutations acting on what a client read in `read`: the `seen` overloads),
// the histories mix them in, with `read` a state of any replica at any
// earlier step — older than, equal to or newer than the state mutated, often
// holding dots it has not received — and every law covers them too.
//
// A failing property prints the shrunk history, and rapidcheck prints the
// seed; run again with RC_PARAMS="seed=<seed>" to replay it exactly.
// See docs/testing-your-types.md.

#ifndef CONVERGE_PROPERTY_TESTS_LAW_SUITE_H_
#define CONVERGE_PROPERTY_TESTS_LAW_SUITE_H_

// clang-format off
#include <gtest/gtest.h>  // before rapidcheck/gtest.h, which needs it
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
// clang-format on

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crdt/concepts.h"
#include "crdt/replica_id.h"

namespace converge::testing {

// One mutation of T: applied to a replica's state with that replica's id, it
// changes the state in place and returns the delta.
template <class T>
struct Operation {
  std::string name;
  std::function<T(T&, crdt::ReplicaId)> apply;
};

template <class T>
void showValue(const Operation<T>& op, std::ostream& os) {
  os << op.name;
}

// Specialize for your type: `static rc::Gen<Operation<T>> Operations();`.
template <class T>
struct CrdtTraits;

// Number of replicas in the histories the laws replay.
inline constexpr std::size_t kMaxReplicas = 4;

// A replayed history: the replicas' final states and every delta produced.
template <class T>
struct History {
  std::vector<T> replicas;
  std::vector<T> deltas;
  std::vector<T> reads;  // copies of replica states taken along the way
};

// Draws one operation: T's own, or (when the traits have SeenOperations) one
// acting on a read taken from `reads` or from the current `replicas`.
template <class T>
Operation<T> DrawOperation(const History<T>& h) {
  if constexpr (requires(const T& t) { CrdtTraits<T>::SeenOperations(t); }) {
    const std::size_t choices = h.reads.size() + h.replicas.size();
    if (choices > 0 && *rc::gen::inRange(0, 3) == 0) {
      const auto k = *rc::gen::inRange<std::size_t>(0, choices);
      const T& read = k < h.reads.size() ? h.reads[k] : h.replicas[k - h.reads.size()];
      return *CrdtTraits<T>::SeenOperations(read);
    }
  }
  return *CrdtTraits<T>::Operations();
}

// Applies op at replica `index`; a mutator that throws std::overflow_error
// (a checked counter refusing to overflow) must leave the state unchanged.
template <class T>
std::optional<T> ApplyChecked(const Operation<T>& op, T& state, std::size_t index) {
  const T before = state;
  try {
    return op.apply(state, crdt::ReplicaId{index + 1});
  } catch (const std::overflow_error&) {
    RC_ASSERT(state == before);
    return std::nullopt;
  }
}

// Generates (inside a rapidcheck property) a random history and returns it.
template <crdt::DeltaCrdt T>
History<T> GenHistory(std::size_t min_replicas = 1) {
  History<T> h;
  const auto n = *rc::gen::inRange<std::size_t>(min_replicas, kMaxReplicas + 1);
  h.replicas.assign(n, T{});
  const int steps = *rc::gen::inRange(0, 40);
  for (int s = 0; s < steps; ++s) {
    const auto i = *rc::gen::inRange<std::size_t>(0, n);
    const int kind = *rc::gen::inRange(0, 5);
    if (kind <= 2) {
      const auto op = DrawOperation(h);
      if (auto delta = ApplyChecked(op, h.replicas[i], i)) h.deltas.push_back(std::move(*delta));
      if (*rc::gen::inRange(0, 4) == 0) h.reads.push_back(h.replicas[i]);
    } else if (kind == 3) {
      const auto j = *rc::gen::inRange<std::size_t>(0, n);
      h.replicas[i].Join(h.replicas[j]);
    } else if (!h.deltas.empty()) {
      const auto d = *rc::gen::inRange<std::size_t>(0, h.deltas.size());
      h.replicas[i].Join(h.deltas[d]);
    }
  }
  return h;
}

// Picks a replica state or a delta from the history.
template <class T>
T PickState(const History<T>& h) {
  if (!h.deltas.empty() && *rc::gen::arbitrary<bool>()) {
    return h.deltas[*rc::gen::inRange<std::size_t>(0, h.deltas.size())];
  }
  return h.replicas[*rc::gen::inRange<std::size_t>(0, h.replicas.size())];
}

template <class T>
T Joined(T a, const T& b) {
  a.Join(b);
  return a;
}

template <class T>
void CheckRoundTrip(const T& value) {
  if constexpr (requires { CrdtTraits<T>::RoundTrip(value); }) {
    const std::optional<T> decoded = CrdtTraits<T>::RoundTrip(value);
    RC_ASSERT(decoded.has_value());
    RC_ASSERT(*decoded == value);
  }
}

template <class T>
class CrdtLaws : public ::testing::Test {};

TYPED_TEST_SUITE_P(CrdtLaws);

TYPED_TEST_P(CrdtLaws, SatisfiesTheConcept) {
  static_assert(crdt::DeltaCrdt<TypeParam>, "the type must model converge::crdt::DeltaCrdt");
  EXPECT_TRUE(TypeParam{}.IsBottom());
}

TYPED_TEST_P(CrdtLaws, JoinIsCommutative) {
  EXPECT_TRUE(rc::check("a ⊔ b == b ⊔ a", [] {
    const auto h = GenHistory<TypeParam>();
    const TypeParam a = PickState(h);
    const TypeParam b = PickState(h);
    RC_ASSERT(Joined(a, b) == Joined(b, a));
  }));
}

TYPED_TEST_P(CrdtLaws, JoinIsAssociative) {
  EXPECT_TRUE(rc::check("(a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)", [] {
    const auto h = GenHistory<TypeParam>();
    const TypeParam a = PickState(h);
    const TypeParam b = PickState(h);
    const TypeParam c = PickState(h);
    RC_ASSERT(Joined(Joined(a, b), c) == Joined(a, Joined(b, c)));
  }));
}

TYPED_TEST_P(CrdtLaws, JoinIsIdempotent) {
  EXPECT_TRUE(rc::check("a ⊔ a == a and (a ⊔ b) ⊔ b == a ⊔ b", [] {
    const auto h = GenHistory<TypeParam>();
    const TypeParam a = PickState(h);
    const TypeParam b = PickState(h);
    RC_ASSERT(Joined(a, a) == a);
    const TypeParam ab = Joined(a, b);
    RC_ASSERT(Joined(ab, b) == ab);
    RC_ASSERT(Joined(ab, a) == ab);
  }));
}

TYPED_TEST_P(CrdtLaws, BottomIsIdentity) {
  EXPECT_TRUE(rc::check("⊥ ⊔ a == a ⊔ ⊥ == a", [] {
    const auto h = GenHistory<TypeParam>();
    const TypeParam a = PickState(h);
    RC_ASSERT(Joined(TypeParam{}, a) == a);
    RC_ASSERT(Joined(a, TypeParam{}) == a);
  }));
}

TYPED_TEST_P(CrdtLaws, MutationIsInflationAndDeltaJoinEqualsMutation) {
  EXPECT_TRUE(rc::check("s ≤ m(s) and s ⊔ δ == m(s)", [] {
    auto h = GenHistory<TypeParam>();
    const auto i = *rc::gen::inRange<std::size_t>(0, h.replicas.size());
    TypeParam& state = h.replicas[i];
    const TypeParam before = state;
    const auto op = DrawOperation(h);
    const std::optional<TypeParam> delta = ApplyChecked(op, state, i);
    if (!delta) return;                          // refused; ApplyChecked asserted nothing changed
    RC_ASSERT(Joined(before, state) == state);   // inflation
    RC_ASSERT(Joined(before, *delta) == state);  // delta = mutation
    RC_ASSERT(Joined(state, *delta) == state);   // the delta is in the state
  }));
}

TYPED_TEST_P(CrdtLaws, ConcurrentDeltasCommute) {
  EXPECT_TRUE(rc::check("deltas of concurrent mutations commute", [] {
    auto h = GenHistory<TypeParam>(/*min_replicas=*/2);
    const auto i = *rc::gen::inRange<std::size_t>(0, h.replicas.size());
    auto j = *rc::gen::inRange<std::size_t>(0, h.replicas.size() - 1);
    if (j >= i) ++j;
    const TypeParam target = PickState(h);
    const auto op1 = DrawOperation(h);
    const auto op2 = DrawOperation(h);
    const std::optional<TypeParam> d1 = ApplyChecked(op1, h.replicas[i], i);
    const std::optional<TypeParam> d2 = ApplyChecked(op2, h.replicas[j], j);
    if (!d1 || !d2) return;
    RC_ASSERT(Joined(Joined(target, *d1), *d2) == Joined(Joined(target, *d2), *d1));
    RC_ASSERT(Joined(h.replicas[i], *d2) == Joined(*d2, h.replicas[i]));
    RC_ASSERT(Joined(Joined(h.replicas[i], *d2), h.replicas[j]) ==
              Joined(Joined(h.replicas[j], *d1), h.replicas[i]));
  }));
}

TYPED_TEST_P(CrdtLaws, CopiesAreIndependentValues) {
  EXPECT_TRUE(rc::check("mutating a copy leaves the original unchanged", [] {
    auto h = GenHistory<TypeParam>();
    const auto i = *rc::gen::inRange<std::size_t>(0, h.replicas.size());
    const TypeParam original = h.replicas[i];
    TypeParam copy = original;
    RC_ASSERT(copy == original);
    const auto op = DrawOperation(h);
    (void)ApplyChecked(op, copy, i);
    RC_ASSERT(original == h.replicas[i]);
  }));
}

TYPED_TEST_P(CrdtLaws, EncodingRoundTrips) {
  if constexpr (!requires(const TypeParam& t) { CrdtTraits<TypeParam>::RoundTrip(t); }) {
    GTEST_SKIP() << "CrdtTraits has no RoundTrip for this type";
  } else {
    EXPECT_TRUE(rc::check("decode(encode(s)) == s", [] {
      const auto h = GenHistory<TypeParam>();
      for (const TypeParam& s : h.replicas) CheckRoundTrip(s);
      for (const TypeParam& d : h.deltas) CheckRoundTrip(d);
    }));
  }
}

REGISTER_TYPED_TEST_SUITE_P(CrdtLaws, SatisfiesTheConcept, JoinIsCommutative, JoinIsAssociative,
                            JoinIsIdempotent, BottomIsIdentity,
                            MutationIsInflationAndDeltaJoinEqualsMutation, ConcurrentDeltasCommute,
                            CopiesAreIndependentValues, EncodingRoundTrips);

}  // namespace converge::testing

// Instantiates the law suite for the type given after `Name` (commas are
// fine: CONVERGE_CRDT_LAWS(CartMap, OrMap<std::string, CausalCounter>)).
// Use at namespace scope; requires a converge::testing::CrdtTraits
// specialization for the type.
#define CONVERGE_CRDT_LAWS(Name, ...)                              \
  namespace converge::testing {                                    \
  using LawTypes_##Name = ::testing::Types<__VA_ARGS__>;           \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, CrdtLaws, LawTypes_##Name); \
  }                                                                \
  static_assert(true, "")

#endif  // CONVERGE_PROPERTY_TESTS_LAW_SUITE_H_
