// CrdtTraits for every converge type: generators of their mutations, used by
// the law suite (laws_test.cc) and the model and convergence properties, and
// the codec round trip (codec_round_trip.h), so the law suite's
// EncodingRoundTrips runs for every type. Needs converge::codec.
//
// Element and key ranges are small on purpose, so random histories hit the
// interesting cases (re-adds, removes of present elements, concurrent updates
// of one key) often, but large enough (> DotMap::kIndexThreshold) to exercise
// the indexed join paths too.

#ifndef CONVERGE_PROPERTY_TESTS_CRDT_TRAITS_H_
#define CONVERGE_PROPERTY_TESTS_CRDT_TRAITS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "crdt/crdt.h"
#include "property-tests/codec_round_trip.h"
#include "property-tests/law_suite.h"

namespace converge::testing {

using crdt::ReplicaId;

// Amounts for counters: mostly small, sometimes close to the 64-bit limit so
// the checked-overflow paths run too.
inline rc::Gen<std::uint64_t> Amounts() {
  return rc::gen::weightedOneOf<std::uint64_t>(
      {{8, rc::gen::inRange<std::uint64_t>(0, 10)},
       {1, rc::gen::map(rc::gen::inRange<std::uint64_t>(0, 4), [](std::uint64_t k) {
          return std::numeric_limits<std::uint64_t>::max() / 2 - k;
        })}});
}

inline constexpr int kElements = 12;  // > DotMap::kIndexThreshold

template <class T>
Operation<T> Op(std::string name, std::function<T(T&, ReplicaId)> apply) {
  return Operation<T>{std::move(name), std::move(apply)};
}

template <>
struct CrdtTraits<crdt::GCounter> : CodecRoundTrip<crdt::GCounter> {
  using T = crdt::GCounter;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::map(Amounts(), [](std::uint64_t n) {
      return Op<T>("Increment(" + std::to_string(n) + ")",
                   [n](T& c, ReplicaId r) { return c.Increment(r, n); });
    });
  }
};

template <>
struct CrdtTraits<crdt::PnCounter> : CodecRoundTrip<crdt::PnCounter> {
  using T = crdt::PnCounter;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::apply(
        [](bool up, std::uint64_t n) {
          if (up) {
            return Op<T>("Increment(" + std::to_string(n) + ")",
                         [n](T& c, ReplicaId r) { return c.Increment(r, n); });
          }
          return Op<T>("Decrement(" + std::to_string(n) + ")",
                       [n](T& c, ReplicaId r) { return c.Decrement(r, n); });
        },
        rc::gen::arbitrary<bool>(), Amounts());
  }
};

template <>
struct CrdtTraits<crdt::LwwRegister<int>> : CodecRoundTrip<crdt::LwwRegister<int>> {
  using T = crdt::LwwRegister<int>;
  // Timestamps from a small range so equal timestamps (ties broken by
  // writer, then value) happen often.
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::apply(
        [](std::uint64_t physical, std::uint32_t logical, int v) {
          const crdt::HlcTimestamp ts{physical, logical};
          return Op<T>("Assign(@" + std::to_string(physical) + "." + std::to_string(logical) +
                           ", " + std::to_string(v) + ")",
                       [ts, v](T& reg, ReplicaId r) { return reg.Assign(r, ts, v); });
        },
        rc::gen::inRange<std::uint64_t>(0, 6), rc::gen::inRange<std::uint32_t>(0, 3),
        rc::gen::inRange(0, 5));
  }
};

