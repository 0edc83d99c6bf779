// OrMap<K, V>: a map from keys to causal CRDTs that share the map's causal
// context (Almeida et al. 2018, §7.2).
//
// V is any CausalCrdt: CausalCounter, EwFlag, MvRegister, OrSet, or another
// OrMap. Updating a key runs one of V's mutators on the key's value; the
// value's dots come from the map's context. Removing a key removes only the
// dots observed here: an update made concurrently elsewhere survives, and
// only that update's effect remains (for a CausalCounter, its amount).
//
// K needs std::hash<K> and operator==; Keys() sorts when K is totally
// ordered.

#ifndef CONVERGE_CRDT_OR_MAP_H_
#define CONVERGE_CRDT_OR_MAP_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <optional>
#include <ostream>
#include <type_traits>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/concepts.h"
#include "crdt/dot_store.h"
#include "crdt/internal/causal.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

template <class K, CausalCrdt V>
class OrMap : public internal::Causal<DotMap<K, typename V::Store>> {
  using Base = internal::Causal<DotMap<K, typename V::Store>>;
  using Access = internal::CausalAccess;

 public:
  using Key = K;
  using Value = V;
  using ValueStore = typename V::Store;

  OrMap() = default;
  static OrMap FromParts(DotMap<K, ValueStore> store, CausalContext context) {
    return {std::move(store), std::move(context)};
  }

  // Applies a mutator of V to the value at `key` (a bottom V when absent) and
  // returns the map delta. `mutate` is called as mutate(V&) and must return
  // the V delta of a V mutator, for example
  //   cart.Update("apple", [&](CausalCounter& q) { return q.Increment(r, 2); });
  // If mutate throws, the map is unchanged (V's mutators give the strong
  // guarantee). A value left empty (bottom store) removes the key.
  template <class F>
  requires std::same_as<std::invoke_result_t<F, V&>, V> OrMap Update(const K& key, F&& mutate) {
    OrMap delta;
    using Changes = typename DotMap<K, ValueStore>::DotChanges;
    this->store_.ModifyReported(key, [&](ValueStore& store, Changes& changes) {
      // Lend the key's store and the shared context to a V for the mutator,
      // and take them back whatever happens.
      const std::uint64_t held = store.DotCount();
      V value;
      Access::StoreOf(value) = std::move(store);
      Access::ContextOf(value) = std::move(this->context_);
      struct Restore {
        V& value;
        ValueStore& store;
        CausalContext& context;
        ~Restore() {
          store = std::move(Access::StoreOf(value));
          context = std::move(Access::ContextOf(value));
        }
      } restore{value, store, this->context_};
      V value_delta = std::forward<F>(mutate)(value);
      // A mutator's delta holds the dots it created in its store, and those
      // plus the dots it removed in its context. A `seen` mutator's context
      // may also hold dots this store never held (not received yet, or
      // removed already): then the count of dots really removed tells the
      // map to keep only the listed dots its index holds for the key.
      const ValueStore& added = Access::StoreOf(value_delta);
      added.ForEachDot([&](const Dot& d) { changes.added.push_back(d); });
      Access::ContextOf(value_delta).ForEachDot([&](const Dot& d) {
        if (!ContainsDot(added, d)) changes.removed.push_back(d);
      });
      const std::uint64_t removed = held + changes.added.size() - Access::StoreOf(value).DotCount();
      if (removed != changes.removed.size()) changes.removed_from_store = removed;
      delta.context_ = std::move(Access::ContextOf(value_delta));
      if (!added.empty()) delta.store_.Insert(key, std::move(Access::StoreOf(value_delta)));
    });
    return delta;
  }

  // Removes `key` as observed here: every dot under it. Absent key: no-op,
  // bottom delta.
  OrMap Remove(const K& key) {
    OrMap delta;
    const ValueStore* store = this->store_.Find(key);
    if (store == nullptr) return delta;
    store->ForEachDot([&](const Dot& d) { delta.context_.Insert(d); });
    this->store_.Erase(key);
    return delta;
  }

  // Removes `key` as `seen` observed it: exactly the dots under `key` that
  // `seen` holds, also those this replica has not received yet (they are
  // removed when they arrive); updates `seen` did not observe survive. `seen`
  // must hold only dots of `key` — DotsOf(key) of the copy a client read, at
  // any replica — never a whole map's context, whose dots of other keys this
  // replica has not received would be removed too.
  OrMap Remove(const K& key, const CausalContext& seen) {
    return this->template RemoveSeen<OrMap>(this->OwnDots(key, seen));
  }

  // Removes every key as observed here.
  OrMap Clear() {
    auto delta = Base::template RemovalOf<OrMap>(this->store_);
    this->store_.clear();
    return delta;
  }

  // Removes every key as `seen` observed it (the LiveDots() of a copy read
  // anywhere): the dots `seen` holds, received here or not.
  OrMap Clear(const CausalContext& seen) { return this->template RemoveSeen<OrMap>(seen); }

  // The dots under `key` here, as a causal context (empty when absent): what
  // a reader of this copy saw of the key.
  [[nodiscard]] CausalContext DotsOf(const K& key) const {
    CausalContext dots;
    if (const ValueStore* s = this->store_.Find(key)) {
      s->ForEachDot([&](const Dot& d) { dots.Insert(d); });
    }
    return dots;
  }

  [[nodiscard]] bool Contains(const K& key) const { return this->store_.Contains(key); }
  [[nodiscard]] std::size_t size() const { return this->store_.size(); }
  [[nodiscard]] bool empty() const { return this->store_.empty(); }

  // The value at `key` as a standalone V (its store and a copy of the shared
  // context), or nullopt when absent.
  [[nodiscard]] std::optional<V> Get(const K& key) const {
    const ValueStore* store = this->store_.Find(key);
    if (store == nullptr) return std::nullopt;
    return V::FromParts(*store, this->context_);
  }

  // The keys, sorted when K is totally ordered.
  [[nodiscard]] std::vector<K> Keys() const {
    std::vector<K> keys;
    keys.reserve(size());
    for (const auto& entry : this->store_.entries()) keys.push_back(entry.key);
    if constexpr (std::totally_ordered<K>) std::sort(keys.begin(), keys.end());
    return keys;
  }

  // Calls f(const K&, const V&) for every key, in no particular order. The V
  // passed shares nothing with the map; building it copies the context, so
  // prefer Get for single keys and this for whole-map reads.
  template <class F>
  void ForEach(F&& f) const {
    for (const auto& entry : this->store_.entries()) {
      f(entry.key, V::FromParts(entry.store, this->context_));
    }
  }

  void Join(const OrMap& other) { this->JoinCausal(other); }

  void reserve(std::size_t n) { this->store_.reserve(n); }

  friend std::ostream& operator<<(std::ostream& os, const OrMap& m) {
    os << "OrMap{";
    for (const auto& entry : m.store_.entries()) {
      if constexpr (requires(std::ostream & o, const K& k) { o << k; }) os << entry.key;
      os << "->" << V::FromParts(entry.store, CausalContext{}) << " ";
    }
    return os << m.context_ << "}";
  }

 private:
  using Base::Base;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_OR_MAP_H_
