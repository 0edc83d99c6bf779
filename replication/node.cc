// Node: membership, delta intervals, digest anti-entropy, dot safety.
// See node.h for the contract and docs/replication.md for the protocols.

#include "replication/node.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>

#include "replication/internal/read_every_field.h"
#include "replication/protocol.capnp.h"

namespace converge::replication {
namespace {

constexpr std::uint16_t kProtocolVersion = 1;

// Auxiliary keys (storage::WriteBatch::PutAux), changed atomically with the
// states they describe.
constexpr std::string_view kDigestPrefix = "d/";      // d/<leaf BE32><key> -> digest
constexpr std::string_view kUpdateSeqKey = "u/seq";   // our update sequence
constexpr std::string_view kOriginPrefix = "o/";      // o/<replica BE64> -> max origin seq
constexpr std::string_view kGenerationKey = "u/gen";  // the last process generation
constexpr std::string_view kMemberPrefix = "m/";      // m/<name> -> member record
// x/<name> -> (their generation, next entry expected): where we are in a
// peer's delta buffer, so that a restart of ours does not look like a gap.
constexpr std::string_view kProgressPrefix = "x/";

std::string BigEndian32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i)
    out[static_cast<std::size_t>(3 - i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::string Fixed64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::optional<std::uint64_t> ReadFixed64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  return v;
}

std::string DigestKey(std::uint32_t leaf, std::string_view key) {
  std::string out(kDigestPrefix);
  out += BigEndian32(leaf);
  out += key;
  return out;
}

std::string OriginKey(std::uint64_t replica) {
  std::string out(kOriginPrefix);
  std::string be(8, '\0');
  for (int i = 0; i < 8; ++i)
    be[static_cast<std::size_t>(7 - i)] = static_cast<char>((replica >> (8 * i)) & 0xff);
  return out + be;
}

capnp::Data::Reader AsData(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

std::string_view AsView(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

std::string AsString(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

std::string Pack(capnp::MessageBuilder& builder) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, builder);
  const kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

}  // namespace

std::uint64_t StateDigest(std::string_view encoded_state) {
  return Hash64(encoded_state, 0xd16e57);
}

std::string_view WriteConsistencyName(WriteConsistency w) {
  switch (w) {
    case WriteConsistency::kLocal:
      return "local";
    case WriteConsistency::kMajority:
      return "majority";
    case WriteConsistency::kAll:
      return "all";
  }
  return "local";
}

std::optional<WriteConsistency> ParseWriteConsistency(std::string_view name) {
  if (name == "local") return WriteConsistency::kLocal;
  if (name == "majority") return WriteConsistency::kMajority;
  if (name == "all") return WriteConsistency::kAll;
  return std::nullopt;
}

// ---------------------------------------------------------------------------

enum class MemberState { kAlive, kSuspect, kDead, kLeft };

std::string_view MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "alive";
}

struct Node::Member {
  std::string address;
  std::string metadata;
  std::uint64_t generation = 0;
  std::uint64_t heartbeat = 0;
  bool left = false;
  std::uint64_t replica = 0;
  std::uint64_t last_change_ms = 0;  // local time the heartbeat last grew
  MemberState state = MemberState::kAlive;
};

struct Node::Peer {
  // Their delta buffer, as we receive it.
  std::uint64_t their_generation = 0;
  std::uint64_t expected = 1;  // next entry of theirs we may apply
  // Entries of theirs we refused (a timestamp too far ahead) lately, with
  // when: every acknowledgement repeats them, so that losing one ack cannot
  // make a refused write count as held.
  std::deque<std::pair<std::uint64_t, std::uint64_t>> refused;
  // Our delta buffer, as they acknowledge it.
  std::uint64_t acked = 0;
  bool send_resync = false;  // next interval tells them to skip to its start
  bool needs_ae = false;     // behind our trimmed buffer, or restarted
  std::uint64_t last_heard_ms = 0;
  // Their wall clock minus ours, from their last message that gave it, and
  // when (local time; 0: never).
  std::int64_t clock_offset_ms = 0;
  std::uint64_t clock_sampled_ms = 0;
  // Our anti-entropy session with them.
  std::uint64_t ae_session = 0;
  std::uint64_t ae_started_ms = 0;
  std::uint64_t ae_start_seq = 0;  // our buffer end when it started
  bool ae_moved_state = false;     // states they sent in it changed ours
  bool ae_in_sync = false;         // they answered it: our roots are equal
};

struct Node::PendingWrite {
  WriteConsistency consistency = WriteConsistency::kLocal;
  std::set<std::string> acked_by;
  std::set<std::string> refused_by;  // applied it not (timestamp too far ahead)
  std::function<void(StatusOr<std::string>)> done;
  std::string delta;
  Clock::TimerId timer = 0;
};

class Node::Impl {
 public:
  explicit Impl(Node& node)
      : n_(node),
        rng_(node.options_.seed != 0 ? node.options_.seed : node.clock_.NowMs() ^ 0x5eedULL) {}

  Status Start() {
    if (n_.options_.metadata.size() > kMaxMetadataBytes) {
      return InvalidArgument("node metadata exceeds " + std::to_string(kMaxMetadataBytes) +
                             " bytes");
    }
    const storage::Identity identity = n_.store_.identity();
    n_.self_ = identity.replica;
    n_.hlc_.Restore(n_.store_.hlc_high_water());
    StatusOr<std::optional<std::string>> seq = n_.store_.GetAux(kUpdateSeqKey);
    if (!seq.ok()) return seq.status();
    if (seq->has_value()) {
      const auto v = ReadFixed64(**seq);
      if (!v) return Corruption("malformed update sequence");
      n_.update_seq_ = *v;
    }
    // The digest tree, from the digest index (written with every state).
    n_.tree_.Clear();
    Status scan =
        n_.store_.ScanAux(kDigestPrefix, "d0", [&](std::string_view k, std::string_view v) {
          const auto digest = ReadFixed64(v);
          if (k.size() >= kDigestPrefix.size() + 4 && digest) {
            n_.tree_.Update(k.substr(kDigestPrefix.size() + 4), std::nullopt, *digest);
          }
          return true;
        });
    CONVERGE_RETURN_IF_ERROR(scan.WithContext("load digest index"));
    scan = n_.store_.ScanAux(kOriginPrefix, "o0", [&](std::string_view k, std::string_view v) {
      if (k.size() == kOriginPrefix.size() + 8) {
        std::uint64_t replica = 0;
        for (std::size_t i = kOriginPrefix.size(); i < k.size(); ++i) {
          replica = (replica << 8) | static_cast<unsigned char>(k[i]);
        }
        if (const auto s = ReadFixed64(v)) origin_seen_[replica] = *s;
      }
      return true;
    });
    CONVERGE_RETURN_IF_ERROR(scan.WithContext("load origin sequences"));

    // Dot safety across restarts: a data directory cannot tell whether it was
    // rolled back (restored from an older copy, possibly from before its
    // first write), and a rolled-back replica would reissue dots that peers
    // already hold for other writes. So only a store created by this very
    // process keeps its id; any other continues under a new incarnation
    // before its first dot. (The cost: one more version-vector entry in the
    // keys it writes from now on.)
    if (!identity.created || n_.update_seq_ > 0 || n_.store_.dot_lease_end() > 0) {
      CONVERGE_RETURN_IF_ERROR(Retire().WithContext("new incarnation at start"));
    }
    // A new process has a greater generation than every earlier one of this
    // node, so that peers replace its member entry (they keep the greater
    // (generation, heartbeat)): above the persisted one, and time-based so
    // that a node whose directory was lost still comes back above its past.
    StatusOr<std::optional<std::string>> last_generation = n_.store_.GetAux(kGenerationKey);
    if (!last_generation.ok()) return last_generation.status();
    std::uint64_t floor = 0;
    if (last_generation->has_value()) floor = ReadFixed64(**last_generation).value_or(0);
    generation_ = std::max(floor + 1, (n_.clock_.WallMs() << 16) | (rng_() & 0xffff));
    // The members this node knew: a restarted node counts them for
    // majority/all writes at once, and gossips to them before any seed.
    std::vector<std::pair<std::string, Member>> known;
    scan = n_.store_.ScanAux(kMemberPrefix, "m0", [&](std::string_view k, std::string_view v) {
      Member m;
      m.left = !v.empty() && v[0] == 'L';
      m.address = std::string(v.substr(std::min<std::size_t>(1, v.size())));
      m.state = m.left ? MemberState::kLeft : MemberState::kAlive;
      known.emplace_back(std::string(k.substr(kMemberPrefix.size())), std::move(m));
      return true;
    });
    CONVERGE_RETURN_IF_ERROR(scan.WithContext("load members"));
    scan = n_.store_.ScanAux(kProgressPrefix, "x0", [&](std::string_view k, std::string_view v) {
      if (v.size() != 16) return true;
      Peer& peer = peers_[std::string(k.substr(kProgressPrefix.size()))];
      peer.their_generation = ReadFixed64(v.substr(0, 8)).value_or(0);
      peer.expected = std::max<std::uint64_t>(1, ReadFixed64(v.substr(8)).value_or(1));
      return true;
    });
    CONVERGE_RETURN_IF_ERROR(scan.WithContext("load delta progress"));
    storage::WriteBatch generation;
    generation.PutAux(std::string(kGenerationKey), Fixed64(generation_));
    CONVERGE_RETURN_IF_ERROR(n_.store_.Write(generation).WithContext("record generation"));
    // An empty store catches up by streaming from one peer (in key order:
    // sequential reads there, sequential writes here) before comparing trees.
    want_stream_ = n_.tree_.root() == 0;
    start_ms_ = n_.clock_.NowMs();
    for (auto& [name, m] : known) {
      if (name.empty() || name == n_.options_.name) continue;
      m.last_change_ms = start_ms_;
      members_.emplace(name, std::move(m));
    }
    running_ = true;
    n_.transport_.Start([this](const std::string& from, std::string frame) {
      if (running_) OnFrame(from, std::move(frame));
    });
    // First contact: gossip to the members we knew and to every seed.
    for (const auto& [name, m] : members_) {
      if (!m.left) SendGossip(Endpoint{name, m.address});
    }
    for (const std::string& seed : n_.options_.seeds) {
      if (seed != n_.options_.address) SendGossip(Endpoint{"", seed});
    }
    ScheduleRound();
    return Status::Ok();
  }

  void Stop() {
    if (!running_) return;
    running_ = false;
    n_.clock_.Cancel(round_timer_);
    n_.transport_.Stop();
    // Writes waiting for confirmations are durable here; they learn that the
    // confirmations will not come (every `done` runs exactly once).
    auto waits = std::move(waits_);
    waits_.clear();
    for (auto& [seq, w] : waits) {
      n_.clock_.Cancel(w.timer);
      w.done(Status(StatusCode::kUnavailable,
                    "node stopped before the write was confirmed by enough replicas; it is "
                    "durable here and spreads when the node runs again"));
    }
  }

  void Leave() {
    if (!running_) return;
    left_ = true;
    ++heartbeat_;
    for (const auto& [name, m] : members_) {
      if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) {
        SendGossip(Endpoint{name, m.address});
      }
    }
    Stop();
  }

  // --- local writes ----------------------------------------------------------

  // --- local writes: group commit ---------------------------------------------
  //
  // Local updates are queued (from any thread) and the executor takes every
  // update queued by then as one group: their mutators run one after the
  // other (each sees the state the previous ones left), and the group is
  // written as one atomic batch — one write, and in sync mode one fsync, for
  // all of them. Concurrent writers therefore share syncs the way RocksDB's
  // own group commit would let them, although the node applies updates one
  // at a time.

  struct Incoming {
    std::string key;
    LocalMutation mutation;
    WriteConsistency consistency;
    std::function<void(StatusOr<std::string>)> done;
  };

  // Any thread.
  void Enqueue(Incoming incoming) {
    bool schedule = false;
    {
      std::lock_guard lock(incoming_mu_);
      incoming_.push_back(std::move(incoming));
      schedule = !drain_scheduled_;
      drain_scheduled_ = true;
    }
    if (schedule) n_.clock_.Post([this] { Drain(); });
  }

  void Drain() {
    std::vector<Incoming> group;
    {
      std::lock_guard lock(incoming_mu_);
      group.swap(incoming_);
      drain_scheduled_ = false;
    }
    // Bounded groups: a flood is committed in several batches.
    constexpr std::size_t kMaxGroup = 512;
    for (std::size_t first = 0; first < group.size(); first += kMaxGroup) {
      SubmitGroup(std::span(group).subspan(first, std::min(kMaxGroup, group.size() - first)));
    }
  }

  void SubmitGroup(std::span<Incoming> group) {
    if (!running_) {
      for (Incoming& in : group) in.done(Status(StatusCode::kUnavailable, "node is not running"));
      return;
    }
    struct Made {
      Incoming* in;
      std::optional<std::string> old_state;
      std::string new_state;
      std::string delta;
      std::uint64_t seq;
    };
    std::vector<Made> made;
    std::vector<std::pair<Incoming*, StatusOr<std::string>>> answered;    // no change, or failed
    std::unordered_map<std::string, std::optional<std::string>> current;  // as of this group
    storage::WriteBatch batch;
    std::uint64_t seq = n_.update_seq_;
    for (Incoming& in : group) {
      auto it = current.find(in.key);
      if (it == current.end()) {
        StatusOr<std::optional<std::string>> state = n_.store_.Get(in.key);
        if (!state.ok()) {
          answered.emplace_back(&in, state.status());
          continue;
        }
        it = current.emplace(in.key, std::move(state).value()).first;
      }
      std::string new_state;
      storage::WriteBatch own;  // this update's auxiliary writes
      StatusOr<std::string> delta = in.mutation(it->second, n_.self_, &new_state, &own);
      if (!delta.ok() || delta->empty()) {
        answered.emplace_back(&in, std::move(delta));
        continue;
      }
      if (delta->size() + in.key.size() + 256 > n_.options_.max_message_bytes) {
        answered.emplace_back(
            &in, ResourceExhausted("the delta of this update (" + std::to_string(delta->size()) +
                                   " bytes) exceeds the replication message limit; split "
                                   "the update"));
        continue;
      }
      for (const storage::WriteBatch::AuxOp& op : own.aux()) {
        if (op.value) {
          batch.PutAux(op.key, *op.value);
        } else {
          batch.DeleteAux(op.key);
        }
      }
      batch.Merge(in.key, *delta);
      batch.PutAux(DigestKey(n_.tree_.LeafOf(in.key), in.key), Fixed64(StateDigest(new_state)));
      if (want_stream_) touched_while_streaming_.insert(in.key);
      made.push_back(Made{&in, it->second, new_state, std::move(delta).value(), ++seq});
      it->second = std::move(new_state);
    }
    if (!made.empty()) {
      batch.PutAux(std::string(kUpdateSeqKey), Fixed64(seq));
      batch.set_trusted(true);  // encoded here by the mutators
      if (Status s = n_.store_.Write(batch); !s.ok()) {
        for (Made& m : made) answered.emplace_back(m.in, s);
        made.clear();
      }
    }
    bool push = false;
    for (Made& m : made) {
      Incoming& in = *m.in;
      n_.update_seq_ = m.seq;
      ++stats_.updates;
      n_.tree_.Update(in.key, m.old_state ? std::optional(StateDigest(*m.old_state)) : std::nullopt,
                      StateDigest(m.new_state));
      const std::uint64_t buffer_seq = Append(in.key, m.delta, n_.self_.value(), m.seq);
      Notify(in.key, m.old_state, m.new_state);
      if (in.consistency == WriteConsistency::kLocal ||
          (MembershipKnown() && AcksNeeded(in.consistency) == 0)) {
        in.done(std::move(m.delta));
        continue;
      }
      Wait(buffer_seq, in.consistency, std::move(in.done), std::move(m.delta));
      push = true;
    }
    for (auto& [in, result] : answered) in->done(std::move(result));
    // Do not wait for the next round: push majority/all writes to every
    // replica now.
    if (push) {
      for (const auto& [name, m] : members_) {
        if (m.state != MemberState::kLeft) SendDeltas(name);
      }
    }
  }

  // A committed write waiting for `consistency` confirmations.
  void Wait(std::uint64_t buffer_seq, WriteConsistency consistency,
            std::function<void(StatusOr<std::string>)> done, std::string delta) {
    PendingWrite& wait = waits_[buffer_seq];
    wait.consistency = consistency;
    wait.done = std::move(done);
    wait.delta = std::move(delta);
    wait.timer = n_.clock_.Schedule(n_.options_.write_timeout_ms, [this, buffer_seq] {
      const auto it = waits_.find(buffer_seq);
      if (it == waits_.end()) return;
      ++stats_.write_timeouts;
      auto cb = std::move(it->second.done);
      const std::size_t got = it->second.acked_by.size() + 1;
      const std::size_t wanted = AcksNeeded(it->second.consistency) + 1;
      waits_.erase(it);
      cb(Status(StatusCode::kDeadlineExceeded,
                "write is durable here but only " + std::to_string(got) + " of the " +
                    std::to_string(wanted) + " replicas asked for confirmed it in time"));
    });
  }

  // Whether this node knows whom "all" and "majority" count: it has heard of
  // members (by gossip, or from its store after a restart), or it has no
  // seed to learn them from. A node that just lost its data directory knows
  // nobody yet and must not call itself a majority.
  bool MembershipKnown() const {
    if (!members_.empty()) return true;
    return std::all_of(n_.options_.seeds.begin(), n_.options_.seeds.end(),
                       [&](const std::string& seed) { return seed == n_.options_.address; });
  }

  // Peer acknowledgements a write needs beyond our own (counting the members
  // known now: a member learned meanwhile raises what "all" needs; and never
  // fewer than the replicas the cluster is deployed with).
  std::size_t AcksNeeded(WriteConsistency consistency) const {
    std::size_t replicas = 1;
    for (const auto& [name, m] : members_) {
      if (m.state != MemberState::kLeft) ++replicas;
    }
    replicas = std::max(replicas, n_.options_.min_replicas);
    switch (consistency) {
      case WriteConsistency::kLocal:
        return 0;
      case WriteConsistency::kMajority:
        return replicas / 2;
      case WriteConsistency::kAll:
        return replicas - 1;
    }
    return 0;
  }

  // --- subscriptions ---------------------------------------------------------

  std::uint64_t Subscribe(std::string prefix, ChangeFn fn) {
    const std::uint64_t id = ++next_subscription_;
    subscriptions_.push_back(Subscription{id, std::move(prefix), std::move(fn)});
    return id;
  }
  void Unsubscribe(std::uint64_t id) {
    std::erase_if(subscriptions_, [id](const Subscription& s) { return s.id == id; });
  }
  void Notify(const std::string& key, const std::optional<std::string>& old_state,
              const std::string& new_state) {
    for (const Subscription& s : subscriptions_) {
      if (key.starts_with(s.prefix)) s.fn(key, old_state, new_state);
    }
  }

  // --- delta buffer ----------------------------------------------------------

  std::uint64_t Append(const std::string& key, const std::string& delta, std::uint64_t origin,
                       std::uint64_t origin_seq) {
    const std::uint64_t seq = next_seq_++;
    const std::size_t bytes = key.size() + delta.size() + 48;
    const bool local = origin == n_.self_.value();
    buffer_.push_back(
        BufferEntry{seq, key, delta, origin, origin_seq, bytes, local, n_.clock_.NowMs()});
    buffer_bytes_ += bytes;
    return seq;
  }

  std::uint64_t BufferFront() const { return buffer_.empty() ? next_seq_ : buffer_.front().seq; }

  // Drops entries every live peer acknowledged; beyond the byte cap, drops
  // the oldest anyway (peers behind them are repaired by anti-entropy).
  void TrimBuffer() {
    std::uint64_t keep_from = next_seq_;
    for (const auto& [name, m] : members_) {
      if (m.state == MemberState::kDead || m.state == MemberState::kLeft) continue;
      keep_from = std::min(keep_from, peers_[name].acked + 1);
    }
    const std::uint64_t now = n_.clock_.NowMs();
    while (!buffer_.empty() && (buffer_.front().seq < keep_from ||
                                buffer_bytes_ > n_.options_.delta_buffer_max_bytes)) {
      const BufferEntry& e = buffer_.front();
      if (e.seq < keep_from && e.local) ObserveReplication(now - e.appended_ms);
      buffer_bytes_ -= e.bytes;
      buffer_.pop_front();
    }
  }

  void ObserveReplication(std::uint64_t ms) {
    std::size_t bucket = 0;
    while (bucket < kReplicationLatencyBoundsMs.size() && ms > kReplicationLatencyBoundsMs[bucket])
      ++bucket;
    ++stats_.replication_ms_buckets[bucket];
    ++stats_.replication_count;
    stats_.replication_ms_sum += ms;
  }

  void SendDeltas(const std::string& name) {
    const auto member = members_.find(name);
    if (member == members_.end()) return;
    Peer& peer = peers_[name];
    if (peer.acked + 1 >= next_seq_) return;  // nothing new for them
    const std::uint64_t from = peer.acked + 1;
    if (from < BufferFront()) {
      peer.needs_ae = true;  // behind what we still hold
      return;
    }
    capnp::MallocMessageBuilder builder;
    auto msg = Header(builder);
    auto interval = msg.getBody().initDeltas();
    // Entries from `from`, up to the message cap.
    const auto first = buffer_.begin() + static_cast<std::ptrdiff_t>(from - BufferFront());
    std::size_t count = 0, bytes = 0;
    for (auto it = first; it != buffer_.end(); ++it) {
      if (count > 0 && bytes + it->bytes > n_.options_.max_message_bytes - 1024) break;
      bytes += it->bytes;
      ++count;
    }
    auto entries = interval.initEntries(static_cast<unsigned>(count));
    for (std::size_t i = 0; i < count; ++i) {
      const BufferEntry& e = *(first + static_cast<std::ptrdiff_t>(i));
      auto out = entries[static_cast<unsigned>(i)];
      out.setSeq(e.seq);
      out.setKey(AsData(e.key));
      out.setDelta(AsData(e.delta));
      out.setOrigin(e.origin);
      out.setOriginSeq(e.origin_seq);
    }
    interval.setFrom(from);
    interval.setTo(from + count - 1);
    interval.setResync(peer.send_resync);
    stats_.deltas_sent += count;
    Send(Endpoint{name, member->second.address}, builder);
  }

  // --- rounds ----------------------------------------------------------------

  void ScheduleRound() {
    round_timer_ = n_.clock_.Schedule(n_.options_.gossip_interval_ms, [this] {
      if (!running_) return;
      Round();
      ScheduleRound();
    });
  }

  void Round() {
    ++stats_.rounds;
    ++heartbeat_;
    const std::uint64_t now = n_.clock_.NowMs();
    for (auto& [name, m] : members_) {
      if (m.left) {
        m.state = MemberState::kLeft;
        continue;
      }
      const std::uint64_t silent = now - m.last_change_ms;
      m.state = silent > n_.options_.dead_after_ms      ? MemberState::kDead
                : silent > n_.options_.suspect_after_ms ? MemberState::kSuspect
                                                        : MemberState::kAlive;
    }
    TrimBuffer();
    // Alive and suspected members: gossip and deltas to `fanout` of them.
    std::vector<std::string> live, dead;
    for (const auto& [name, m] : members_) {
      if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) live.push_back(name);
      if (m.state == MemberState::kDead) dead.push_back(name);
    }
    std::shuffle(live.begin(), live.end(), rng_);
    const std::size_t fanout =
        std::min<std::size_t>(live.size(), static_cast<std::size_t>(n_.options_.fanout));
    for (std::size_t i = 0; i < fanout; ++i) {
      SendGossip(Endpoint{live[i], members_[live[i]].address});
      SendDeltas(live[i]);
    }
    // A dead member may only be cut off: probe one now and then.
    if (!dead.empty() && stats_.rounds % 4 == 0) {
      const std::string& name = dead[rng_() % dead.size()];
      SendGossip(Endpoint{name, members_[name].address});
    }
    // No member known yet: keep knocking at the seeds.
    if (members_.empty()) {
      for (const std::string& seed : n_.options_.seeds) {
        if (seed != n_.options_.address) SendGossip(Endpoint{"", seed});
      }
    }
    // Anti-entropy with one peer: one that needs it, else a random one.
    if (n_.options_.ae_every_rounds > 0 &&
        stats_.rounds % static_cast<std::uint64_t>(n_.options_.ae_every_rounds) == 0 &&
        !live.empty()) {
      // A peer whose session is still in flight is skipped, so one that does
      // not answer cannot keep the others from being repaired.
      const std::uint64_t start = rng_();
      std::string target;
      for (std::size_t k = 0; k < live.size(); ++k) {
        const std::string& name = live[(start + k) % live.size()];
        if (AeInFlight(name, now)) continue;
        if (target.empty() || (peers_[name].needs_ae && !peers_[target].needs_ae)) target = name;
      }
      if (want_stream_) {
        // Stream from one live peer; if it is gone, compare trees instead.
        if (!stream_peer_.empty() &&
            std::find(live.begin(), live.end(), stream_peer_) == live.end()) {
          want_stream_ = false;
          stream_peer_.clear();
        } else if (stream_peer_.empty() && !target.empty()) {
          stream_peer_ = target;
        }
        if (!stream_peer_.empty()) target = AeInFlight(stream_peer_, now) ? "" : stream_peer_;
      }
      if (!target.empty()) StartAe(target);
    }
  }

