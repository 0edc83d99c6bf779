// Node: one replica of a converge cluster (docs/replication.md).
//
// A node owns nothing but references to its environment — a Store (its
// durable state), a Transport (frames to and from peers) and a Clock (time,
// timers, its executor) — so the same node runs over TCP on real time and in
// the deterministic simulator.
//
// Local API (any thread; work is posted to the node's executor):
//   Update<T>(key, mutator, consistency, done)   apply a CRDT mutator; the
//       delta is persisted, then queued for peers; `done` runs once the write
//       is as replicated as asked (local | majority | all) or timed out.
//   Read<T>(key)                                 the local state (thread-safe)
//   Subscribe(prefix, fn)                        change feed: key, old, new
//
// Protocols (all messages capped in bytes):
//   membership   seeds, member lists by gossip, heartbeats, suspicion then
//                death, graceful leave, rejoin with a new generation;
//   deltas       delta intervals with per-peer sequence numbers and acks;
//                an interval is applied only in order; the buffer is
//                trimmed at the lowest acknowledgement;
//   anti-entropy a digest tree over the key space, compared top-down; gaps
//                and peers behind the trimmed buffer are repaired by it;
//   dot safety   a ReplicaId that issued updates is never reused by a new
//                process (Start continues under a new incarnation, since a
//                rolled-back data directory cannot be told from a current
//                one); and peers report the highest update sequence of ours
//                they hold: above our own means our history was rolled back
//                while running, and the node retires its ReplicaId at once.

#ifndef CONVERGE_REPLICATION_NODE_H_
#define CONVERGE_REPLICATION_NODE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/codec/registry.h"
#include "crdt/codec/status.h"
#include "crdt/hlc.h"
#include "replication/clock.h"
#include "replication/hash_tree.h"
#include "replication/transport.h"
#include "storage/store.h"
#include "storage/typed.h"

