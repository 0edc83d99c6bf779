// OrSet<T>: an add-wins observed-remove set (the optimized OR-set of Bieniusa
// et al. 2012 in its delta-state form).
//
// Each element carries the dots of the adds that introduced it. Remove drops
// the dots it has observed, so an add concurrent with the remove (whose dot
// the remove could not see) survives: add wins. Re-adding a present element
// replaces its dots with one new dot, so metadata stays at most one dot per
// element per replica; the causal context stays a version vector. No
// tombstones are kept.
//
// T needs std::hash<T> and operator==; Elements() sorts when T is totally
// ordered. Add is O(1) expected and its delta is O(1) in the size of the set.

#ifndef CONVERGE_CRDT_OR_SET_H_
#define CONVERGE_CRDT_OR_SET_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <ostream>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/dot_store.h"
#include "crdt/internal/causal.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

template <class T>
class OrSet : public internal::Causal<DotMap<T, DotSet>> {
  using Base = internal::Causal<DotMap<T, DotSet>>;

 public:
  OrSet() = default;
  static OrSet FromParts(DotMap<T, DotSet> store, CausalContext context) {
    return {std::move(store), std::move(context)};
  }

  // Adds `value` with a new dot of `replica`; the delta holds the element
  // with that dot and a context of the new dot plus the element's previous
  // dots (so the re-add supersedes them everywhere).
  OrSet Add(ReplicaId replica, T value) {
    OrSet delta;
    const Dot dot = this->context_.NextDot(replica);
    delta.context_.Insert(dot);
    using Changes = typename DotMap<T, DotSet>::DotChanges;
    this->store_.ModifyReported(value, [&](DotSet& dots, Changes& changes) {
      dots.ForEachDot([&](const Dot& old) {
        delta.context_.Insert(old);
        changes.removed.push_back(old);
      });
      dots = DotSet(dot);
      changes.added.push_back(dot);
    });
    delta.store_.Insert(std::move(value), DotSet(dot));
    return delta;
  }

  // Removes `value` as observed here. Removing an absent element is a no-op
  // and returns the bottom delta.
  OrSet Remove(const T& value) {
    OrSet delta;
    const DotSet* dots = this->store_.Find(value);
    if (dots == nullptr) return delta;
    dots->ForEachDot([&](const Dot& d) { delta.context_.Insert(d); });
    this->store_.Erase(value);
    return delta;
  }

  // Removes `value` as `seen` observed it: exactly the dots of `value` that
  // `seen` holds, also those this replica has not received yet (they are
  // removed when they arrive); adds `seen` did not observe survive. `seen`
  // must hold only dots of `value` — DotsOf(value) of the copy a client
  // read, at any replica — never a whole state's context, whose dots of
  // other elements this replica has not received would be removed too.
  OrSet Remove(const T& value, const CausalContext& seen) {
    return this->template RemoveSeen<OrSet>(this->OwnDots(value, seen));
  }

  // Removes every element observed here.
  OrSet Clear() {
    auto delta = Base::template RemovalOf<OrSet>(this->store_);
    this->store_.clear();
    return delta;
  }

  // Removes every element as `seen` observed it (the LiveDots() of a copy
  // read anywhere): the dots `seen` holds, received here or not.
  OrSet Clear(const CausalContext& seen) { return this->template RemoveSeen<OrSet>(seen); }

  // The dots of `value` here, as a causal context (empty when absent): what
  // a reader of this copy saw of the element.
  [[nodiscard]] CausalContext DotsOf(const T& value) const {
    CausalContext dots;
    if (const DotSet* s = this->store_.Find(value))
      s->ForEachDot([&](const Dot& d) { dots.Insert(d); });
    return dots;
  }

  [[nodiscard]] bool Contains(const T& value) const { return this->store_.Contains(value); }
  [[nodiscard]] std::size_t size() const { return this->store_.size(); }
  [[nodiscard]] bool empty() const { return this->store_.empty(); }

  // The elements, sorted when T is totally ordered.
  [[nodiscard]] std::vector<T> Elements() const {
    std::vector<T> elements;
    elements.reserve(size());
    for (const auto& entry : this->store_.entries()) elements.push_back(entry.key);
    if constexpr (std::totally_ordered<T>) std::sort(elements.begin(), elements.end());
    return elements;
  }

  // Calls f(const T&) for every element, in no particular order.
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& entry : this->store_.entries()) f(entry.key);
  }

  void Join(const OrSet& other) { this->JoinCausal(other); }

  // Capacity hint for bulk loading.
  void reserve(std::size_t n) { this->store_.reserve(n); }

  friend std::ostream& operator<<(std::ostream& os, const OrSet& s) {
    os << "OrSet{";
    for (const auto& entry : s.store_.entries()) {
      if constexpr (requires(std::ostream & o, const T& v) { o << v; }) os << entry.key;
      os << "[";
      entry.store.ForEachDot([&](const Dot& d) { os << d; });
      os << "] ";
    }
    return os << s.context_ << "}";
  }

 private:
  using Base::Base;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_OR_SET_H_
