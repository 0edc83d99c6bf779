#include "replication/internal/anti_entropy.h"

#include <algorithm>

#include "replication/internal/records.h"

namespace converge::replication::internal {
namespace {}  // namespace

void AntiEntropy::PutStates(wire::AeStates::Builder ae, const States& states) {
  auto out = ae.initStates(static_cast<unsigned>(states.size()));
  for (unsigned i = 0; i < states.size(); ++i) {
    out[i].setKey(AsData(states[i].key));
    out[i].setState(AsData(states[i].state));
    if (states[i].size > 0) {
      out[i].setSize(states[i].size);
      out[i].setDigest(states[i].digest);
    }
  }
}

void AntiEntropy::Round(const std::vector<std::string>& live, std::uint64_t now,
                        std::uint64_t start) {
  // A peer whose session is still in flight is skipped, so one that does
  // not answer cannot keep the others from being repaired.
  // At most 32 candidates from a random place: a round's cost does not grow
  // with the cluster (a large one finds the peers that need a session over
  // a few rounds).
  std::string target;
  for (std::size_t k = 0; k < std::min<std::size_t>(live.size(), 32); ++k) {
    const std::string& name = live[(start + k) % live.size()];
    if (InFlight(name, now)) continue;
    if (target.empty() || (host_.NeedsAe(name) && !host_.NeedsAe(target))) target = name;
  }
  if (want_stream_) {
    // Stream from one live peer; if it is gone, compare trees instead.
    if (!stream_peer_.empty() && std::find(live.begin(), live.end(), stream_peer_) == live.end()) {
      want_stream_ = false;
      stream_peer_.clear();
    } else if (stream_peer_.empty() && !target.empty()) {
      stream_peer_ = target;
    }
    if (!stream_peer_.empty()) target = InFlight(stream_peer_, now) ? "" : stream_peer_;
  }
  if (!target.empty()) Start(target);
}

bool AntiEntropy::InFlight(const std::string& name, std::uint64_t now) {
  const Session& session = sessions_[name];
  return session.id != 0 && now - session.started_ms < options_.ae_session_timeout_ms;
}

void AntiEntropy::Start(const std::string& name) {
  const std::uint64_t now = clock_.NowMs();
  if (InFlight(name, now)) return;
  Session& session = sessions_[name];
  session.id = (rng_() | 1);
  session.started_ms = now;
  session.start_seq = host_.buffer_end();
  session.moved_state = false;
  session.in_sync = false;
  ++stats_.ae_sessions;
  capnp::MallocMessageBuilder builder;
  auto ae = outbox_.Header(builder).getBody().initAeNodes();
  ae.setSession(session.id);
  auto nodes = ae.initNodes(1);
  nodes[0].setLevel(0);
  nodes[0].setIndex(0);
  nodes[0].initChildren(1).set(0, tree_.root());  // the root alone first
  if (want_stream_ && name == stream_peer_) {
    ae.setStream(true);
    ae.setStreamAfter(AsData(stream_after_));
  }
  Send(name, builder);
}

void AntiEntropy::Send(const std::string& name, capnp::MallocMessageBuilder& builder) {
  outbox_.SendToMember(name, builder, Outbox::Kind::kAntiEntropy);
}

void AntiEntropy::End(const std::string& name, std::uint64_t id) {
  Session& session = sessions_[name];
  if (session.id != id) return;
  if (session.moved_state) ++stats_.ae_repairs;
  // Equal roots: they hold everything we held when the session started —
  // which confirms the writes waiting for them up to there — and delta
  // intervals resume from there. (A session that ends otherwise may have
  // been cut short by a message cap, on either side: it proves nothing.)
  if (session.in_sync) host_.InSync(name, session.start_seq);
  session.id = 0;
  // Their states changed ours: there may be more where that came from (a
  // capped message, a bootstrap); go on now rather than next round. Only
  // changes drive this, so two nodes that cannot agree (a corrupt state
  // that joins into nothing) do not loop.
  if (session.moved_state && host_.running()) {
    clock_.Post([this, name] {
      if (host_.running() && membership_.contains(name)) Start(name);
    });
  }
}

// Our states after `after`, in key order: two capped messages at most (we
// read the second while they apply the first), the last saying whether
// there is more.
void AntiEntropy::StreamStates(const std::string& to, std::uint64_t session,
                               const std::string& after) {
  constexpr int kChunks = 2;
  std::string begin = after;
  if (!after.empty()) begin.push_back('\0');
  States states;
  std::size_t bytes = 0;
  int sent = 0;
  bool more_in_store = false;
  const auto send = [&](bool more, bool end) {
    capnp::MallocMessageBuilder builder;
    auto ae = outbox_.Header(builder).getBody().initAeStates();
    ae.setSession(session);
    PutStates(ae, states);
    ae.setStreamLast(AsData(states.empty() ? after : states.back().key));
    ae.setStreamMore(more);
    ae.setStreamEnd(end);
    Send(to, builder);
    states.clear();
    bytes = 0;
  };
  (void)store_.Scan(begin, "", [&](std::string_view k, std::string_view v) {
    std::string key(k), state(v);
    if (AddState(key, state, &states, &bytes)) return true;
    if (++sent == kChunks) {
      more_in_store = true;
      return false;
    }
    send(/*more=*/true, /*end=*/false);
    return AddState(key, state, &states, &bytes);
  });
  send(/*more=*/false, /*end=*/!more_in_store);
}

void AntiEntropy::OnNodes(const std::string& from, wire::AeNodes::Reader msg) {
  const std::uint64_t session = msg.getSession();
  if (msg.getDone()) {
    Session& ours = sessions_[from];
    if (session == ours.id && msg.getInSync()) ours.in_sync = true;
    End(from, session);
    return;
  }
  if (msg.getStream()) {
    StreamStates(from, session, AsString(msg.getStreamAfter()));
    return;
  }
  if (want_stream_ && session != sessions_[from].id) {
    // Catching up by streaming: a tree comparison with us now would only
    // list keys we are about to receive anyway. Later.
    capnp::MallocMessageBuilder reply;
    auto done = outbox_.Header(reply).getBody().initAeNodes();
    done.setSession(session);
    done.setDone(true);
    Send(from, reply);
    return;
  }
  const int depth = tree_.depth();
  capnp::MallocMessageBuilder builder;
  auto header = outbox_.Header(builder);
  std::vector<std::pair<int, std::uint32_t>> next_nodes;
  std::vector<std::uint32_t> leaves;
  // Subtrees they hold nothing of (hash 0: a contribution is never 0) and
  // we do: no need to descend or list keys, every key there is theirs to
  // have. Ranges of leaves.
  std::vector<std::pair<std::uint32_t, std::uint32_t>> they_lack;
  bool in_sync = false;
  const auto subtree = [&](int level, std::uint32_t index) {
    std::uint32_t span = 1;
    for (int l = level; l < depth; ++l) span *= HashTree::kFanout;
    return std::pair(index * span, (index + 1) * span);
  };
  for (const auto node : msg.getNodes()) {
    const int level = node.getLevel();
    const std::uint32_t index = node.getIndex();
    const auto children = node.getChildren();
    if (level < 0 || level >= depth) continue;
    if (level == 0 && children.size() == 1) {  // the root alone
      if (children[0] == tree_.root()) {
        in_sync = true;
        continue;
      }
      if (children[0] == 0) {
        they_lack.push_back(subtree(0, 0));
      } else {
        next_nodes.emplace_back(0, 0);
      }
      continue;
    }
    if (children.size() != HashTree::kFanout) continue;
    if (index >= tree_.NodeCount(level)) continue;
    const HashTree::Children mine = tree_.ChildrenOf(level, index);
    for (unsigned c = 0; c < HashTree::kFanout; ++c) {
      if (children[c] == mine[c]) continue;
      const std::uint32_t child = index * HashTree::kFanout + c;
      if (children[c] == 0) {
        they_lack.push_back(subtree(level + 1, child));
      } else if (level + 1 == depth) {
        leaves.push_back(child);
      } else {
        next_nodes.emplace_back(level + 1, child);
      }
    }
  }
  // Pushed only in the sessions they start: the side that lacks whole
  // subtrees finds them in its own sessions too, and pushing in both would
  // send every state twice.
  if (!they_lack.empty() && session != sessions_[from].id) {
    PushLeafRanges(from, session, they_lack);  // the rest, in later sessions
    return;
  }
  // Cap what one message carries; what does not fit is found again by a
  // later session (chunking with backpressure: one message in flight).
  const std::size_t max_nodes = std::max<std::size_t>(1, options_.max_message_bytes / 160);
  if (next_nodes.size() > max_nodes) next_nodes.resize(max_nodes);
  if (!leaves.empty()) {
    SendLeaves(from, session, leaves);
    return;
  }
  auto ae = header.getBody().initAeNodes();
  ae.setSession(session);
  if (next_nodes.empty()) {
    ae.setDone(true);
    ae.setInSync(in_sync);
    Send(from, builder);
    End(from, session);
    return;
  }
  auto nodes = ae.initNodes(static_cast<unsigned>(next_nodes.size()));
  for (unsigned i = 0; i < next_nodes.size(); ++i) {
    const auto [level, index] = next_nodes[i];
    nodes[i].setLevel(static_cast<std::uint8_t>(level));
    nodes[i].setIndex(index);
    const HashTree::Children mine = tree_.ChildrenOf(level, index);
    auto children = nodes[i].initChildren(HashTree::kFanout);
    for (unsigned c = 0; c < HashTree::kFanout; ++c) children.set(c, mine[c]);
  }
  Send(from, builder);
}

std::vector<std::pair<std::string, std::uint64_t>> AntiEntropy::LeafKeys(std::uint32_t leaf) {
  std::vector<std::pair<std::string, std::uint64_t>> keys;
  (void)records::ScanDigests(store_, leaf, leaf + 1, tree_.leaf_count(),
                             [&](std::uint32_t, std::string_view key, std::uint64_t digest) {
                               keys.emplace_back(std::string(key), digest);
                               return true;
                             });
  return keys;
}

void AntiEntropy::SendLeaves(const std::string& to, std::uint64_t session,
                             const std::vector<std::uint32_t>& leaves) {
  capnp::MallocMessageBuilder builder;
  auto ae = outbox_.Header(builder).getBody().initAeLeaves();
  ae.setSession(session);
  std::vector<std::pair<std::uint32_t, std::vector<std::pair<std::string, std::uint64_t>>>> chosen;
  std::size_t bytes = 0;
  for (const std::uint32_t leaf : leaves) {
    auto keys = LeafKeys(leaf);
    std::size_t leaf_bytes = 16;
    for (const auto& [k, d] : keys) leaf_bytes += k.size() + 24;
    if (!chosen.empty() && bytes + leaf_bytes > options_.max_message_bytes - 1024) break;
    bytes += leaf_bytes;
    chosen.emplace_back(leaf, std::move(keys));
  }
  auto out = ae.initLeaves(static_cast<unsigned>(chosen.size()));
  for (unsigned i = 0; i < chosen.size(); ++i) {
    out[i].setIndex(chosen[i].first);
    auto keys = out[i].initKeys(static_cast<unsigned>(chosen[i].second.size()));
    for (unsigned k = 0; k < chosen[i].second.size(); ++k) {
      keys[k].setKey(AsData(chosen[i].second[k].first));
      keys[k].setDigest(chosen[i].second[k].second);
    }
  }
  Send(to, builder);
}

void AntiEntropy::OnLeaves(const std::string& from, wire::AeLeaves::Reader msg) {
  std::vector<std::string> push, pull;
  for (const auto leaf : msg.getLeaves()) {
    if (leaf.getIndex() >= tree_.leaf_count()) continue;
    std::map<std::string, std::uint64_t> theirs;
    for (const auto k : leaf.getKeys()) theirs[AsString(k.getKey())] = k.getDigest();
    std::map<std::string, std::uint64_t> mine;
    for (auto& [k, d] : LeafKeys(leaf.getIndex())) mine[std::move(k)] = d;
    for (const auto& [k, d] : mine) {
      const auto it = theirs.find(k);
      if (it == theirs.end() || it->second != d) push.push_back(k);
    }
    for (const auto& [k, d] : theirs) {
      const auto it = mine.find(k);
      if (it == mine.end() || it->second != d) pull.push_back(k);
    }
  }
  SendStates(from, msg.getSession(), push, pull);
}

// Every state in the leaf ranges, up to the message cap, from the digest
// index (ordered by leaf: one sequential scan). Two capped messages at most,
// sent one after the other: we read the second while they apply the first
// (a bootstrap is then bound by the slower side, not by the sum of both).
void AntiEntropy::PushLeafRanges(
    const std::string& to, std::uint64_t session,
    const std::vector<std::pair<std::uint32_t, std::uint32_t>>& ranges) {
  constexpr int kChunks = 2;
  States states;
  std::size_t bytes = 0;
  int sent = 0;
  for (const auto& [first, last] : ranges) {
    (void)records::ScanDigests(store_, first, last, tree_.leaf_count(),
                               [&](std::uint32_t, std::string_view k, std::uint64_t) {
                                 std::string key(k);
                                 StatusOr<std::optional<std::string>> state = store_.Get(key);
                                 if (!state.ok() || !state->has_value()) return true;
                                 if (AddState(key, **state, &states, &bytes)) return true;
                                 SendStates(to, session, std::move(states), {});
                                 states.clear();
                                 bytes = 0;
                                 if (++sent == kChunks) return false;
                                 return AddState(key, **state, &states, &bytes);
                               });
    if (sent == kChunks) return;
  }
  if (!states.empty() || sent == 0) SendStates(to, session, std::move(states), {});
}

// Appends (key, state) unless the message would pass its cap (and is not
// empty); false (and nothing taken) when full.
bool AntiEntropy::AddState(std::string& key, std::string& state, States* states,
                           std::size_t* bytes) const {
  const bool large = large_.TooLarge(key, state.size());
  const std::size_t size = key.size() + (large ? 32 : state.size() + 16);
  if (!states->empty() && *bytes + size > options_.max_message_bytes - 1024) return false;
  *bytes += size;
  if (large) {
    states->push_back(OutState{std::move(key), {}, state.size(), StateDigest(state)});
  } else {
    states->push_back(OutState{std::move(key), std::move(state), 0, 0});
  }
  return true;
}

void AntiEntropy::SendStates(const std::string& to, std::uint64_t session,
                             const std::vector<std::string>& push,
                             const std::vector<std::string>& pull) {
  States states;
  std::size_t bytes = 0;
  for (const std::string& key : pull) bytes += key.size() + 8;
  for (const std::string& key : push) {
    StatusOr<std::optional<std::string>> state = store_.Get(key);
    if (!state.ok() || !state->has_value()) continue;
    std::string k = key;
    if (!AddState(k, **state, &states, &bytes)) break;  // the rest later
  }
  SendStates(to, session, std::move(states), pull);
}

void AntiEntropy::SendStates(const std::string& to, std::uint64_t session, States states,
                             const std::vector<std::string>& pull) {
  capnp::MallocMessageBuilder builder;
  auto ae = outbox_.Header(builder).getBody().initAeStates();
  ae.setSession(session);
  PutStates(ae, states);
  auto wanted = ae.initPull(static_cast<unsigned>(pull.size()));
  for (unsigned i = 0; i < pull.size(); ++i) wanted.set(i, AsData(pull[i]));
  Send(to, builder);
  // Nothing asked of the peer: if we started this session, it is over.
  if (pull.empty()) End(to, session);
}

void AntiEntropy::OnStates(const std::string& from, wire::AeStates::Reader msg) {
  std::vector<RemoteEntry> entries;
  for (const auto s : msg.getStates()) {
    if (s.getState().size() == 0 && s.getSize() > 0) {  // too large for a message: pulled
      large_.Want(from, AsView(s.getKey()), s.getSize(), s.getDigest());
      continue;
    }
    entries.push_back(RemoteEntry{AsView(s.getKey()), AsView(s.getState()), 0, 0});
  }
  const std::uint64_t before = stats_.ae_keys_repaired;
  const bool streamed = from == stream_peer_ && msg.hasStreamLast();
  if (streamed) stream_floor_ = stream_after_;
  const Status applied = host_.ApplyStates(from, entries);
  stream_floor_.reset();
  if (!applied.ok()) return;  // asked again later
  Session& session = sessions_[from];
  if (stats_.ae_keys_repaired > before && session.id == msg.getSession()) {
    session.moved_state = true;
  }
  if (streamed) {
    const std::string last = AsString(msg.getStreamLast());
    if (last > stream_after_) stream_after_ = last;
    if (msg.getStreamEnd()) {
      want_stream_ = false;  // caught up: trees from now on
      stream_peer_.clear();
      touched_while_streaming_.clear();
      session.moved_state = true;  // compare trees at once
    }
    if (msg.getStreamMore()) return;  // the session's answer goes on
  }
  std::vector<std::string> pull;
  for (const auto k : msg.getPull()) pull.push_back(AsString(k));
  if (!pull.empty()) SendStates(from, msg.getSession(), pull, {});
  End(from, msg.getSession());
}

}  // namespace converge::replication::internal