  // --- messages out ----------------------------------------------------------

  wire::Message::Builder Header(capnp::MallocMessageBuilder& builder) {
    auto msg = builder.initRoot<wire::Message>();
    msg.setVersion(kProtocolVersion);
    msg.setCluster(n_.options_.cluster);
    msg.setGeneration(generation_);
    msg.setWallMs(n_.clock_.WallMs());
    return msg;
  }

  void Send(const Endpoint& to, capnp::MallocMessageBuilder& builder) {
    std::string frame = Pack(builder);
    stats_.bytes_sent += frame.size();
    n_.transport_.Send(to, std::move(frame));
  }

  void SendGossip(const Endpoint& to) {
    capnp::MallocMessageBuilder builder;
    auto msg = Header(builder);
    auto gossip = msg.getBody().initGossip();
    auto members = gossip.initMembers(static_cast<unsigned>(members_.size() + 1));
    auto self = members[0];
    self.setName(n_.options_.name);
    self.setAddress(n_.options_.address);
    self.setGeneration(generation_);
    self.setHeartbeat(heartbeat_);
    self.setStatus(left_ ? wire::MemberStatus::LEFT : wire::MemberStatus::ALIVE);
    self.setReplica(n_.self_.value());
    self.setMetadata(n_.options_.metadata);
    unsigned i = 1;
    for (const auto& [name, m] : members_) {
      auto out = members[i++];
      out.setName(name);
      out.setAddress(m.address);
      out.setGeneration(m.generation);
      out.setHeartbeat(m.heartbeat);
      out.setStatus(m.left ? wire::MemberStatus::LEFT : wire::MemberStatus::ALIVE);
      out.setReplica(m.replica);
      out.setMetadata(m.metadata);
    }
    // What we hold of each origin, so a node can learn it was rolled back.
    auto origins = gossip.initOrigins(static_cast<unsigned>(origin_seen_.size()));
    i = 0;
    for (const auto& [replica, seq] : origin_seen_) {
      origins[i].setReplica(replica);
      origins[i].setSeq(seq);
      ++i;
    }
    Send(to, builder);
  }

