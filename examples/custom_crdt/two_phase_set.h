// TwoPhaseSet<T>: an example of a CRDT written outside converge, checked with
// converge's law suite (two_phase_set_test.cc, docs/testing-your-types.md).
//
// A two-phase set holds a grow-only set of added elements and a grow-only set
// of removed elements (tombstones). An element is present when added and
// never removed; once removed it can never come back. Join is the union of
// both sets.

#ifndef CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_H_
#define CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_H_

#include <set>
#include <utility>

#include "crdt/replica_id.h"

namespace example {

template <class T>
class TwoPhaseSet {
 public:
  // Mutators return the delta, like converge's own types. The replica id is
  // unused by this type but keeps the mutator shape uniform.
  TwoPhaseSet Add(converge::crdt::ReplicaId /*replica*/, const T& value) {
    TwoPhaseSet delta;
    delta.added_.insert(value);
    added_.insert(value);
    return delta;
  }

  // Removes a present element for good. Removing an element that is not
  // present does nothing (it would otherwise block a future add).
  TwoPhaseSet Remove(const T& value) {
    TwoPhaseSet delta;
    if (!Contains(value)) return delta;
    delta.removed_.insert(value);
    removed_.insert(value);
    return delta;
  }

  [[nodiscard]] bool Contains(const T& value) const {
    return added_.contains(value) && !removed_.contains(value);
  }

  void Join(const TwoPhaseSet& other) {
    added_.insert(other.added_.begin(), other.added_.end());
    removed_.insert(other.removed_.begin(), other.removed_.end());
  }

  [[nodiscard]] bool IsBottom() const { return added_.empty() && removed_.empty(); }

  // The two grow-only sets, for a codec (two_phase_set_codec.h).
  [[nodiscard]] const std::set<T>& added() const { return added_; }
  [[nodiscard]] const std::set<T>& removed() const { return removed_; }
  static TwoPhaseSet FromParts(std::set<T> added, std::set<T> removed) {
    TwoPhaseSet s;
    s.added_ = std::move(added);
    s.removed_ = std::move(removed);
    return s;
  }

  friend bool operator==(const TwoPhaseSet&, const TwoPhaseSet&) = default;

 private:
  std::set<T> added_;
  std::set<T> removed_;
};

}  // namespace example

#endif  // CONVERGE_EXAMPLES_CUSTOM_CRDT_TWO_PHASE_SET_H_
