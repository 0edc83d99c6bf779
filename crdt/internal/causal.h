// Shared representation of the causal CRDTs: a dot store and a causal
// context. Each public causal type (EwFlag, MvRegister, CausalCounter, OrSet,
// OrMap) derives from Causal<Store> and adds its own mutators and queries.

#ifndef CONVERGE_CRDT_INTERNAL_CAUSAL_H_
#define CONVERGE_CRDT_INTERNAL_CAUSAL_H_

#include <utility>

#include "crdt/causal_context.h"
#include "crdt/dot_store.h"

namespace converge::crdt::internal {

struct CausalAccess;

template <class S>
class Causal {
 public:
  using Store = S;

  [[nodiscard]] const Store& store() const { return store_; }
  [[nodiscard]] const CausalContext& context() const { return context_; }

  // The identity of Join: no live dots and nothing seen.
  [[nodiscard]] bool IsBottom() const { return store_.empty() && context_.empty(); }

  // The live dots, as a causal context: what a reader of this copy saw, to
  // pass to the `seen` overloads of the mutators at any replica (a client
  // causal context; docs/semantics.md). For one element of an OrSet or one
  // key of an OrMap, use their DotsOf(key).
  [[nodiscard]] CausalContext LiveDots() const {
    CausalContext dots;
    store_.ForEachDot([&](const Dot& d) { dots.Insert(d); });
    return dots;
  }

  friend bool operator==(const Causal&, const Causal&) = default;

 protected:
  Causal() = default;
  Causal(Store store, CausalContext context)
      : store_(std::move(store)), context_(std::move(context)) {}

  void JoinCausal(const Causal& other) {
    if (this == &other) return;  // idempotent, and the store join must not alias
    JoinStore(store_, context_, other.store_, other.context_);
    context_.Join(other.context_);
  }

  // A delta that removes every live dot of `store` (observed remove): an
  // empty store whose context holds exactly those dots.
  template <class Derived>
  static Derived RemovalOf(const Store& store) {
    Derived delta;
    store.ForEachDot([&](const Dot& d) { delta.context_.Insert(d); });
    return delta;
  }

  // The context of a remove that acts on what `seen` covers rather than on
  // what this replica holds (a client's causal context): the dots of `live`
  // (a part of this state's store) that `seen` holds, plus the dots of
  // `seen` this replica has not received at all — removed before they
  // arrive. Dots of `seen` this replica knows and that are not in `live`
  // are left alone: they were removed already, or belong to another element.
  template <class Live>
  [[nodiscard]] CausalContext SeenRemoval(const Live& live, const CausalContext& seen) const {
    CausalContext removal = seen.Minus(context_);
    live.ForEachDot([&](const Dot& d) {
      if (seen.Contains(d)) removal.Insert(d);
    });
    return removal;
  }

  // Applies the removal `context` (see SeenRemoval) and returns its delta:
  // an empty store with that context. Joining the delta is the mutation.
  template <class Derived>
  Derived ApplyRemoval(CausalContext context) {
    Derived delta;
    delta.context_ = std::move(context);
    JoinCausal(delta);
    return delta;
  }

  Store store_;
  CausalContext context_;

  friend struct CausalAccess;
};

// Gives OrMap (which lends its shared context to embedded values) and the
// codec access to the parts of any causal type.
struct CausalAccess {
  template <class T>
  static typename T::Store& StoreOf(T& value) {
    return static_cast<Causal<typename T::Store>&>(value).store_;
  }
  template <class T>
  static CausalContext& ContextOf(T& value) {
    return static_cast<Causal<typename T::Store>&>(value).context_;
  }
};

}  // namespace converge::crdt::internal

#endif  // CONVERGE_CRDT_INTERNAL_CAUSAL_H_