  void SendAck(const std::string& name, std::uint64_t generation, std::uint64_t up_to, bool gap,
               const std::vector<std::uint64_t>& refused = {}) {
    const auto member = members_.find(name);
    if (member == members_.end()) return;
    capnp::MallocMessageBuilder builder;
    auto ack = Header(builder).getBody().initDeltaAck();
    ack.setGeneration(generation);
    ack.setUpTo(up_to);
    ack.setGap(gap);
    auto out = ack.initRefused(static_cast<unsigned>(refused.size()));
    for (unsigned i = 0; i < refused.size(); ++i) out.set(i, refused[i]);
    Send(Endpoint{name, member->second.address}, builder);
  }

  // --- messages in -----------------------------------------------------------

  void OnFrame(const std::string& from, std::string frame) {
    stats_.bytes_received += frame.size();
    try {
      kj::ArrayInputStream input(
          kj::arrayPtr(reinterpret_cast<const kj::byte*>(frame.data()), frame.size()));
      capnp::ReaderOptions options;
      // Twice what one reading of the message may take: it is walked whole
      // first (ReadEveryField), then read by its handler.
      options.traversalLimitInWords = std::max<std::uint64_t>(2048, frame.size() * 32);
      options.nestingLimit = 16;
      capnp::PackedMessageReader reader(input, options);
      const auto msg = reader.getRoot<wire::Message>();
      if (msg.getVersion() != kProtocolVersion || msg.getCluster() != n_.options_.cluster.c_str() ||
          from.empty() || from == n_.options_.name) {
        ++stats_.messages_rejected;
        return;
      }
      // A malformed field anywhere throws here, before any of the message
      // is acted on (a gossip message once persisted its first members and
      // then threw on a later one).
      internal::ReadEveryField(capnp::toDynamic(msg));
      const std::uint64_t generation = msg.getGeneration();
      Peer& peer = peers_[from];
      peer.last_heard_ms = n_.clock_.NowMs();
      if (msg.getWallMs() != 0) {
        // Their clock minus ours, as of now (less the message's transit).
        peer.clock_offset_ms = static_cast<std::int64_t>(msg.getWallMs() - n_.clock_.WallMs());
        peer.clock_sampled_ms = peer.last_heard_ms;
      }
      const auto body = msg.getBody();
      switch (body.which()) {
        case wire::Message::Body::GOSSIP:
          OnGossip(from, generation, body.getGossip());
          break;
        case wire::Message::Body::DELTAS:
          OnDeltas(from, generation, body.getDeltas());
          break;
        case wire::Message::Body::DELTA_ACK:
          OnAck(from, body.getDeltaAck());
          break;
        case wire::Message::Body::AE_NODES:
          OnAeNodes(from, body.getAeNodes());
          break;
        case wire::Message::Body::AE_LEAVES:
          OnAeLeaves(from, body.getAeLeaves());
          break;
        case wire::Message::Body::AE_STATES:
          OnAeStates(from, body.getAeStates());
          break;
      }
    } catch (const kj::Exception&) {
      ++stats_.messages_rejected;
    }
  }