namespace converge::replication {

enum class WriteConsistency { kLocal, kMajority, kAll };

std::string_view WriteConsistencyName(WriteConsistency w);

// The digest of a key's canonical encoded state that the anti-entropy tree
// uses: equal digests on two nodes mean equal states (up to 2^-64).
std::uint64_t StateDigest(std::string_view encoded_state);
std::optional<WriteConsistency> ParseWriteConsistency(std::string_view name);

struct NodeOptions {
  std::string name;                  // unique in the cluster
  std::string address;               // where peers reach this node
  std::string cluster = "converge";  // peers of another cluster are ignored
  std::vector<std::string> seeds;    // addresses to contact at start
  // The replicas the cluster is deployed with, this one included: majority
  // and all never count fewer, whatever the member list says. Members are
  // learned by gossip and remembered in the store; a node that lost its data
  // directory relearns them from its peers. But when every member that
  // remembered another lost its directory while that one was down or cut off
  // (two wiped seeds on one side of a partition), the side left knows only
  // itself and would call itself a majority, or all. 0: the members known.
  std::size_t min_replicas = 0;
  // Gossiped with the membership, opaque to the protocol (the cart server
  // puts its HTTP address here); at most kMaxMetadataBytes.
  std::string metadata;
  std::uint64_t gossip_interval_ms = 200;
  int fanout = 3;                          // peers per round for gossip and deltas
  std::uint64_t suspect_after_ms = 2'000;  // no heartbeat for this long: suspect
  std::uint64_t dead_after_ms = 6'000;     // ... and this long: dead
  // Membership for large clusters (docs/replication.md, "Membership"): with
  // at most this many other members, every gossip message carries the whole
  // member list and liveness is judged by heartbeats, as above; with more,
  // a message carries at most this many member changes, members are probed
  // (directly, then through three others), and a member whose probes fail is
  // suspected, and declared dead after max(dead_after_ms - suspect_after_ms,
  // a timeout that grows with log N) unless it refutes.
  std::size_t members_per_message = 16;
  // A member dead this long is forgotten (as by Forget) by this node. 0:
  // only an operator forgets members.
  std::uint64_t forget_dead_after_ms = 0;
  std::size_t max_message_bytes = std::size_t{1} << 20;
  // The largest state a key may have: a local write that would make it
  // larger fails (RESOURCE_EXHAUSTED) and changes nothing; a peer's larger
  // state is not pulled (counted in states_too_large, logged). States larger
  // than a message travel in chunks (docs/replication.md).
  std::size_t max_key_bytes = std::size_t{256} << 20;
  std::size_t delta_buffer_max_bytes = std::size_t{64} << 20;
  std::uint64_t write_timeout_ms = 5'000;
  int ae_every_rounds = 1;  // an anti-entropy session every N rounds
  std::uint64_t ae_session_timeout_ms = 5'000;
  int tree_depth = 4;  // 16^depth leaves
  // Self-checking state: keys of the store verified per round against the
  // digest index and tree (and repaired; NodeStats::digests_repaired,
  // tree_leaves_repaired). 0: never. At 256 and 200 ms rounds a store of a
  // million keys is verified about every 13 minutes.
  std::size_t verify_keys_per_round = 256;
  std::uint64_t hlc_max_offset_ms = crdt::Hlc::kDefaultMaxOffsetMs;
  std::uint64_t seed = 0;  // randomness (peer choice); 0: from the clock
  // Where the node reports what it could not do by itself — an entry from a
  // peer it could not apply, a state it could not send — naming the key and
  // the peer; on the executor, at most 20 lines a minute. Empty: not logged
  // (the counters in NodeStats still count).
  std::function<void(const std::string& line)> log;
  // Prune the replica ids of retired incarnations from version vectors
  // (docs/replication.md, "Pruning retired replica ids"). Off (the default
  // for now: the long soak still finds failures with wiped and rolled-back
  // stores): this node never proposes a pruning level (it still follows its
  // peers' levels).
  bool prune_retired_ids = false;
  // For the simulator's oracle and tests: called when this node renames its
  // states for a pruning level (docs/replication.md, "Pruning retired
  // replica ids"), with the level's ids and each key's state before.
  std::function<void(std::uint64_t level, const std::vector<std::uint64_t>& retired,
                     std::string_view key, std::string_view state_before)>
      on_prune_rename;
};

inline constexpr std::size_t kMaxMetadataBytes = 1024;

struct PeerStatus {
  std::string name;
  std::string address;
  std::string metadata;   // as the member gossips it (NodeOptions::metadata)
  std::string state;      // alive | suspect | dead | left
  std::uint64_t lag = 0;  // our buffer entries not yet acknowledged by it
  std::uint64_t acked = 0;
  std::uint64_t last_heard_ms_ago = 0;
};

// Upper bounds (ms) of the replication-latency histogram buckets; the last
// bucket (not listed) is unbounded.
inline constexpr std::array<std::uint64_t, 12> kReplicationLatencyBoundsMs = {
    5, 10, 25, 50, 100, 250, 500, 1'000, 2'500, 5'000, 10'000, 30'000};

struct NodeStats {
  std::uint64_t updates = 0;             // local updates committed
  std::uint64_t deltas_sent = 0;         // entries sent in intervals
  std::uint64_t deltas_acked = 0;        // entries acknowledged by peers
  std::uint64_t deltas_applied = 0;      // remote entries that changed our state
  std::uint64_t intervals_rejected = 0;  // gaps
  std::uint64_t ae_sessions = 0;
  std::uint64_t ae_repairs = 0;        // sessions that moved at least one state
  std::uint64_t ae_keys_repaired = 0;  // states received that changed ours
  std::uint64_t ae_bytes_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t messages_rejected = 0;  // malformed or foreign
  // Remote entries (deltas, states) that do not decode as a type this node
  // knows or do not join into its state: not held, never acknowledged.
  std::uint64_t entries_rejected = 0;
  std::uint64_t timestamps_rejected = 0;  // LWW writes too far in the future
  std::uint64_t retirements = 0;          // new incarnations (at start, after a rollback)
  // Keys larger than a message: chunks of large states sent and received,
  // large states received whole; states refused for max_key_bytes (a local
  // write, or a peer's state); messages not sent because they would have
  // passed max_message_bytes (0 unless something is wrong).
  std::uint64_t chunks_sent = 0;
  std::uint64_t chunks_received = 0;
  std::uint64_t large_states_received = 0;
  std::uint64_t states_too_large = 0;
  std::uint64_t messages_oversized = 0;
  std::uint64_t members_forgotten = 0;  // by an operator, a peer, or forget_dead_after_ms
  std::uint64_t rejoined_as_new = 0;    // times this node learned it was forgotten
  // Large clusters (NodeOptions::members_per_message): members this node
  // suspected after its probes went unanswered, and suspicions of this
  // node it refuted (a rising count under no loss: a member that cannot
  // reach it, or that it cannot answer in time).
  std::uint64_t members_suspected = 0;
  std::uint64_t suspicions_refuted = 0;
  // Pruning of retired replica ids (docs/replication.md): this node's
  // level; proposals it made as coordinator and those given up; levels it
  // reached by renaming (it reported on them) or by stripping (it missed
  // them: a restored copy, a forgotten member); messages with states from
  // a peer at another level (not taken in: exchanged once levels agree);
  // remote entries refused while a proposal was recorded (they would have
  // raised what it had reported).
  std::uint64_t prune_level = 0;
  std::uint64_t prune_proposals = 0;
  std::uint64_t prune_aborts = 0;
  std::uint64_t prune_levels_renamed = 0;
  std::uint64_t prune_levels_stripped = 0;
  std::uint64_t messages_other_level = 0;
  std::uint64_t entries_refused_pruning = 0;
  // Self-checking state: the digest tree and sequences read back after the
  // store reopened from a disk error; full verifications of the digest
  // index and tree against the states; what those found wrong and fixed
  // (always 0 unless something is broken: a disk, a bug).
  std::uint64_t store_reloads = 0;
  std::uint64_t verify_passes = 0;
  std::uint64_t digests_repaired = 0;
  std::uint64_t tree_leaves_repaired = 0;
  // The cluster's wall clock minus ours (the median of the live members'
  // clocks and ours): far from 0, our clock is wrong. Far-future LWW
  // timestamps are judged against the cluster's time when ours is behind.
  std::int64_t cluster_clock_offset_ms = 0;
  std::uint64_t write_timeouts = 0;
  std::uint64_t buffer_entries = 0;
  std::uint64_t buffer_bytes = 0;
  std::uint64_t rounds = 0;
  // Time to converge, per local update: from its commit here until every
  // live peer acknowledged holding it (counts per bucket, not cumulative).
  std::array<std::uint64_t, kReplicationLatencyBoundsMs.size() + 1> replication_ms_buckets{};
  std::uint64_t replication_count = 0;
  std::uint64_t replication_ms_sum = 0;
};

class Node {
 public:
  using ChangeFn =
      std::function<void(const std::string& key, const std::optional<std::string>& old_state,
                         const std::string& new_state)>;
  using DoneFn = std::function<void(Status)>;

  Node(NodeOptions options, storage::Store& store, Transport& transport, Clock& clock,
       std::shared_ptr<const codec::TypeRegistry> registry);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node();

  // Loads the digest tree from the store, moves to a new incarnation if the
  // store's ReplicaId issued updates before (see "dot safety" above), starts
  // the transport and the gossip rounds. Call on the executor (or before it
  // runs). Writes are accepted as soon as it returns.
  [[nodiscard]] Status Start();
  // Announces a graceful leave to the peers, stops rounds and the transport.
  void Leave();
  // Stops without announcing (a crash, for the simulator: nothing is flushed
  // beyond what the store already holds). Writes still waiting for
  // confirmations get UNAVAILABLE (they are durable here).
  void Stop();

  // Writes to the store's auxiliary key space that must commit atomically
  // with an update (an idempotency record, say), made from the key's new
  // state; called only when the update changes the state.
  template <class T>
  using AlsoWriteFn = std::function<void(const T& new_state, storage::WriteBatch& batch)>;

  // Applies mutate(T& state, ReplicaId self) -> T delta to `key`. `done`
  // receives the delta's Status: ok once persisted locally and acknowledged
  // by as many replicas as `consistency` asks (DeadlineExceeded after
  // write_timeout_ms: the write is durable here and will still spread).
  // A bottom delta (the mutator changed nothing) is ok at once and writes
  // nothing. `also_write` adds auxiliary writes to the update's batch.
  template <class T, class F>
  void Update(std::string key, F mutate, WriteConsistency consistency,
              std::function<void(StatusOr<T>)> done, AlsoWriteFn<T> also_write = {});

  // The local state of `key`; thread-safe.
  template <class T>
  StatusOr<T> Read(std::string_view key) {
    return storage::Read<T>(store_, key);
  }

  // Joins an encoded state into `key` exactly like a state received from a
  // peer (validated first; an invalid one changes nothing) and forwards the
  // change to peers. `done` (on the executor) gets whether the state changed.
  // For repair tools (coherence-check --repair).
  void Merge(std::string key, std::string state, std::function<void(StatusOr<bool>)> done);

  // Removes a member that is gone for good (dead, or left): `majority` and
  // `all` no longer count it, and the peers this node gossips with forget it
  // too. Its process, should it come back under the same name, rejoins as a
  // new member (a new generation and a new ReplicaId). `done` (on the
  // executor): NotFound for no such member, FailedPrecondition for a member
  // that is alive or suspected.
  void Forget(std::string name, std::function<void(Status)> done);

  // Calls fn(key, old, new) on the executor for each change of a key that
  // starts with `prefix`, local or remote. Returns an id for Unsubscribe.
  std::uint64_t Subscribe(std::string prefix, ChangeFn fn);
  void Unsubscribe(std::uint64_t id);

  // Introspection (executor only).
  [[nodiscard]] const std::string& name() const { return options_.name; }
  [[nodiscard]] crdt::ReplicaId replica() const { return self_; }
  [[nodiscard]] std::vector<PeerStatus> Peers() const;
  [[nodiscard]] NodeStats stats() const;
  [[nodiscard]] std::uint64_t root_hash() const { return tree_.root(); }
  [[nodiscard]] std::uint64_t update_sequence() const { return update_seq_; }
  [[nodiscard]] crdt::Hlc& hlc() { return hlc_; }

  // The LWW timestamp to stamp a local write with (executor only).
  crdt::HlcTimestamp Now();

 private:
  class Impl;

  // The type-erased commit of a local update, on the executor.
  using LocalMutation = std::function<StatusOr<std::string>(
      const std::optional<std::string>& old_state, crdt::ReplicaId self, std::string* new_state,
      storage::WriteBatch* batch)>;
  void Submit(std::string key, LocalMutation mutation, WriteConsistency consistency,
              std::function<void(StatusOr<std::string>)> done);

  NodeOptions options_;
  storage::Store& store_;
  Transport& transport_;
  Clock& clock_;
  std::shared_ptr<const codec::TypeRegistry> registry_;
  crdt::Hlc hlc_;
  crdt::ReplicaId self_;
  HashTree tree_;
  std::uint64_t update_seq_ = 0;
  std::unique_ptr<Impl> impl_;

  friend class Impl;
};

template <class T, class F>
void Node::Update(std::string key, F mutate, WriteConsistency consistency,
                  std::function<void(StatusOr<T>)> done, AlsoWriteFn<T> also_write) {
  LocalMutation mutation = [this, mutate = std::move(mutate), also_write = std::move(also_write)](
                               const std::optional<std::string>& old_state, crdt::ReplicaId self,
                               std::string* new_state,
                               storage::WriteBatch* batch) mutable -> StatusOr<std::string> {
    T state;
    if (old_state) {
      codec::DecodeOptions options;
      options.trusted = true;
      StatusOr<T> decoded = codec::Decode<T>(*old_state, options);
      if (!decoded.ok()) return decoded.status().WithContext("state of the key");
      state = std::move(decoded).value();
    }
    if constexpr (crdt::CausalCrdt<T>) {
      // The mutator issues at most one dot, the next of ours in this key:
      // lease it durably before it exists.
      CONVERGE_RETURN_IF_ERROR(store_.EnsureDotLease(state.context().Max(self) + 1));
    }
    if constexpr (requires(const T& t) { t.write()->timestamp; }) {
      // The write this key holds was made or accepted here: a local write
      // stamped now must be later, whatever the clock did meanwhile (a
      // restart forgets the timestamps observed from peers; a clock can be
      // stepped back).
      if (state.write()) hlc_.Restore(state.write()->timestamp);
    }
    T delta;
    try {
      delta = mutate(state, self);
    } catch (const crdt::CounterOverflow& e) {
      return InvalidArgument(e.what());
    }
    if (delta.IsBottom()) return std::string();
    *new_state = codec::Encode(state);
    if (also_write) also_write(state, *batch);
    return codec::Encode(delta);
  };
  Submit(std::move(key), std::move(mutation), consistency,
         [done = std::move(done)](StatusOr<std::string> delta) {
           if (!delta.ok()) {
             done(delta.status());
             return;
           }
           if (delta->empty()) {
             done(T{});
             return;
           }
           codec::DecodeOptions options;
           options.trusted = true;
           done(codec::Decode<T>(*delta, options));
         });
}

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_NODE_H_
