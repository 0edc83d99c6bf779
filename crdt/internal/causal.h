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

  // A remove acting on exactly the dots `seen` holds (a client's causal
  // context; docs/semantics.md): its delta is an empty store with context
  // `seen`, so it also removes the dots of `seen` this replica has not
  // received yet — they are removed when they arrive. Joining the delta is
  // the mutation.
  template <class Derived>
  Derived RemoveSeen(CausalContext seen) {
    Derived delta;
    delta.context_ = std::move(seen);
    JoinCausal(delta);
    return delta;
  }

  // For a map-like store (OrSet elements, OrMap keys): `seen` without the
  // dots that are live here under another key. A client context for one key
  // holds only that key's dots, so this changes nothing for it; for a context
  // handed in by mistake it keeps a remove of `key` from removing other keys
  // this replica holds. O(dots of seen).
  template <class K>
  [[nodiscard]] CausalContext OwnDots(const K& key, const CausalContext& seen) const {
    const auto foreign = [&](const Dot& d) {
      const auto* entry = store_.FindByDot(d);
      return entry != nullptr && !(entry->key == key);
    };
    bool any = false;
    seen.ForEachDot([&](const Dot& d) { any = any || foreign(d); });
    if (!any) return seen;
    CausalContext own;
    seen.ForEachDot([&](const Dot& d) {
      if (!foreign(d)) own.Insert(d);
    });
    return own;
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
