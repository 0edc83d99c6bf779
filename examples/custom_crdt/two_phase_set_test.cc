// Checks the example TwoPhaseSet against converge's CRDT law suite: the
// whole of what a user writes to test their own type.

#include "examples/custom_crdt/two_phase_set.h"

#include <string>

#include "examples/custom_crdt/two_phase_set_codec.h"
#include "property-tests/codec_round_trip.h"
#include "property-tests/law_suite.h"

// CodecRoundTrip adds the wire-format property (two_phase_set_codec.h).
template <>
struct converge::testing::CrdtTraits<example::TwoPhaseSet<int>>
    : converge::testing::CodecRoundTrip<example::TwoPhaseSet<int>> {
  using Set = example::TwoPhaseSet<int>;
  static rc::Gen<Operation<Set>> Operations() {
    return rc::gen::apply(
        [](bool add, int v) {
          if (add) {
            return Operation<Set>{"Add(" + std::to_string(v) + ")",
                                  [v](Set& s, converge::crdt::ReplicaId r) { return s.Add(r, v); }};
          }
          return Operation<Set>{"Remove(" + std::to_string(v) + ")",
                                [v](Set& s, converge::crdt::ReplicaId) { return s.Remove(v); }};
        },
        rc::gen::arbitrary<bool>(), rc::gen::inRange(0, 8));
  }
};

CONVERGE_CRDT_LAWS(TwoPhaseSet, example::TwoPhaseSet<int>);