  void OnGossip(const std::string& from, std::uint64_t generation, wire::Gossip::Reader gossip) {
    const std::uint64_t now = n_.clock_.NowMs();
    for (const auto e : gossip.getMembers()) {
      const std::string name = e.getName();
      if (name.empty() || name == n_.options_.name) continue;
      const bool fresh = !members_.contains(name);
      Member& m = members_[name];
      const auto theirs = std::make_pair(e.getGeneration(), e.getHeartbeat());
      if (fresh || theirs > std::make_pair(m.generation, m.heartbeat)) {
        const bool left = e.getStatus() == wire::MemberStatus::LEFT;
        std::string address = e.getAddress();
        if (fresh || m.address != address || m.left != left) PersistMember(name, address, left);
        m.address = std::move(address);
        m.generation = e.getGeneration();
        m.heartbeat = e.getHeartbeat();
        m.left = e.getStatus() == wire::MemberStatus::LEFT;
        m.replica = e.getReplica();
        const auto metadata = e.getMetadata();
        if (metadata.size() <= kMaxMetadataBytes) m.metadata = metadata;
        m.last_change_ms = now;
        m.state = m.left ? MemberState::kLeft : MemberState::kAlive;
      }
    }
    Peer& peer = peers_[from];
    if (peer.their_generation != generation) {
      // A new process: its buffer restarts, and its state may have been
      // lost or rolled back; anti-entropy sorts it out.
      peer.their_generation = generation;
      peer.expected = 1;
      peer.refused.clear();
      peer.needs_ae = true;
    }
    // Dot safety: a peer holding more of our updates than we do means our
    // history was rolled back. Retire this ReplicaId before issuing dots.
    for (const auto o : gossip.getOrigins()) {
      if (o.getReplica() == n_.self_.value() && o.getSeq() > n_.update_seq_) {
        (void)Retire();  // on failure the check runs again with the next gossip
        break;
      }
    }
  }

