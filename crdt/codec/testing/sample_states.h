// Sample states of every type the codec encodes, reached through real
// operations: used by the codec tests, the fuzzer's seed corpus and the codec
// benchmarks. Not part of the codec's API (not for installation).
//
// Randomness is a std::mt19937_64 used only through its raw output (whose
// sequence the standard fixes), so a seed gives the same states with every
// compiler and standard library: the committed fuzz corpus depends on it.

#ifndef CONVERGE_CRDT_CODEC_TESTING_SAMPLE_STATES_H_
#define CONVERGE_CRDT_CODEC_TESTING_SAMPLE_STATES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "crdt/crdt.h"

namespace converge::codec::testing {

using Rng = std::mt19937_64;

// Uniform in [0, n) (modulo bias is irrelevant here). Precondition: n > 0.
inline std::uint64_t Uniform(Rng& rng, std::uint64_t n) { return rng() % n; }

// Replica ids as the storage layer mints them (random 64-bit values), and
// the two extremes.
inline constexpr std::array<std::uint64_t, 4> kReplicaIds = {
    0xd1b54a32d192ed03ULL, 0x9e3779b97f4a7c15ULL, 0, std::numeric_limits<std::uint64_t>::max()};

inline crdt::ReplicaId ReplicaAt(std::size_t i) {
  return crdt::ReplicaId{kReplicaIds[i % kReplicaIds.size()]};
}

// Elements, keys and register values: small pools, so histories re-add,
// remove present elements and update one key concurrently; with the empty
// string, binary bytes, a string longer than the small-string buffer and the
// integer extremes.
template <class E>
E Element(Rng& rng);

template <>
inline std::string Element<std::string>(Rng& rng) {
  static const std::array<std::string, 8> kPool = {
      "",
      "apple",
      "pear",
      std::string("\0\xff\x01\x80", 4),
      "an element name longer than the small-string buffer",
      "item-42",
      "\xc3\xa9t\xc3\xa9",
      std::string(1, '\0')};
  return kPool[Uniform(rng, kPool.size())];
}

template <>
inline int Element<int>(Rng& rng) {
  static constexpr std::array<int, 8> kPool = {
      0, 1, -1, 42, 7, 1000, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()};
  return kPool[Uniform(rng, kPool.size())];
}

template <>
inline std::int64_t Element<std::int64_t>(Rng& rng) {
  static constexpr std::array<std::int64_t, 6> kPool = {0,
                                                        -1,
                                                        1,
                                                        123456789012,
                                                        std::numeric_limits<std::int64_t>::min(),
                                                        std::numeric_limits<std::int64_t>::max()};
  return kPool[Uniform(rng, kPool.size())];
}

// Mutator<T>::Mutate(state, replica, rng) applies one random mutation of T
// at `replica` and returns its delta.
template <class T>
struct Mutator;

template <>
struct Mutator<crdt::GCounter> {
  static crdt::GCounter Mutate(crdt::GCounter& c, crdt::ReplicaId r, Rng& rng) {
    return c.Increment(r, 1 + Uniform(rng, 1000));
  }
};

template <>
struct Mutator<crdt::PnCounter> {
  static crdt::PnCounter Mutate(crdt::PnCounter& c, crdt::ReplicaId r, Rng& rng) {
    const std::uint64_t n = 1 + Uniform(rng, 1000);
    return Uniform(rng, 2) == 0 ? c.Increment(r, n) : c.Decrement(r, n);
  }
};

template <class V>
struct Mutator<crdt::LwwRegister<V>> {
  static crdt::LwwRegister<V> Mutate(crdt::LwwRegister<V>& reg, crdt::ReplicaId r, Rng& rng) {
    // Few distinct timestamps, so ties (broken by writer) happen.
    const crdt::HlcTimestamp ts{1'700'000'000'000 + Uniform(rng, 4),
                                static_cast<std::uint32_t>(Uniform(rng, 3))};
    return reg.Assign(r, ts, Element<V>(rng));
  }
};

template <class V>
struct Mutator<crdt::MvRegister<V>> {
  static crdt::MvRegister<V> Mutate(crdt::MvRegister<V>& reg, crdt::ReplicaId r, Rng& rng) {
    if (Uniform(rng, 5) == 0) return reg.Clear();
    return reg.Assign(r, Element<V>(rng));
  }
};

template <>
struct Mutator<crdt::EwFlag> {
  static crdt::EwFlag Mutate(crdt::EwFlag& f, crdt::ReplicaId r, Rng& rng) {
    return Uniform(rng, 3) == 0 ? f.Disable() : f.Enable(r);
  }
};

template <>
struct Mutator<crdt::CausalCounter> {
  static crdt::CausalCounter Mutate(crdt::CausalCounter& c, crdt::ReplicaId r, Rng& rng) {
    switch (Uniform(rng, 6)) {
      case 0:
        return c.Reset();
      case 1:
        return c.Set(r, Uniform(rng, 5));
      default:
        return c.Increment(r, 1 + Uniform(rng, 10));
    }
  }
};

template <class E>
struct Mutator<crdt::OrSet<E>> {
  static crdt::OrSet<E> Mutate(crdt::OrSet<E>& s, crdt::ReplicaId r, Rng& rng) {
    const std::uint64_t kind = Uniform(rng, 12);
    if (kind == 0) return s.Clear();
    if (kind <= 4) return s.Remove(Element<E>(rng));
    return s.Add(r, Element<E>(rng));
  }
};

template <class K, class V>
struct Mutator<crdt::OrMap<K, V>> {
  static crdt::OrMap<K, V> Mutate(crdt::OrMap<K, V>& m, crdt::ReplicaId r, Rng& rng) {
    const std::uint64_t kind = Uniform(rng, 12);
    if (kind == 0) return m.Clear();
    if (kind <= 2) return m.Remove(Element<K>(rng));
    return m.Update(Element<K>(rng), [&](V& v) { return Mutator<V>::Mutate(v, r, rng); });
  }
};

// A random history: `replicas` replicas mutate, join each other's states and
// each other's deltas, `steps` times.
template <class T>
struct History {
  std::vector<T> replicas;
  std::vector<T> deltas;  // every delta, in the order produced
};

template <class T>
History<T> RandomHistory(Rng& rng, std::size_t replicas, int steps) {
  History<T> h;
  h.replicas.assign(replicas, T{});
  for (int s = 0; s < steps; ++s) {
    const std::size_t i = Uniform(rng, replicas);
    const std::uint64_t kind = Uniform(rng, 6);
    if (kind <= 3) {
      h.deltas.push_back(Mutator<T>::Mutate(h.replicas[i], ReplicaAt(i), rng));
    } else if (kind == 4) {
      h.replicas[i].Join(h.replicas[Uniform(rng, replicas)]);
    } else if (!h.deltas.empty()) {
      h.replicas[i].Join(h.deltas[Uniform(rng, h.deltas.size())]);
    }
  }
  return h;
}

template <class T>
struct Sample {
  std::string name;
  T value;
};

// Named samples of T: bottom, single deltas, replica states after a random
// history, a state that saw deltas out of order (dots in the context's
// cloud), and the join of everything.
template <class T>
std::vector<Sample<T>> Samples(std::uint64_t seed = 1) {
  Rng rng(seed);
  std::vector<Sample<T>> out;
  out.push_back({"bottom", T{}});
  {
    T state;
    out.push_back({"first-delta", Mutator<T>::Mutate(state, ReplicaAt(0), rng)});
    out.push_back({"after-one-op", state});
  }
  const History<T> h = RandomHistory<T>(rng, 3, 40);
  for (std::size_t i = 0; i < h.replicas.size(); ++i) {
    out.push_back({"replica-" + std::to_string(i), h.replicas[i]});
  }
  if (!h.deltas.empty()) out.push_back({"last-delta", h.deltas.back()});
  // Every other delta, newest first: a receiver that lost some deltas and
  // got the rest out of order.
  T gaps;
  for (std::size_t i = h.deltas.size(); i-- > 0;) {
    if (i % 2 == 1) gaps.Join(h.deltas[i]);
  }
  out.push_back({"out-of-order", gaps});
  T all;
  for (const T& d : h.deltas) all.Join(d);
  out.push_back({"all-deltas", all});
  return out;
}

// The types the codec tests and the fuzzer exercise. The fuzzer picks one by
// its input's first byte (index into this tuple), and the seed corpus in
// crdt/codec/fuzz-corpus/ is named after kTypeNames: keep the order.
using CodecTypes =
    std::tuple<crdt::GCounter, crdt::PnCounter, crdt::LwwRegister<std::string>,
               crdt::LwwRegister<std::int64_t>, crdt::MvRegister<std::string>, crdt::EwFlag,
               crdt::CausalCounter, crdt::OrSet<std::string>, crdt::OrSet<int>,
               crdt::OrMap<std::string, crdt::CausalCounter>,
               crdt::OrMap<int, crdt::OrSet<std::string>>,
               crdt::OrMap<std::string, crdt::OrMap<int, crdt::MvRegister<std::string>>>>;

inline constexpr std::array<const char*, std::tuple_size_v<CodecTypes>> kTypeNames = {
    "g_counter",   "pn_counter", "lww_register_bytes", "lww_register_i64",
    "mv_register", "ew_flag",    "causal_counter",     "or_set_bytes",
    "or_set_i32",  "cart",       "map_of_sets",        "nested_maps"};

// Calls f.template operator()<T>(index) for every T of CodecTypes.
template <class F>
void ForEachCodecType(F&& f) {
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (f.template operator()<std::tuple_element_t<I, CodecTypes>>(I), ...);
  }
  (std::make_index_sequence<std::tuple_size_v<CodecTypes>>{});
}

}  // namespace converge::codec::testing

#endif  // CONVERGE_CRDT_CODEC_TESTING_SAMPLE_STATES_H_
