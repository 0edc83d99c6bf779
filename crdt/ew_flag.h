// EwFlag: an enable-wins flag. Enabling creates a fresh dot; disabling
// removes the dots it has observed. A disable concurrent with an enable does
// not see the enable's dot, so the flag ends up enabled.

#ifndef CONVERGE_CRDT_EW_FLAG_H_
#define CONVERGE_CRDT_EW_FLAG_H_

#include <ostream>

#include "crdt/causal_context.h"
#include "crdt/dot_store.h"
#include "crdt/internal/causal.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

class EwFlag : public internal::Causal<DotSet> {
 public:
  EwFlag() = default;
  static EwFlag FromParts(DotSet store, CausalContext context) {
    return {std::move(store), std::move(context)};
  }

  // Sets the flag; the new dot replaces every dot observed here, so the
  // metadata stays one dot per enabling replica.
  EwFlag Enable(ReplicaId replica) {
    auto delta = RemovalOf<EwFlag>(store_);
    const Dot dot = context_.NextDot(replica);
    store_ = DotSet(dot);
    delta.store_ = DotSet(dot);
    delta.context_.Insert(dot);
    return delta;
  }

  // Clears the flag as observed here.
  EwFlag Disable() {
    auto delta = RemovalOf<EwFlag>(store_);
    store_.clear();
    return delta;
  }

  // Disables as `seen` observed the flag (its LiveDots() as a client read
  // it, at any replica): the enables `seen` holds are removed, also those not
  // received here yet; an enable `seen` did not observe keeps the flag on.
  EwFlag Disable(const CausalContext& seen) { return RemoveSeen<EwFlag>(seen); }

  [[nodiscard]] bool Value() const { return !store_.empty(); }

  void Join(const EwFlag& other) { JoinCausal(other); }

  friend std::ostream& operator<<(std::ostream& os, const EwFlag& f) {
    return os << "EwFlag{" << (f.Value() ? "on" : "off") << " " << f.context_ << "}";
  }

 private:
  using Causal::Causal;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_EW_FLAG_H_