template <>
struct CrdtTraits<crdt::MvRegister<int>> : CodecRoundTrip<crdt::MvRegister<int>> {
  using T = crdt::MvRegister<int>;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::weightedOneOf<Operation<T>>(
        {{4, rc::gen::map(rc::gen::inRange(0, 5),
                          [](int v) {
                            return Op<T>("Assign(" + std::to_string(v) + ")",
                                         [v](T& reg, ReplicaId r) { return reg.Assign(r, v); });
                          })},
         {1, rc::gen::just(Op<T>("Clear()", [](T& reg, ReplicaId) { return reg.Clear(); }))}});
  }
  static rc::Gen<Operation<T>> SeenOperations(const T& read) {
    const crdt::CausalContext seen = read.LiveDots();
    return rc::gen::weightedOneOf<Operation<T>>(
        {{3, rc::gen::map(rc::gen::inRange(0, 5),
                          [seen](int v) {
                            return Op<T>(
                                "Assign(" + std::to_string(v) + ", seen)",
                                [v, seen](T& reg, ReplicaId r) { return reg.Assign(r, v, seen); });
                          })},
         {1, rc::gen::just(
                 Op<T>("Clear(seen)", [seen](T& reg, ReplicaId) { return reg.Clear(seen); }))}});
  }
};

template <>
struct CrdtTraits<crdt::EwFlag> : CodecRoundTrip<crdt::EwFlag> {
  using T = crdt::EwFlag;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::element(Op<T>("Enable()", [](T& f, ReplicaId r) { return f.Enable(r); }),
                            Op<T>("Disable()", [](T& f, ReplicaId) { return f.Disable(); }));
  }
  static rc::Gen<Operation<T>> SeenOperations(const T& read) {
    const crdt::CausalContext seen = read.LiveDots();
    return rc::gen::just(
        Op<T>("Disable(seen)", [seen](T& f, ReplicaId) { return f.Disable(seen); }));
  }
};

template <>
struct CrdtTraits<crdt::CausalCounter> : CodecRoundTrip<crdt::CausalCounter> {
  using T = crdt::CausalCounter;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::weightedOneOf<Operation<T>>(
        {{5, rc::gen::map(Amounts(),
                          [](std::uint64_t n) {
                            return Op<T>("Increment(" + std::to_string(n) + ")",
                                         [n](T& c, ReplicaId r) { return c.Increment(r, n); });
                          })},
         {2, rc::gen::map(rc::gen::inRange<std::uint64_t>(0, 10),
                          [](std::uint64_t n) {
                            return Op<T>("Set(" + std::to_string(n) + ")",
                                         [n](T& c, ReplicaId r) { return c.Set(r, n); });
                          })},
         {1, rc::gen::just(Op<T>("Reset()", [](T& c, ReplicaId) { return c.Reset(); }))}});
  }
  static rc::Gen<Operation<T>> SeenOperations(const T& read) {
    const crdt::CausalContext seen = read.LiveDots();
    return rc::gen::weightedOneOf<Operation<T>>(
        {{3, rc::gen::map(rc::gen::inRange<std::uint64_t>(0, 10),
                          [seen](std::uint64_t n) {
                            return Op<T>(
                                "Set(" + std::to_string(n) + ", seen)",
                                [n, seen](T& c, ReplicaId r) { return c.Set(r, n, seen); });
                          })},
         {1,
          rc::gen::just(Op<T>("Reset(seen)", [seen](T& c, ReplicaId) { return c.Reset(seen); }))}});
  }
};

template <class E>
E MakeElement(int i) {
  if constexpr (std::is_same_v<E, std::string>) {
    return "item-" + std::to_string(i);
  } else {
    return static_cast<E>(i);
  }
}