  // Remembers a member for the next process (best effort: a failed write
  // only means a restart learns it again by gossip).
  void PersistMember(const std::string& name, std::string_view address, bool left) {
    storage::WriteBatch batch;
    // (Appended, not "L" + string: g++ 12 -O3 warns falsely on that, -Wrestrict.)
    std::string record(1, left ? 'L' : 'A');
    record += address;
    batch.PutAux(std::string(kMemberPrefix) + name, std::move(record));
    (void)n_.store_.Write(batch);
  }

  // Continues under a new incarnation: a fresh ReplicaId whose update
  // sequence starts again at 0.
  Status Retire() {
    CONVERGE_RETURN_IF_ERROR(n_.store_.Retire());
    n_.self_ = n_.store_.identity().replica;
    n_.update_seq_ = 0;
    storage::WriteBatch batch;
    batch.PutAux(std::string(kUpdateSeqKey), Fixed64(0));
    CONVERGE_RETURN_IF_ERROR(n_.store_.Write(batch));
    ++stats_.retirements;
    return Status::Ok();
  }

  void OnDeltas(const std::string& from, std::uint64_t generation,
                wire::DeltaInterval::Reader interval) {
    Peer& peer = peers_[from];
    if (peer.their_generation != generation) {
      peer.their_generation = generation;
      peer.expected = 1;
      peer.refused.clear();
    }
    if (interval.getResync()) peer.expected = std::max(peer.expected, interval.getFrom());
    if (interval.getFrom() > peer.expected) {
      ++stats_.intervals_rejected;
      SendAck(from, generation, peer.expected - 1, /*gap=*/true);
      return;
    }
    std::vector<RemoteEntry> entries;
    std::vector<std::uint64_t> seqs;
    for (const auto e : interval.getEntries()) {
      if (e.getSeq() < peer.expected) continue;  // already applied
      entries.push_back(
          RemoteEntry{AsView(e.getKey()), AsView(e.getDelta()), e.getOrigin(), e.getOriginSeq()});
      seqs.push_back(e.getSeq());
    }
    std::vector<std::size_t> refused;
    const std::uint64_t expected = std::max(peer.expected, interval.getTo() + 1);
    const std::pair<std::string, std::string> progress = {std::string(kProgressPrefix) + from,
                                                          Fixed64(generation) + Fixed64(expected)};
    if (Status s = ApplyRemote(entries, /*buffer=*/true, &refused, &progress); !s.ok()) {
      return;  // not acknowledged: sent again
    }
    peer.expected = expected;
    const std::uint64_t now = n_.clock_.NowMs();
    for (const std::size_t i : refused) peer.refused.emplace_back(seqs[i], now);
    // Kept while the sender may still wait for them (its write timeout; we
    // assume it is ours), 256 at most.
    while (!peer.refused.empty() &&
           (peer.refused.size() > 256 ||
            now - peer.refused.front().second > 2 * n_.options_.write_timeout_ms)) {
      peer.refused.pop_front();
    }
    std::vector<std::uint64_t> refused_seqs;
    for (const auto& [seq, at] : peer.refused) refused_seqs.push_back(seq);
    SendAck(from, generation, interval.getTo(), /*gap=*/false, refused_seqs);
  }

  void OnAck(const std::string& from, wire::DeltaAck::Reader ack) {
    if (ack.getGeneration() != generation_) return;  // for a previous process of ours
    Peer& peer = peers_[from];
    const std::uint64_t up_to = std::min(ack.getUpTo(), next_seq_ - 1);
    if (ack.getGap()) {
      peer.acked = up_to;
      if (up_to + 1 < BufferFront()) peer.needs_ae = true;
      return;
    }
    if (up_to > peer.acked) {
      stats_.deltas_acked += up_to - peer.acked;
      peer.acked = up_to;
      peer.send_resync = false;
      TrimBuffer();  // entries every live peer holds now go (and are timed)
    }
    // Writes waiting for confirmations (not from a peer that refused them).
    for (const std::uint64_t seq : ack.getRefused()) {
      if (const auto it = waits_.find(seq); it != waits_.end()) it->second.refused_by.insert(from);
    }
    Confirm(from, peer.acked);
  }

  // `from` durably holds every update of ours up to buffer entry `up_to`:
  // writes waiting for that many confirmations are done.
  void Confirm(const std::string& from, std::uint64_t up_to) {
    for (auto it = waits_.begin(); it != waits_.end() && it->first <= up_to;) {
      PendingWrite& w = it->second;
      if (w.refused_by.contains(from)) {
        ++it;
        continue;
      }
      w.acked_by.insert(from);
      if (MembershipKnown() && w.acked_by.size() >= AcksNeeded(w.consistency)) {
        n_.clock_.Cancel(w.timer);
        auto done = std::move(w.done);
        std::string delta = std::move(w.delta);
        it = waits_.erase(it);
        done(std::move(delta));
      } else {
        ++it;
      }
    }
  }

  // Views into the message being handled (or the caller's strings).
  struct RemoteEntry {
    std::string_view key;
    std::string_view delta;
    std::uint64_t origin = 0;
    std::uint64_t origin_seq = 0;
  };

