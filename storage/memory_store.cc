#include "storage/memory_store.h"

#include <string>
#include <utility>
#include <vector>

namespace converge::storage {

MemoryStore::MemoryStore(std::shared_ptr<const codec::TypeRegistry> registry,
                         crdt::ReplicaId replica)
    : registry_(std::move(registry)), next_replica_seed_(replica.value()) {
  state_.identity.replica = replica;
  state_.identity.incarnation = 1;
  state_.identity.created = true;
}

MemoryStore::MemoryStore(std::shared_ptr<const codec::TypeRegistry> registry, Snapshot snapshot,
                         std::uint64_t id_seed)
    : registry_(std::move(registry)),
      state_(std::move(snapshot)),
      next_replica_seed_(crdt::internal::Mix64(state_.identity.replica.value() ^ id_seed)) {
  state_.identity.created = false;  // a copy: an earlier process used it
}

MemoryStore::Snapshot MemoryStore::TakeSnapshot() const {
  const std::lock_guard lock(mu_);
  return state_;
}

Identity MemoryStore::identity() const {
  const std::lock_guard lock(mu_);
  return state_.identity;
}

Status MemoryStore::Write(const WriteBatch& batch) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  // Join every delta first, then commit: a failing delta changes nothing.
  std::vector<std::pair<std::string, std::string>> joined;
  std::map<std::string, std::string, std::less<>> pending;
  for (const WriteBatch::Op& op : batch.ops()) {
    if (op.replace) {
      CONVERGE_RETURN_IF_ERROR(
          registry_->Validate(op.delta).WithContext("state for key " + op.key));
      pending[op.key] = op.delta;
      continue;
    }
    std::optional<std::string_view> base;
    if (const auto it = pending.find(op.key); it != pending.end()) {
      base = it->second;
    } else if (const auto st = state_.states.find(op.key); st != state_.states.end()) {
      base = st->second;
    }
    const std::string_view operand[] = {op.delta};
    StatusOr<std::string> next = registry_->Join(base, operand);
    if (!next.ok()) return next.status().WithContext("delta for key " + op.key);
    pending[op.key] = std::move(next).value();
  }
  for (auto& [key, value] : pending) state_.states[key] = std::move(value);
  for (const WriteBatch::AuxOp& op : batch.aux()) {
    if (op.value) {
      state_.aux[op.key] = *op.value;
    } else {
      state_.aux.erase(op.key);
    }
  }
  return Status::Ok();
}

StatusOr<std::optional<std::string>> MemoryStore::Get(std::string_view key) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  const auto it = state_.states.find(key);
  if (it == state_.states.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

namespace {

// Copies [begin, end) first so fn may call back into the store.
Status ScanMap(std::mutex& mu, const bool& closed,
               const std::map<std::string, std::string, std::less<>>& map, std::string_view begin,
               std::string_view end, const ScanFn& fn) {
  std::vector<std::pair<std::string, std::string>> range;
  {
    const std::lock_guard lock(mu);
    if (closed) return {StatusCode::kFailedPrecondition, "store is closed"};
    for (auto it = map.lower_bound(begin); it != map.end(); ++it) {
      if (!end.empty() && it->first >= end) break;
      range.emplace_back(it->first, it->second);
    }
  }
  for (const auto& [key, value] : range) {
    if (!fn(key, value)) break;
  }
  return Status::Ok();
}

}  // namespace

Status MemoryStore::Scan(std::string_view begin, std::string_view end, const ScanFn& fn) {
  return ScanMap(mu_, closed_, state_.states, begin, end, fn);
}

StatusOr<std::optional<std::string>> MemoryStore::GetAux(std::string_view key) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  const auto it = state_.aux.find(key);
  if (it == state_.aux.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Status MemoryStore::ScanAux(std::string_view begin, std::string_view end, const ScanFn& fn) {
  return ScanMap(mu_, closed_, state_.aux, begin, end, fn);
}

Status MemoryStore::EnsureDotLease(std::uint64_t counter) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  if (counter > state_.dot_lease_end) state_.dot_lease_end = counter;
  return Status::Ok();
}

std::uint64_t MemoryStore::dot_lease_end() const {
  const std::lock_guard lock(mu_);
  return state_.dot_lease_end;
}

Status MemoryStore::EnsureHlcLease(crdt::HlcTimestamp timestamp) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  if (state_.hlc_high_water < timestamp) state_.hlc_high_water = timestamp;
  return Status::Ok();
}

crdt::HlcTimestamp MemoryStore::hlc_high_water() const {
  const std::lock_guard lock(mu_);
  return state_.hlc_high_water;
}

Status MemoryStore::Retire() {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  // Deterministic (the simulator replays from a seed): derive the next id.
  next_replica_seed_ = crdt::internal::Mix64(next_replica_seed_ + 0x9e3779b97f4a7c15ULL);
  state_.identity.replica = crdt::ReplicaId{next_replica_seed_};
  state_.identity.incarnation += 1;
  state_.dot_lease_end = 0;
  return Status::Ok();
}

StatusOr<std::optional<std::string>> MemoryStore::ReadRaw(std::string_view key) { return Get(key); }

Status MemoryStore::OverwriteRaw(std::string_view key, std::string_view bytes) {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  state_.states[std::string(key)] = std::string(bytes);
  return Status::Ok();
}

Status MemoryStore::Close() {
  const std::lock_guard lock(mu_);
  if (closed_) return Status(StatusCode::kFailedPrecondition, "store is closed");
  closed_ = true;
  return Status::Ok();
}

}  // namespace converge::storage