template <class E>
struct CrdtTraits<crdt::OrSet<E>> : CodecRoundTrip<crdt::OrSet<E>> {
  using T = crdt::OrSet<E>;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::weightedOneOf<Operation<T>>(
        {{6, rc::gen::map(rc::gen::inRange(0, kElements),
                          [](int i) {
                            return Op<T>("Add(" + std::to_string(i) + ")", [i](T& s, ReplicaId r) {
                              return s.Add(r, MakeElement<E>(i));
                            });
                          })},
         {4, rc::gen::map(rc::gen::inRange(0, kElements),
                          [](int i) {
                            return Op<T>("Remove(" + std::to_string(i) + ")", [i](T& s, ReplicaId) {
                              return s.Remove(MakeElement<E>(i));
                            });
                          })},
         {1, rc::gen::just(Op<T>("Clear()", [](T& s, ReplicaId) { return s.Clear(); }))}});
  }
  static rc::Gen<Operation<T>> SeenOperations(const T& read) {
    return rc::gen::weightedOneOf<Operation<T>>(
        {{4, rc::gen::map(rc::gen::inRange(0, kElements),
                          [read](int i) {
                            const crdt::CausalContext seen = read.DotsOf(MakeElement<E>(i));
                            return Op<T>("Remove(" + std::to_string(i) + ", seen)",
                                         [i, seen](T& s, ReplicaId) {
                                           return s.Remove(MakeElement<E>(i), seen);
                                         });
                          })},
         {1, rc::gen::just(Op<T>("Clear(seen)", [seen = read.LiveDots()](T& s, ReplicaId) {
            return s.Clear(seen);
          }))}});
  }
};

// An OrMap's operations: update a key with one of V's operations, remove a
// key, or clear the map.
template <class K, class V>
struct CrdtTraits<crdt::OrMap<K, V>> : CodecRoundTrip<crdt::OrMap<K, V>> {
  using T = crdt::OrMap<K, V>;
  static rc::Gen<Operation<T>> Operations() {
    return rc::gen::weightedOneOf<Operation<T>>(
        {{6, rc::gen::apply(
                 [](int k, Operation<V> inner) {
                   const K key = MakeElement<K>(k);
                   return Op<T>("Update(" + std::to_string(k) + ", " + inner.name + ")",
                                [key, inner](T& m, ReplicaId r) {
                                  return m.Update(key, [&](V& v) { return inner.apply(v, r); });
                                });
                 },
                 rc::gen::inRange(0, kElements), CrdtTraits<V>::Operations())},
         {2, rc::gen::map(rc::gen::inRange(0, kElements),
                          [](int k) {
                            return Op<T>("Remove(" + std::to_string(k) + ")", [k](T& m, ReplicaId) {
                              return m.Remove(MakeElement<K>(k));
                            });
                          })},
         {1, rc::gen::just(Op<T>("Clear()", [](T& m, ReplicaId) { return m.Clear(); }))}});
  }
  // Removes and clears as a read saw them, and V's own seen operations on the
  // read's value at a key (when V has them).
  static rc::Gen<Operation<T>> SeenOperations(const T& read) {
    rc::Gen<Operation<T>> remove = rc::gen::map(rc::gen::inRange(0, kElements), [read](int k) {
      const crdt::CausalContext seen = read.DotsOf(MakeElement<K>(k));
      return Op<T>("Remove(" + std::to_string(k) + ", seen)",
                   [k, seen](T& m, ReplicaId) { return m.Remove(MakeElement<K>(k), seen); });
    });
    rc::Gen<Operation<T>> clear = rc::gen::just(
        Op<T>("Clear(seen)", [seen = read.LiveDots()](T& m, ReplicaId) { return m.Clear(seen); }));
    if constexpr (requires(const V& v) { CrdtTraits<V>::SeenOperations(v); }) {
      rc::Gen<Operation<T>> update = rc::gen::mapcat(rc::gen::inRange(0, kElements), [read](int k) {
        const V value = read.Get(MakeElement<K>(k)).value_or(V{});
        return rc::gen::map(CrdtTraits<V>::SeenOperations(value), [k](Operation<V> inner) {
          const K key = MakeElement<K>(k);
          return Op<T>("Update(" + std::to_string(k) + ", " + inner.name + ")",
                       [key, inner](T& m, ReplicaId r) {
                         return m.Update(key, [&](V& v) { return inner.apply(v, r); });
                       });
        });
      });
      return rc::gen::weightedOneOf<Operation<T>>({{3, update}, {2, remove}, {1, clear}});
    } else {
      return rc::gen::weightedOneOf<Operation<T>>({{2, remove}, {1, clear}});
    }
  }
};

}  // namespace converge::testing

#endif  // CONVERGE_PROPERTY_TESTS_CRDT_TRAITS_H_