  // Joins remote deltas (or anti-entropy states) into our state as one
  // durable batch; changes are forwarded through our buffer when `buffer`.
  // `refused` (optional) receives the indexes of entries refused for a
  // timestamp too far ahead of our clock.
  // `progress` (optional): an auxiliary write to commit with the changes,
  // if there are any.
  Status ApplyRemote(const std::vector<RemoteEntry>& entries, bool buffer,
                     std::vector<std::size_t>* refused = nullptr,
                     const std::pair<std::string, std::string>* progress = nullptr) {
    storage::WriteBatch batch;
    // Per key of the batch: its state before the batch and as of now (a key
    // may change several times in one batch). Views into `entries`.
    struct KeyState {
      std::optional<std::string> before;
      std::optional<std::string> now;
      bool changed = false;
    };
    std::unordered_map<std::string_view, KeyState> keys;
    keys.reserve(entries.size());
    // In order of first change; unordered_map nodes stay where they are.
    std::vector<std::pair<std::string_view, KeyState*>> changed;
    std::vector<const RemoteEntry*> applied;
    std::map<std::uint64_t, std::uint64_t> origins;
    codec::DecodeOptions options;  // untrusted: the delta is checked (our base is trusted)
    options.reject_conflicting_writes = true;
    options.base_trusted = true;
    std::optional<std::uint64_t> reference_ms;  // the cluster's time, once needed
    for (std::size_t index = 0; index < entries.size(); ++index) {
      const RemoteEntry& e = entries[index];
      if (e.origin != 0) origins[e.origin] = std::max(origins[e.origin], e.origin_seq);
      const StatusOr<const codec::TypeRegistry::Entry*> type = n_.registry_->Lookup(e.delta);
      if (!type.ok()) {
        ++stats_.messages_rejected;
        continue;
      }
      // Last-writer-wins writes from a clock too far ahead (of the cluster's
      // time, when ours is behind it) are refused.
      if ((*type)->timestamp) {
        if (!reference_ms) reference_ms = ClusterWallMs();
        if (const auto ts = (*type)->timestamp(e.delta);
            ts && !n_.hlc_.Observe(*ts, *reference_ms)) {
          ++stats_.timestamps_rejected;
          if (refused != nullptr) refused->push_back(index);
          continue;
        }
      }
      auto [it, fresh] = keys.try_emplace(e.key);
      KeyState& k = it->second;
      // A key in a leaf our tree has nothing in is not in the store (the
      // digest index commits with every state): no read needed — most of a
      // bootstrap's keys.
      // Likewise a streamed key past the stream's previous end that nothing
      // else wrote since we started empty.
      const bool streamed_new = stream_floor_ && e.key > *stream_floor_ &&
                                !touched_while_streaming_.contains(std::string(e.key));
      if (fresh && !streamed_new &&
          n_.tree_.NodeHash(n_.tree_.depth(), n_.tree_.LeafOf(e.key)) != 0) {
        StatusOr<std::optional<std::string>> state = n_.store_.Get(e.key);
        if (!state.ok()) return state.status();
        k.before = std::move(state).value();
        k.now = k.before;
      }
      const std::string_view operand[] = {e.delta};
      StatusOr<std::string> joined = codec::TypeRegistry::JoinWith(
          **type, k.now ? std::optional<std::string_view>(*k.now) : std::nullopt, operand, options);
      if (!joined.ok()) {
        ++stats_.messages_rejected;
        continue;
      }
      if (k.now && *joined == *k.now) continue;  // nothing new
      if (!k.changed) {
        k.changed = true;
        changed.emplace_back(it->first, &k);
      }
      k.now = std::move(joined).value();
      batch.Merge(std::string(e.key), std::string(e.delta));
      applied.push_back(&e);
    }
    // The final digest of each changed key.
    std::vector<std::uint64_t> digests;
    digests.reserve(changed.size());
    std::vector<std::pair<std::string, std::string>> digest_puts;
    digest_puts.reserve(changed.size());
    for (const auto& [key, state] : changed) {
      digests.push_back(StateDigest(*state->now));
      digest_puts.emplace_back(DigestKey(n_.tree_.LeafOf(key), key), Fixed64(digests.back()));
    }
    // In digest-key (leaf) order, not key order: RocksDB's memtable then
    // finds each one's place from the last one's instead of from the top
    // (a bootstrap's million random-leaf inserts were a fifth of its CPU).
    std::sort(digest_puts.begin(), digest_puts.end());
    for (auto& [digest_key, value] : digest_puts)
      batch.PutAux(std::move(digest_key), std::move(value));
    for (const auto& [origin, seq] : origins) {
      if (seq > origin_seen_[origin]) batch.PutAux(OriginKey(origin), Fixed64(seq));
    }
    if (progress != nullptr && !batch.empty()) batch.PutAux(progress->first, progress->second);
    batch.set_trusted(true);  // every delta was decoded and joined above
    if (!batch.empty()) CONVERGE_RETURN_IF_ERROR(n_.store_.Write(batch));
    for (const auto& [origin, seq] : origins)
      origin_seen_[origin] = std::max(origin_seen_[origin], seq);

    for (const RemoteEntry* e : applied) {
      if (buffer) {
        Append(std::string(e->key), std::string(e->delta), e->origin, e->origin_seq);
        ++stats_.deltas_applied;
      } else {
        ++stats_.ae_keys_repaired;
      }
    }
    if (want_stream_ && !stream_floor_) {
      for (const auto& entry : changed) touched_while_streaming_.emplace(entry.first);
    }
    for (std::size_t i = 0; i < changed.size(); ++i) {
      const KeyState& k = *changed[i].second;
      n_.tree_.Update(changed[i].first,
                      k.before ? std::optional(StateDigest(*k.before)) : std::nullopt, digests[i]);
      if (!subscriptions_.empty()) Notify(std::string(changed[i].first), k.before, *k.now);
    }
    // Dot safety also when a peer forwards our own old updates.
    if (const auto it = origins.find(n_.self_.value());
        it != origins.end() && it->second > n_.update_seq_) {
      (void)Retire();  // as in OnGossip: checked again with the next delta
    }
    return Status::Ok();
  }

  // --- clocks ------------------------------------------------------------------

  // How far the cluster's clock is ahead of ours: the median of the offsets
  // of the live members that told us their clock lately, and ours (0). With
  // an even count, the middle value nearer to ours: two clocks that disagree
  // do not say which one is wrong. A minority of wrong clocks, fast or slow,
  // cannot move it.
  std::int64_t ClusterClockOffsetMs() const {
    const std::uint64_t now = n_.clock_.NowMs();
    std::vector<std::int64_t> offsets = {0};
    for (const auto& [name, m] : members_) {
      if (m.state != MemberState::kAlive && m.state != MemberState::kSuspect) continue;
      const auto it = peers_.find(name);
      if (it == peers_.end() || it->second.clock_sampled_ms == 0 ||
          now - it->second.clock_sampled_ms > n_.options_.dead_after_ms) {
        continue;
      }
      offsets.push_back(it->second.clock_offset_ms);
    }
    std::sort(offsets.begin(), offsets.end());
    const std::size_t mid = offsets.size() / 2;
    if (offsets.size() % 2 == 1) return offsets[mid];
    const std::int64_t low = offsets[mid - 1], high = offsets[mid];
    return (low < 0 ? -low : low) <= (high < 0 ? -high : high) ? low : high;
  }

  // The time last-writer-wins timestamps are judged against: our clock, or
  // the cluster's when ours is behind it (a clock stepped back, or skewed:
  // refusing our peers' correct timestamps would keep us apart until our
  // clock caught up, an hour later). Never ahead of ours by the word of a
  // minority, never stricter than ours.
  std::uint64_t ClusterWallMs() const {
    const std::uint64_t wall = n_.clock_.WallMs();
    const std::int64_t offset = ClusterClockOffsetMs();
    return offset > 0 ? wall + static_cast<std::uint64_t>(offset) : wall;
  }

  // A state from outside (coherence-check's repair), joined like a peer's
  // and forwarded to peers through the buffer. True when it changed ours.
  StatusOr<bool> Merge(const std::string& key, const std::string& state) {
    if (!running_) return Status(StatusCode::kUnavailable, "node is not running");
    codec::DecodeOptions options;
    CONVERGE_RETURN_IF_ERROR(n_.registry_->Validate(state, options).WithContext("state to merge"));
    const std::uint64_t before = n_.tree_.root();
    CONVERGE_RETURN_IF_ERROR(ApplyRemote({RemoteEntry{key, state, 0, 0}}, /*buffer=*/true));
    return n_.tree_.root() != before;
  }

  // --- anti-entropy ----------------------------------------------------------

  bool AeInFlight(const std::string& name, std::uint64_t now) {
    const Peer& peer = peers_[name];
    return peer.ae_session != 0 && now - peer.ae_started_ms < n_.options_.ae_session_timeout_ms;
  }

  void StartAe(const std::string& name) {
    Peer& peer = peers_[name];
    const std::uint64_t now = n_.clock_.NowMs();
    if (AeInFlight(name, now)) return;
    peer.ae_session = (rng_() | 1);
    peer.ae_started_ms = now;
    peer.ae_start_seq = next_seq_ - 1;
    peer.ae_moved_state = false;
    peer.ae_in_sync = false;
    ++stats_.ae_sessions;
    capnp::MallocMessageBuilder builder;
    auto ae = Header(builder).getBody().initAeNodes();
    ae.setSession(peer.ae_session);
    auto nodes = ae.initNodes(1);
    nodes[0].setLevel(0);
    nodes[0].setIndex(0);
    nodes[0].initChildren(1).set(0, n_.tree_.root());  // the root alone first
    if (want_stream_ && name == stream_peer_) {
      ae.setStream(true);
      ae.setStreamAfter(AsData(stream_after_));
    }
    SendAe(name, builder);
  }

