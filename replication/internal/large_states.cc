#include "replication/internal/large_states.h"

#include <algorithm>
#include <vector>

#include "replication/internal/records.h"

namespace converge::replication::internal {
namespace {

constexpr std::size_t kMaxAssemblies = 4;  // pulls in progress at once
constexpr int kMaxRetries = 8;             // unanswered requests before a pull is given up
constexpr std::size_t kMaxServed = 2;      // large states kept read for serving
constexpr std::uint64_t kServedIdleMs = 30'000;

}  // namespace

std::size_t LargeStates::chunk_bytes() const {
  // The header, the key and the fields take far less than 2 KiB beyond the
  // chunk's bytes; packing never grows data by more than a few bytes.
  const std::size_t cap = options_.max_message_bytes;
  return cap > 8192 ? cap - 2048 : cap / 2;
}

std::size_t LargeStates::assembling_bytes() const {
  std::size_t bytes = 0;
  for (const auto& [who, a] : assemblies_) bytes += a.size;
  return bytes;
}

void LargeStates::Want(const std::string& from, std::string_view key, std::uint64_t size,
                       std::uint64_t digest) {
  if (size > options_.max_key_bytes) {
    ++stats_.states_too_large;
    log_.Warn("replication: " + from + " holds a state of key '" + Printable(key) + "' of " +
              std::to_string(size) + " bytes, more than max_key_bytes (" +
              std::to_string(options_.max_key_bytes) + "): not pulled");
    return;
  }
  if (digest != 0) {  // do we hold that very state?
    StatusOr<std::optional<std::string>> ours =
        store_.GetAux(records::DigestKey(tree_.LeafOf(key), key));
    if (ours.ok() && ours->has_value() && records::ReadFixed64(**ours) == digest) return;
  }
  const auto slot = std::make_pair(from, std::string(key));
  if (const auto it = assemblies_.find(slot); it != assemblies_.end()) {
    if (digest == 0 || it->second.digest == digest || it->second.digest == 0) return;
    assemblies_.erase(it);  // a newer state of it: start again
  }
  // Bounded memory: the rest is announced again by a later session.
  if (assemblies_.size() >= kMaxAssemblies ||
      assembling_bytes() + size > 2 * std::max<std::size_t>(options_.max_key_bytes, 1)) {
    return;
  }
  Assembly& a = assemblies_[slot];
  a.digest = digest;
  a.size = size;
  Request(from, slot.second, a);
}

void LargeStates::Request(const std::string& from, const std::string& key, Assembly& a) {
  capnp::MallocMessageBuilder builder;
  auto request = outbox_.Header(builder).getBody().initChunkRequest();
  request.setKey(AsData(key));
  request.setDigest(a.digest);
  request.setOffset(a.data.size());
  a.requested_ms = clock_.NowMs();
  outbox_.SendToMember(from, builder, Outbox::Kind::kAntiEntropy);
}

void LargeStates::OnChunk(const std::string& from, wire::StateChunk::Reader chunk) {
  const auto it = assemblies_.find(std::make_pair(from, AsString(chunk.getKey())));
  if (it == assemblies_.end()) return;  // not asked for (any more)
  const std::string& key = it->first.second;
  Assembly& a = it->second;
  const auto drop = [&](const std::string& why) {
    log_.Warn("replication: pulling the state of key '" + Printable(key) + "' from " + from +
              " failed (pulled again when next announced): " + why);
    assemblies_.erase(it);
  };
  if (chunk.getSize() == 0) {  // they hold no state of it (any more)
    assemblies_.erase(it);
    return;
  }
  if (chunk.getSize() > options_.max_key_bytes) {
    ++stats_.states_too_large;
    drop("the state has " + std::to_string(chunk.getSize()) + " bytes, more than max_key_bytes");
    return;
  }
  if (chunk.getDigest() != a.digest) {
    if (chunk.getOffset() != 0) return;  // an answer to an earlier request
    a.digest = chunk.getDigest();        // their state changed: start again
    a.size = chunk.getSize();
    a.data.clear();
  }
  if (chunk.getOffset() != a.data.size() || chunk.getSize() != a.size) return;  // a duplicate
  const std::string_view bytes = AsView(chunk.getBytes());
  if (bytes.empty() || a.data.size() + bytes.size() > a.size) {
    drop("a chunk of " + std::to_string(bytes.size()) + " bytes at offset " +
         std::to_string(chunk.getOffset()) + " does not fit a state of " + std::to_string(a.size));
    return;
  }
  if (a.data.empty()) a.data.reserve(a.size);
  a.data.append(bytes);
  ++stats_.chunks_received;
  a.retries = 0;
  if (a.data.size() < a.size) {
    Request(from, key, a);
    return;
  }
  if (StateDigest(a.data) != a.digest) {
    drop("the assembled state does not match its digest");
    return;
  }
  const std::string state = std::move(a.data);
  const std::string k = key;
  assemblies_.erase(it);
  if (Status s = host_.ApplyPulled(from, k, state); s.ok()) {
    ++stats_.large_states_received;
  } else {
    log_.Warn("replication: the state of key '" + Printable(k) + "' pulled from " + from +
              " was not applied: " + s.ToString());
  }
}

std::shared_ptr<const std::string> LargeStates::Serve(const std::string& key,
                                                      std::uint64_t* digest) {
  const std::uint64_t now = clock_.NowMs();
  StatusOr<std::optional<std::string>> indexed =
      store_.GetAux(records::DigestKey(tree_.LeafOf(key), key));
  if (!indexed.ok() || !indexed->has_value()) {
    served_.erase(key);
    return nullptr;
  }
  const std::optional<std::uint64_t> current = records::ReadFixed64(**indexed);
  if (const auto it = served_.find(key);
      it != served_.end() && current && it->second.digest == *current) {
    it->second.used_ms = now;
    *digest = it->second.digest;
    return it->second.state;
  }
  StatusOr<std::optional<std::string>> state = store_.Get(key);
  if (!state.ok() || !state->has_value()) return nullptr;
  auto shared = std::make_shared<const std::string>(std::move(**state));
  // The digest index is written in the same batch as the state (and
  // verified against it): no need to hash up to max_key_bytes again.
  *digest = current ? *current : StateDigest(*shared);
  while (served_.size() >= kMaxServed) {
    auto oldest = served_.begin();
    for (auto it = served_.begin(); it != served_.end(); ++it) {
      if (it->second.used_ms < oldest->second.used_ms) oldest = it;
    }
    served_.erase(oldest);
  }
  served_[key] = Served{*digest, shared, now};
  return shared;
}

void LargeStates::Give(const std::string& to, const std::string& key, std::uint64_t digest,
                       std::uint64_t size, std::uint64_t offset, std::string_view bytes) {
  capnp::MallocMessageBuilder builder;
  auto chunk = outbox_.Header(builder).getBody().initChunk();
  chunk.setKey(AsData(key));
  chunk.setDigest(digest);
  chunk.setSize(size);
  chunk.setOffset(offset);
  chunk.setBytes(AsData(bytes));
  outbox_.SendToMember(to, builder, Outbox::Kind::kAntiEntropy);
}

void LargeStates::OnRequest(const std::string& from, wire::ChunkRequest::Reader request) {
  const std::string key = AsString(request.getKey());
  std::uint64_t digest = 0;
  const std::shared_ptr<const std::string> state = Serve(key, &digest);
  if (!state) {
    Give(from, key, 0, 0, 0, {});
    return;
  }
  // Another state than the one they assemble: it starts again, from 0.
  const std::uint64_t offset = digest == request.getDigest() ? request.getOffset() : 0;
  if (offset >= state->size()) return;
  const std::size_t room = chunk_bytes() > key.size() ? chunk_bytes() - key.size() : 1;
  const std::size_t n = std::min<std::size_t>(room, state->size() - offset);
  Give(from, key, digest, state->size(), offset, std::string_view(*state).substr(offset, n));
  ++stats_.chunks_sent;
}

void LargeStates::Round(std::uint64_t now) {
  for (auto it = assemblies_.begin(); it != assemblies_.end();) {
    Assembly& a = it->second;
    if (now - a.requested_ms < options_.ae_session_timeout_ms) {
      ++it;
      continue;
    }
    if (++a.retries > kMaxRetries || !membership_.contains(it->first.first)) {
      log_.Warn("replication: pulling the state of key '" + Printable(it->first.second) +
                "' from " + it->first.first + " stopped after " + std::to_string(a.retries) +
                " unanswered requests (" + std::to_string(a.data.size()) + " of " +
                std::to_string(a.size) + " bytes); pulled again when next announced");
      it = assemblies_.erase(it);
      continue;
    }
    Request(it->first.first, it->first.second, a);  // from where it is
    ++it;
  }
  for (auto it = served_.begin(); it != served_.end();) {
    it = now - it->second.used_ms > kServedIdleMs ? served_.erase(it) : std::next(it);
  }
}

void LargeStates::Forget(const std::string& peer) {
  for (auto it = assemblies_.begin(); it != assemblies_.end();) {
    it = it->first.first == peer ? assemblies_.erase(it) : std::next(it);
  }
}

}  // namespace converge::replication::internal
