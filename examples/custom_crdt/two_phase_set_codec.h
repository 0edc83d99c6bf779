// The wire format of the example TwoPhaseSet: what a user writes so that
// converge can store, replicate and simulate their own type
// (docs/wire-format.md, "Your own types"; docs/simulation.md).
//
// A TypeCodec names the type (its descriptor, hashed into the type id every
// encoding carries) and maps a value to and from the columns of converge's
// one schema. Here the added elements go in `keys` and the removed ones in
// `values`, each in ascending order. Read may be lenient about order and
// extra columns: Decode re-encodes every untrusted input and refuses bytes
// that are not the canonical encoding of what was read.

#ifndef CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_CODEC_H_
#define CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_CODEC_H_

#include <set>
#include <string>
#include <utility>

#include "crdt/codec/codec.h"
#include "examples/custom_crdt/two_phase_set.h"

template <class T>
struct converge::codec::TypeCodec<example::TwoPhaseSet<T>> {
  using Set = example::TwoPhaseSet<T>;
  static std::string Descriptor() {
    return "example.two_phase_set<" + std::string(ValueCodec<T>::kName) + ">";
  }
  static void Write(const Set& v, Columns& c) {
    for (const T& e : v.added()) c.keys.push_back(ValueCodec<T>::Encode(e));
    for (const T& e : v.removed()) c.values.push_back(ValueCodec<T>::Encode(e));
  }
  static Status Read(const Columns& c, Set* out) {
    std::set<T> added, removed;
    for (const std::string& bytes : c.keys) {
      const auto e = ValueCodec<T>::Decode(bytes);
      if (!e) return InvalidArgument("malformed added element");
      added.insert(*e);
    }
    for (const std::string& bytes : c.values) {
      const auto e = ValueCodec<T>::Decode(bytes);
      if (!e) return InvalidArgument("malformed removed element");
      removed.insert(*e);
    }
    *out = Set::FromParts(std::move(added), std::move(removed));
    return Status::Ok();
  }
};

#endif  // CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_CODEC_H_
