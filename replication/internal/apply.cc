#include "replication/internal/apply.h"

#include <algorithm>
#include <unordered_map>

#include "replication/internal/records.h"

namespace converge::replication::internal {

StatusOr<Applied> StateApplier::Apply(std::span<const RemoteEntry> entries,
                                      const Options& options) {
  Applied out;
  storage::WriteBatch batch;
  // Per key of the batch: its state before the batch and as of now (a key
  // may change several times in one batch).
  struct KeyState {
    std::optional<std::string> before;
    std::optional<std::string> now;
    bool changed = false;
  };
  std::unordered_map<std::string_view, KeyState> keys;
  keys.reserve(entries.size());
  // In order of first change; unordered_map nodes stay where they are.
  std::vector<std::pair<std::string_view, KeyState*>> changed;
  codec::DecodeOptions decode;  // untrusted: the delta is checked (our base is trusted)
  decode.reject_conflicting_writes = true;
  decode.base_trusted = true;
  std::optional<std::uint64_t> reference_ms;  // the cluster's time, once needed
  for (std::size_t index = 0; index < entries.size(); ++index) {
    const RemoteEntry& e = entries[index];
    if (e.origin != 0) out.origins[e.origin] = std::max(out.origins[e.origin], e.origin_seq);
    const StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(e.delta);
    if (!type.ok()) {
      ++stats_.messages_rejected;
      out.rejected.push_back({index, type.status().ToString()});
      continue;
    }
    // Last-writer-wins writes from a clock too far ahead (of the cluster's
    // time, when ours is behind it) are refused.
    if ((*type)->timestamp) {
      if (!reference_ms) reference_ms = options.reference_ms();
      if (const auto ts = (*type)->timestamp(e.delta); ts && !hlc_.Observe(*ts, *reference_ms)) {
        ++stats_.timestamps_rejected;
        out.refused.push_back(index);
        continue;
      }
    }
    auto [it, fresh] = keys.try_emplace(e.key);
    KeyState& k = it->second;
    // A key in a leaf our tree has nothing in is not in the store (the
    // digest index commits with every state): no read needed — most of a
    // bootstrap's keys. Likewise a key the caller knows to be absent.
    if (fresh && !(options.known_absent && options.known_absent(e.key)) &&
        tree_.NodeHash(tree_.depth(), tree_.LeafOf(e.key)) != 0) {
      StatusOr<std::optional<std::string>> state = store_.Get(e.key);
      if (!state.ok()) return state.status();
      k.before = std::move(state).value();
      k.now = k.before;
    }
    if (options.refuse && options.refuse(e.delta, k.now)) {
      out.refused.push_back(index);
      continue;
    }
    const std::string_view operand[] = {e.delta};
    StatusOr<std::string> joined = codec::TypeRegistry::JoinWith(
        **type, k.now ? std::optional<std::string_view>(*k.now) : std::nullopt, operand, decode);
    if (!joined.ok()) {
      ++stats_.messages_rejected;
      out.rejected.push_back({index, joined.status().ToString()});
      continue;
    }
    if (k.now && *joined == *k.now) continue;  // nothing new
    if (!k.changed) {
      k.changed = true;
      changed.emplace_back(it->first, &k);
    }
    k.now = std::move(joined).value();
    batch.Merge(std::string(e.key), std::string(e.delta));
    out.applied.push_back(index);
  }
  // The final digest of each changed key.
  std::vector<std::uint64_t> digests;
  digests.reserve(changed.size());
  std::vector<std::pair<std::string, std::string>> digest_puts;
  digest_puts.reserve(changed.size());
  for (const auto& [key, state] : changed) {
    digests.push_back(StateDigest(*state->now));
    digest_puts.emplace_back(records::DigestKey(tree_.LeafOf(key), key),
                             records::Fixed64(digests.back()));
  }
  // In digest-key (leaf) order, not key order: RocksDB's memtable then
  // finds each one's place from the last one's instead of from the top
  // (a bootstrap's million random-leaf inserts were a fifth of its CPU).
  std::sort(digest_puts.begin(), digest_puts.end());
  for (auto& [digest_key, value] : digest_puts) {
    batch.PutAux(std::move(digest_key), std::move(value));
  }
  for (const auto& [origin, seq] : out.origins) {
    const auto held = origins_.find(origin);
    if (seq > (held == origins_.end() ? 0 : held->second)) records::PutOrigin(batch, origin, seq);
  }
  if (options.progress && !batch.empty()) {
    std::vector<std::size_t> not_held = out.refused;
    for (const Applied::Rejection& r : out.rejected) not_held.push_back(r.index);
    auto [key, value] = options.progress(not_held);
    batch.PutAux(std::move(key), std::move(value));
  }
  batch.set_trusted(true);  // every delta was decoded and joined above
  if (!batch.empty()) CONVERGE_RETURN_IF_ERROR(store_.Write(batch));

  for (const auto& [origin, seq] : out.origins) origins_[origin] = std::max(origins_[origin], seq);
  out.changes.reserve(changed.size());
  for (std::size_t i = 0; i < changed.size(); ++i) {
    KeyState& k = *changed[i].second;
    tree_.Update(changed[i].first, k.before ? std::optional(StateDigest(*k.before)) : std::nullopt,
                 digests[i]);
    out.changes.push_back(
        Applied::Change{changed[i].first, std::move(k.before), *std::move(k.now)});
  }
  return out;
}

void StateApplier::RetainOrigins(const std::set<std::uint64_t>& keep) {
  storage::WriteBatch batch;
  for (auto it = origins_.begin(); it != origins_.end();) {
    if (keep.contains(it->first)) {
      ++it;
      continue;
    }
    records::DeleteOrigin(batch, it->first);
    it = origins_.erase(it);
  }
  // Best effort: an entry left in the store is dropped again after a restart.
  if (!batch.empty()) (void)store_.Write(batch);
}

Status StateApplier::LoadOrigins() {
  StatusOr<std::map<std::uint64_t, std::uint64_t>> origins = records::LoadOrigins(store_);
  if (!origins.ok()) return origins.status();
  for (const auto& [origin, seq] : *origins) origins_[origin] = std::max(origins_[origin], seq);
  return Status::Ok();
}

}  // namespace converge::replication::internal