  // Our states after `after`, in key order: two capped messages at most (we
  // read the second while they apply the first), the last saying whether
  // there is more.
  void StreamStates(const std::string& to, std::uint64_t session, const std::string& after) {
    constexpr int kChunks = 2;
    std::string begin = after;
    if (!after.empty()) begin.push_back('\0');
    std::vector<std::pair<std::string, std::string>> states;
    std::size_t bytes = 0;
    int sent = 0;
    bool more_in_store = false;
    const auto send = [&](bool more, bool end) {
      capnp::MallocMessageBuilder builder;
      auto ae = Header(builder).getBody().initAeStates();
      ae.setSession(session);
      auto out = ae.initStates(static_cast<unsigned>(states.size()));
      for (unsigned i = 0; i < states.size(); ++i) {
        out[i].setKey(AsData(states[i].first));
        out[i].setState(AsData(states[i].second));
      }
      ae.setStreamLast(AsData(states.empty() ? after : states.back().first));
      ae.setStreamMore(more);
      ae.setStreamEnd(end);
      SendAe(to, builder);
      states.clear();
      bytes = 0;
    };
    (void)n_.store_.Scan(begin, "", [&](std::string_view k, std::string_view v) {
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

  void SendAe(const std::string& name, capnp::MallocMessageBuilder& builder) {
    const auto member = members_.find(name);
    if (member == members_.end()) return;
    std::string frame = Pack(builder);
    stats_.ae_bytes_sent += frame.size();
    stats_.bytes_sent += frame.size();
    n_.transport_.Send(Endpoint{name, member->second.address}, std::move(frame));
  }

  // The initiator's session ends (done, or the states exchange finished).
  void EndAe(const std::string& name, std::uint64_t session) {
    Peer& peer = peers_[name];
    if (peer.ae_session != session) return;
    if (peer.ae_moved_state) ++stats_.ae_repairs;
    if (peer.ae_in_sync) {
      // Equal roots: they hold everything we held when the session started —
      // which confirms the writes waiting for them up to there — and delta
      // intervals resume from there. (A session that ends otherwise may have
      // been cut short by a message cap, on either side: it proves nothing.)
      Confirm(name, peer.ae_start_seq);
      if (peer.needs_ae) {
        peer.needs_ae = false;
        if (peer.acked < peer.ae_start_seq) {
          peer.acked = peer.ae_start_seq;
          peer.send_resync = true;
        }
      }
    }
    peer.ae_session = 0;
    // Their states changed ours: there may be more where that came from (a
    // capped message, a bootstrap); go on now rather than next round. Only
    // changes drive this, so two nodes that cannot agree (a corrupt state
    // that joins into nothing) do not loop.
    if (peer.ae_moved_state && running_) {
      n_.clock_.Post([this, name] {
        if (running_ && members_.contains(name)) StartAe(name);
      });
    }
  }

  void OnAeNodes(const std::string& from, wire::AeNodes::Reader msg) {
    const std::uint64_t session = msg.getSession();
    if (msg.getDone()) {
      Peer& peer = peers_[from];
      if (session == peer.ae_session && msg.getInSync()) peer.ae_in_sync = true;
      EndAe(from, session);
      return;
    }
    if (msg.getStream()) {
      StreamStates(from, session, AsString(msg.getStreamAfter()));
      return;
    }
    if (want_stream_ && session != peers_[from].ae_session) {
      // Catching up by streaming: a tree comparison with us now would only
      // list keys we are about to receive anyway. Later.
      capnp::MallocMessageBuilder reply;
      auto done = Header(reply).getBody().initAeNodes();
      done.setSession(session);
      done.setDone(true);
      SendAe(from, reply);
      return;
    }
    const int depth = n_.tree_.depth();
    capnp::MallocMessageBuilder builder;
    auto header = Header(builder);
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
        if (children[0] == n_.tree_.root()) {
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
      if (index >= n_.tree_.NodeCount(level)) continue;
      const HashTree::Children mine = n_.tree_.ChildrenOf(level, index);
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
    if (!they_lack.empty() && session != peers_[from].ae_session) {
      PushLeafRanges(from, session, they_lack);  // the rest, in later sessions
      return;
    }
    // Cap what one message carries; what does not fit is found again by a
    // later session (chunking with backpressure: one message in flight).
    const std::size_t max_nodes = std::max<std::size_t>(1, n_.options_.max_message_bytes / 160);
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
      SendAe(from, builder);
      EndAe(from, session);
      return;
    }
    auto nodes = ae.initNodes(static_cast<unsigned>(next_nodes.size()));
    for (unsigned i = 0; i < next_nodes.size(); ++i) {
      const auto [level, index] = next_nodes[i];
      nodes[i].setLevel(static_cast<std::uint8_t>(level));
      nodes[i].setIndex(index);
      const HashTree::Children mine = n_.tree_.ChildrenOf(level, index);
      auto children = nodes[i].initChildren(HashTree::kFanout);
      for (unsigned c = 0; c < HashTree::kFanout; ++c) children.set(c, mine[c]);
    }
    SendAe(from, builder);
  }

  // Our (key, digest) pairs in `leaf`.
  std::vector<std::pair<std::string, std::uint64_t>> LeafKeys(std::uint32_t leaf) {
    std::vector<std::pair<std::string, std::uint64_t>> keys;
    const std::string begin = std::string(kDigestPrefix) + BigEndian32(leaf);
    const std::string end =
        leaf + 1 == 0 ? std::string("d0") : std::string(kDigestPrefix) + BigEndian32(leaf + 1);
    (void)n_.store_.ScanAux(begin, end, [&](std::string_view k, std::string_view v) {
      if (const auto digest = ReadFixed64(v))
        keys.emplace_back(std::string(k.substr(begin.size())), *digest);
      return true;
    });
    return keys;
  }

  void SendLeaves(const std::string& to, std::uint64_t session,
                  const std::vector<std::uint32_t>& leaves) {
    capnp::MallocMessageBuilder builder;
    auto ae = Header(builder).getBody().initAeLeaves();
    ae.setSession(session);
    std::vector<std::pair<std::uint32_t, std::vector<std::pair<std::string, std::uint64_t>>>>
        chosen;
    std::size_t bytes = 0;
    for (const std::uint32_t leaf : leaves) {
      auto keys = LeafKeys(leaf);
      std::size_t leaf_bytes = 16;
      for (const auto& [k, d] : keys) leaf_bytes += k.size() + 24;
      if (!chosen.empty() && bytes + leaf_bytes > n_.options_.max_message_bytes - 1024) break;
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
    SendAe(to, builder);
  }

  void OnAeLeaves(const std::string& from, wire::AeLeaves::Reader msg) {
    std::vector<std::string> push, pull;
    for (const auto leaf : msg.getLeaves()) {
      if (leaf.getIndex() >= n_.tree_.leaf_count()) continue;
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
  // index (ordered by leaf: one sequential scan).
  // Two capped messages at most, sent one after the other: we read the
  // second while they apply the first (a bootstrap is then bound by the
  // slower side, not by the sum of both).
  void PushLeafRanges(const std::string& to, std::uint64_t session,
                      const std::vector<std::pair<std::uint32_t, std::uint32_t>>& ranges) {
    constexpr int kChunks = 2;
    std::vector<std::pair<std::string, std::string>> states;
    std::size_t bytes = 0;
    int sent = 0;
    for (const auto& [first, last] : ranges) {
      const std::string begin = std::string(kDigestPrefix) + BigEndian32(first);
      const std::string end = last >= n_.tree_.leaf_count()
                                  ? std::string("d0")
                                  : std::string(kDigestPrefix) + BigEndian32(last);
      (void)n_.store_.ScanAux(begin, end, [&](std::string_view k, std::string_view) {
        std::string key(k.substr(kDigestPrefix.size() + 4));
        StatusOr<std::optional<std::string>> state = n_.store_.Get(key);
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
  bool AddState(std::string& key, std::string& state,
                std::vector<std::pair<std::string, std::string>>* states, std::size_t* bytes) {
    const std::size_t size = key.size() + state.size() + 16;
    if (!states->empty() && *bytes + size > n_.options_.max_message_bytes - 1024) return false;
    *bytes += size;
    states->emplace_back(std::move(key), std::move(state));
    return true;
  }

  void SendStates(const std::string& to, std::uint64_t session,
                  const std::vector<std::string>& push, const std::vector<std::string>& pull) {
    std::vector<std::pair<std::string, std::string>> states;
    std::size_t bytes = 0;
    for (const std::string& key : pull) bytes += key.size() + 8;
    for (const std::string& key : push) {
      StatusOr<std::optional<std::string>> state = n_.store_.Get(key);
      if (!state.ok() || !state->has_value()) continue;
      std::string k = key;
      if (!AddState(k, **state, &states, &bytes)) break;  // the rest later
    }
    SendStates(to, session, std::move(states), pull);
  }

  void SendStates(const std::string& to, std::uint64_t session,
                  std::vector<std::pair<std::string, std::string>> states,
                  const std::vector<std::string>& pull) {
    capnp::MallocMessageBuilder builder;
    auto ae = Header(builder).getBody().initAeStates();
    ae.setSession(session);
    auto out = ae.initStates(static_cast<unsigned>(states.size()));
    for (unsigned i = 0; i < states.size(); ++i) {
      out[i].setKey(AsData(states[i].first));
      out[i].setState(AsData(states[i].second));
    }
    auto wanted = ae.initPull(static_cast<unsigned>(pull.size()));
    for (unsigned i = 0; i < pull.size(); ++i) wanted.set(i, AsData(pull[i]));
    SendAe(to, builder);
    // Nothing asked of the peer: if we started this session, it is over.
    if (pull.empty()) EndAe(to, session);
  }

  void OnAeStates(const std::string& from, wire::AeStates::Reader msg) {
    std::vector<RemoteEntry> entries;
    for (const auto s : msg.getStates())
      entries.push_back(RemoteEntry{AsView(s.getKey()), AsView(s.getState()), 0, 0});
    const std::uint64_t before = stats_.ae_keys_repaired;
    const bool streamed = from == stream_peer_ && msg.hasStreamLast();
    if (streamed) stream_floor_ = stream_after_;
    const Status applied = ApplyRemote(entries, /*buffer=*/false);
    stream_floor_.reset();
    if (!applied.ok()) return;  // asked again later
    Peer& peer = peers_[from];
    if (stats_.ae_keys_repaired > before && peer.ae_session == msg.getSession())
      peer.ae_moved_state = true;
    if (streamed) {
      const std::string last = AsString(msg.getStreamLast());
      if (last > stream_after_) stream_after_ = last;
      if (msg.getStreamEnd()) {
        want_stream_ = false;  // caught up: trees from now on
        stream_peer_.clear();
        touched_while_streaming_.clear();
        peer.ae_moved_state = true;  // compare trees at once
      }
      if (msg.getStreamMore()) return;  // the session's answer goes on
    }
    std::vector<std::string> pull;
    for (const auto k : msg.getPull()) pull.push_back(AsString(k));
    if (!pull.empty()) {
      SendStates(from, msg.getSession(), pull, {});
    }
    EndAe(from, msg.getSession());
  }

  // --- introspection ---------------------------------------------------------

  std::vector<PeerStatus> Peers() const {
    std::vector<PeerStatus> out;
    const std::uint64_t now = n_.clock_.NowMs();
    for (const auto& [name, m] : members_) {
      PeerStatus p;
      p.name = name;
      p.address = m.address;
      p.metadata = m.metadata;
      p.state = std::string(MemberStateName(m.state));
      const auto it = peers_.find(name);
      const std::uint64_t acked = it == peers_.end() ? 0 : it->second.acked;
      p.acked = acked;
      p.lag = next_seq_ - 1 > acked ? next_seq_ - 1 - acked : 0;
      p.last_heard_ms_ago = it == peers_.end() || it->second.last_heard_ms == 0
                                ? now
                                : now - it->second.last_heard_ms;
      out.push_back(std::move(p));
    }
    return out;
  }

  NodeStats Stats() const {
    NodeStats s = stats_;
    s.cluster_clock_offset_ms = ClusterClockOffsetMs();
    s.buffer_entries = buffer_.size();
    s.buffer_bytes = buffer_bytes_;
    return s;
  }

 private:
  struct BufferEntry {
    std::uint64_t seq;
    std::string key;
    std::string delta;
    std::uint64_t origin;
    std::uint64_t origin_seq;
    std::size_t bytes;
    bool local;  // a local update (not a forwarded one)
    std::uint64_t appended_ms;
  };
  struct Subscription {
    std::uint64_t id;
    std::string prefix;
    ChangeFn fn;
  };

  Node& n_;
  std::mt19937_64 rng_;
  std::uint64_t generation_ = 0;
  std::uint64_t heartbeat_ = 0;
  std::uint64_t start_ms_ = 0;
  bool running_ = false;
  bool left_ = false;
  Clock::TimerId round_timer_ = 0;
  std::map<std::string, Member> members_;
  std::map<std::string, Peer> peers_;
  std::deque<BufferEntry> buffer_;
  std::uint64_t next_seq_ = 1;
  std::size_t buffer_bytes_ = 0;
  std::map<std::uint64_t, PendingWrite> waits_;
  bool want_stream_ = false;  // catching up by streaming (started empty)
  std::string stream_peer_;   // ... from this peer
  std::string stream_after_;  // ... after this key
  // While a streamed message is applied: the stream's end before it. Keys
  // past it that nothing else wrote since we started empty are not in the
  // store.
  std::optional<std::string> stream_floor_;
  std::set<std::string> touched_while_streaming_;
  std::mutex incoming_mu_;
  std::vector<Incoming> incoming_;  // guarded by incoming_mu_
  bool drain_scheduled_ = false;    // guarded by incoming_mu_
  std::map<std::uint64_t, std::uint64_t> origin_seen_;
  std::vector<Subscription> subscriptions_;
  std::uint64_t next_subscription_ = 0;
  NodeStats stats_;
};

// ---------------------------------------------------------------------------

Node::Node(NodeOptions options, storage::Store& store, Transport& transport, Clock& clock,
           std::shared_ptr<const codec::TypeRegistry> registry)
    : options_(std::move(options)),
      store_(store),
      transport_(transport),
      clock_(clock),
      registry_(std::move(registry)),
      hlc_([&clock] { return clock.WallMs(); }, options_.hlc_max_offset_ms),
      tree_(options_.tree_depth),
      impl_(std::make_unique<Impl>(*this)) {}

Node::~Node() { impl_->Stop(); }

Status Node::Start() { return impl_->Start(); }
void Node::Leave() { impl_->Leave(); }
void Node::Stop() { impl_->Stop(); }

void Node::Submit(std::string key, LocalMutation mutation, WriteConsistency consistency,
                  std::function<void(StatusOr<std::string>)> done) {
  impl_->Enqueue(Impl::Incoming{std::move(key), std::move(mutation), consistency, std::move(done)});
}

void Node::Merge(std::string key, std::string state, std::function<void(StatusOr<bool>)> done) {
  clock_.Post([this, key = std::move(key), state = std::move(state), done = std::move(done)] {
    done(impl_->Merge(key, state));
  });
}

std::uint64_t Node::Subscribe(std::string prefix, ChangeFn fn) {
  return impl_->Subscribe(std::move(prefix), std::move(fn));
}
void Node::Unsubscribe(std::uint64_t id) { impl_->Unsubscribe(id); }

std::vector<PeerStatus> Node::Peers() const { return impl_->Peers(); }
NodeStats Node::stats() const { return impl_->Stats(); }

crdt::HlcTimestamp Node::Now() {
  const crdt::HlcTimestamp ts = hlc_.Now();
  (void)store_.EnsureHlcLease(ts);
  return ts;
}

}  // namespace converge::replication
