// The contracts every converge CRDT satisfies, as concepts.
//
// Lattice<T>: T is a regular value type (default-constructible to the bottom
// element, copyable, equality-comparable) with an in-place Join that is
// commutative, associative and idempotent. The compiler checks the shape;
// property-tests/law_suite.h checks the laws.
//
// DeltaCrdt<T>: a Lattice whose mutators change the state in place and return
// a delta of type T; joining that delta into any replica has the effect of
// the mutation. IsBottom() tells a no-op delta from one worth shipping.
//
// CausalCrdt<T>: a DeltaCrdt built from a dot store and a causal context, so
// it can be embedded as the value type of an OrMap.

#ifndef CONVERGE_CRDT_CONCEPTS_H_
#define CONVERGE_CRDT_CONCEPTS_H_

#include <concepts>

#include "crdt/causal_context.h"

namespace converge::crdt {

template <class T>
concept Lattice = std::regular<T> && requires(T& a, const T& b) {
  a.Join(b);
};

template <class T>
concept DeltaCrdt = Lattice<T> && requires(const T& t) {
  { t.IsBottom() } -> std::convertible_to<bool>;
};

template <class T>
concept CausalCrdt = DeltaCrdt<T> && requires(const T& t) {
  typename T::Store;
  { t.store() } -> std::same_as<const typename T::Store&>;
  { t.context() } -> std::same_as<const CausalContext&>;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_CONCEPTS_H_
