// Typed access to a Store: read a key as a CRDT, and apply a local mutator.
//
//   StatusOr<Cart> cart = storage::Read<Cart>(store, "cart:alice");
//   StatusOr<Cart> delta = storage::Update<Cart>(store, "cart:alice", [&](Cart& c, ReplicaId r) {
//     return c.Update("apple", [&](CausalCounter& q) { return q.Increment(r, 2); });
//   });
//
// Update reads the key's state (the mutator needs it to name its dots and
// what it observed), runs the mutator under the store's ReplicaId, makes sure
// the dot it issued is covered by the dot lease, and writes only the delta
// (a merge). When Update returns ok the delta is as durable as the store
// promises; on any error nothing was written.

#ifndef CONVERGE_STORAGE_TYPED_H_
#define CONVERGE_STORAGE_TYPED_H_

#include <string>
#include <utility>

#include "crdt/codec/codec.h"
#include "crdt/codec/status.h"
#include "storage/store.h"

namespace converge::storage {

// The state of `key` decoded as T (bottom when absent).
template <class T>
StatusOr<T> Read(Store& store, std::string_view key) {
  StatusOr<std::optional<std::string>> bytes = store.Get(key);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return T{};
  codec::DecodeOptions options;
  options.trusted = true;  // our own store, validated on the way in
  StatusOr<T> state = codec::Decode<T>(**bytes, options);
  if (!state.ok()) return state.status().WithContext("state of key " + std::string(key));
  return state;
}

// Applies mutate(T& state, ReplicaId self) -> T delta to `key` and returns the
// delta once written. CounterOverflow from the mutator becomes
// kInvalidArgument and nothing is written.
template <class T, class F>
StatusOr<T> Update(Store& store, const std::string& key, F&& mutate) {
  StatusOr<T> state = Read<T>(store, key);
  if (!state.ok()) return state.status();
  const crdt::ReplicaId self = store.identity().replica;
  if constexpr (crdt::CausalCrdt<T>) {
    // The mutator issues at most one dot: the next counter of ours here.
    CONVERGE_RETURN_IF_ERROR(store.EnsureDotLease(state->context().Max(self) + 1));
  }
  T delta;
  try {
    delta = std::forward<F>(mutate)(*state, self);
  } catch (const crdt::CounterOverflow& e) {
    return InvalidArgument(e.what());
  }
  if (delta.IsBottom()) return delta;
  WriteBatch batch;
  batch.Merge(key, codec::Encode(delta));
  batch.set_trusted(true);  // encoded right here
  CONVERGE_RETURN_IF_ERROR(store.Write(batch));
  return delta;
}

}  // namespace converge::storage

#endif  // CONVERGE_STORAGE_TYPED_H_
