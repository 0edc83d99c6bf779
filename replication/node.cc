// Node: start and stop, local writes (group commit), rounds, and the dispatch
// of messages to the protocols in replication/internal/ — membership,
// delta intervals, anti-entropy sessions, the application of remote states
// and the persisted records. See node.h for the contract and
// docs/replication.md for the protocols.

#include "replication/node.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <span>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "crdt/codec/columns.h"
#include "replication/internal/anti_entropy.h"
#include "replication/internal/apply.h"
#include "replication/internal/delta_intervals.h"
#include "replication/internal/large_states.h"
#include "replication/internal/log.h"
#include "replication/internal/membership.h"
#include "replication/internal/messages.h"
#include "replication/internal/pruning.h"
#include "replication/internal/read_every_field.h"
#include "replication/internal/records.h"
#include "replication/internal/verifier.h"
#include "replication/protocol.capnp.h"

namespace converge::replication {

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

namespace {

// What a gossip message carries besides the membership and origins.
struct GossipExtras {
  internal::Membership::ListKind list = internal::Membership::ListKind::kChosen;
  std::uint64_t probe = 0;
  std::uint64_t ack = 0;
  // Probe this member for us (large clusters): name, address, nonce.
  std::optional<std::tuple<std::string, std::string, std::uint64_t>> probe_for;
  // Pruning of retired replica ids (the latest levels for a peer behind
  // are attached without being asked).
  std::optional<internal::PruneMessage> prune;

  static GossipExtras Probe(std::uint64_t nonce) {
    GossipExtras e;
    e.probe = nonce;
    return e;
  }
  static GossipExtras Ack(std::uint64_t nonce) {
    GossipExtras e;
    e.ack = nonce;
    return e;
  }
  static GossipExtras List(internal::Membership::ListKind list) {
    GossipExtras e;
    e.list = list;
    return e;
  }
  static GossipExtras Prune(internal::PruneMessage message) {
    GossipExtras e;
    e.prune = std::move(message);
    return e;
  }
};

}  // namespace

class Node::Impl final : public internal::DeltaIntervals::Host,
                         public internal::AntiEntropy::Host,
                         public internal::LargeStates::Host,
                         public internal::Pruning::Host {
 public:
  explicit Impl(Node& node)
      : n_(node),
        rng_(node.options_.seed != 0 ? node.options_.seed : node.clock_.NowMs() ^ 0x5eedULL),
        log_(node.options_.log, node.clock_),
        membership_(node.options_, node.store_),
        outbox_(node.options_, membership_, node.transport_, node.clock_, stats_),
        applier_(node.store_, *node.registry_, node.tree_, node.hlc_, stats_),
        large_(node.options_, node.store_, node.tree_, membership_, outbox_, node.clock_, stats_,
               log_, *this),
        deltas_(node.options_, membership_, outbox_, node.clock_, stats_, large_, *this),
        ae_(node.options_, node.store_, node.tree_, membership_, outbox_, node.clock_, rng_, stats_,
            large_, *this),
        verifier_(node.store_, node.tree_, stats_),
        pruning_(node.options_, node.store_, *node.registry_, node.tree_, membership_, deltas_,
                 stats_, log_, rng_, *this) {
    outbox_.set_oversized([this](const std::string& to, std::size_t bytes) {
      log_.Warn("replication: a message of " + std::to_string(bytes) + " bytes to " + to +
                " passes max_message_bytes and was not sent (a bug: please report it)");
    });
  }

  Status Start() {
    if (n_.options_.metadata.size() > kMaxMetadataBytes) {
      return InvalidArgument("node metadata exceeds " + std::to_string(kMaxMetadataBytes) +
                             " bytes");
    }
    store_reopens_ = n_.store_.reopens();
    const storage::Identity identity = n_.store_.identity();
    n_.self_ = identity.replica;
    n_.hlc_.Restore(n_.store_.hlc_high_water());
    StatusOr<std::uint64_t> seq = internal::records::LoadUpdateSequence(n_.store_);
    if (!seq.ok()) return seq.status();
    n_.update_seq_ = *seq;
    // The digest tree, from the digest index (written with every state).
    CONVERGE_RETURN_IF_ERROR(
        internal::records::LoadTree(n_.store_, n_.tree_).WithContext("load digest index"));
    CONVERGE_RETURN_IF_ERROR(applier_.LoadOrigins().WithContext("load origin sequences"));
    CONVERGE_RETURN_IF_ERROR(pruning_.Load(n_.self_.value()).WithContext("load pruning level"));
    outbox_.set_prune_level(pruning_.level());

    // Dot safety across restarts: a data directory cannot tell whether it was
    // rolled back (restored from an older copy, possibly from before its
    // first write), and a rolled-back replica would reissue dots that peers
    // already hold for other writes. So only a store created by this very
    // process keeps its id; any other continues under a new incarnation
    // before its first dot (SubmitGroup). Not at start: a process that never
    // writes (a crash loop before any traffic) adds no replica id to any
    // key. (The cost of one that writes: one more version-vector entry in
    // the keys it writes from now on.)
    retire_before_first_dot_ =
        !identity.created || n_.update_seq_ > 0 || n_.store_.dot_lease_end() > 0;
    // A new process has a greater generation than every earlier one of this
    // node, so that peers replace its member entry (they keep the greater
    // (generation, heartbeat)): above the persisted one, and time-based so
    // that a node whose directory was lost still comes back above its past.
    StatusOr<std::uint64_t> last_generation = internal::records::LoadGeneration(n_.store_);
    if (!last_generation.ok()) return last_generation.status();
    membership_.set_generation(
        std::max(*last_generation + 1, (n_.clock_.WallMs() << 16) | (rng_() & 0xffff)));
    // The members this node knew: a restarted node counts them for
    // majority/all writes at once, and gossips to them before any seed.
    StatusOr<std::vector<internal::records::MemberRecord>> known =
        internal::records::LoadMembers(n_.store_);
    if (!known.ok()) return known.status().WithContext("load members");
    StatusOr<std::vector<internal::records::ForgottenRecord>> forgotten =
        internal::records::LoadForgotten(n_.store_);
    if (!forgotten.ok()) return forgotten.status().WithContext("load forgotten members");
    StatusOr<std::vector<internal::records::ProgressRecord>> progress =
        internal::records::LoadProgress(n_.store_);
    if (!progress.ok()) return progress.status().WithContext("load delta progress");
    deltas_.Restore(*progress);
    storage::WriteBatch generation;
    internal::records::PutGeneration(generation, membership_.generation());
    CONVERGE_RETURN_IF_ERROR(n_.store_.Write(generation).WithContext("record generation"));
    ae_.set_bootstrap(n_.tree_.root() == 0);
    membership_.Restore(std::move(known).value(), std::move(forgotten).value(), n_.clock_.NowMs());
    running_ = true;
    started_ms_ = n_.clock_.NowMs();
    n_.transport_.Start([this](const std::string& from, std::string frame) {
      if (running_) OnFrame(from, std::move(frame));
    });
    // First contact: gossip to the members we knew and to every seed.
    for (const auto& [name, m] : membership_.members()) {
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
    n_.clock_.Cancel(hold_timer_);
    n_.transport_.Stop();
    Drain();  // writes held (HoldingWrites) learn that the node stopped
    // Writes waiting for confirmations are durable here; they learn that the
    // confirmations will not come (every `done` runs exactly once).
    deltas_.FailWaits(Status(StatusCode::kUnavailable,
                             "node stopped before the write was confirmed by enough replicas; it "
                             "is durable here and spreads when the node runs again"));
  }

  void Leave() {
    if (!running_) return;
    membership_.Leave();
    for (const auto& [name, m] : membership_.members()) {
      if (m.state == internal::MemberState::kAlive || m.state == internal::MemberState::kSuspect) {
        SendGossip(Endpoint{name, m.address});
      }
    }
    Stop();
  }

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

  // The swarm's rolled_back seed 1056 with pruning: a node restarted from an
  // old copy of its directory is at the pruning level of that copy. A write
  // it made before hearing that its peers had gone past it named ids they
  // had renamed; catching up, it stripped them (it had not reported at that
  // level), and with them what the write removed — an acknowledged write,
  // partly lost. So a restarted node that prunes makes its first update
  // only after it heard a peer at its level or below (it catches up on
  // the first gossip from one ahead), or after suspect_after_ms without
  // one (a partition: availability first, the risk stays; docs/replication.md).
  bool HoldingWrites() const {
    return running_ && retire_before_first_dot_ &&
           (n_.options_.prune_retired_ids || pruning_.level() > 0) &&
           !membership_.members().empty() && !pruning_.HeardAPeerNotAhead() &&
           n_.clock_.NowMs() - started_ms_ < n_.options_.suspect_after_ms;
  }

  void Drain() {
    if (HoldingWrites()) {
      if (hold_timer_ == 0) {
        hold_timer_ = n_.clock_.Schedule(
            std::max<std::uint64_t>(1, n_.options_.gossip_interval_ms / 4), [this] {
              hold_timer_ = 0;
              Drain();
            });
      }
      return;  // drain_scheduled_ stays set: Enqueue leaves the rest to us
    }
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
    if (retire_before_first_dot_) {
      if (Status s = Retire().WithContext("new incarnation before the first update"); !s.ok()) {
        for (Incoming& in : group) in.done(s);
        return;
      }
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
      if (std::optional<std::string> stale =
              pruning_.Active() ? pruning_.StaleView(*delta, it->second) : std::nullopt) {
        answered.emplace_back(&in, Status(StatusCode::kFailedPrecondition, *stale));
        continue;
      }
      if (new_state.size() > n_.options_.max_key_bytes) {
        ++stats_.states_too_large;
        answered.emplace_back(
            &in, ResourceExhausted("this update would make the key's state " +
                                   std::to_string(new_state.size()) + " bytes, more than the " +
                                   std::to_string(n_.options_.max_key_bytes) +
                                   "-byte limit (max_key_bytes); split the data over keys"));
        continue;
      }
      // Every incarnation that writes a key adds an id to its causal context;
      // past the limit a state decodes nowhere (peers would refuse it for
      // good). A state naming more ids than the limit has more bytes than
      // it (each id takes at least one), so small states are not looked at.
      constexpr std::size_t kMaxReplicas = codec::DecodeLimits{}.max_replicas;
      if (new_state.size() > kMaxReplicas) {
        const StatusOr<std::size_t> replicas = codec::PeekReplicaCount(new_state);
        if (replicas.ok() && *replicas > kMaxReplicas) {
          ++stats_.states_too_large;
          answered.emplace_back(
              &in, ResourceExhausted("this update would make the key's state name " +
                                     std::to_string(*replicas) + " replica ids, more than the " +
                                     std::to_string(kMaxReplicas) +
                                     " a state may hold (each incarnation that writes a key "
                                     "adds one); nothing was changed"));
          continue;
        }
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
      internal::records::PutDigest(batch, n_.tree_, in.key, StateDigest(new_state));
      ae_.Touched(in.key);
      made.push_back(Made{&in, it->second, new_state, std::move(delta).value(), ++seq});
      it->second = std::move(new_state);
    }
    if (!made.empty()) {
      internal::records::PutUpdateSequence(batch, seq);
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
      const std::uint64_t buffer_seq =
          deltas_.Append(in.key, m.delta, n_.self_.value(), m.seq, /*local=*/true);
      Notify(in.key, m.old_state, m.new_state);
      if (in.consistency == WriteConsistency::kLocal ||
          (membership_.Known() && membership_.AcksNeeded(in.consistency) == 0)) {
        in.done(std::move(m.delta));
        continue;
      }
      deltas_.Wait(buffer_seq, in.consistency, std::move(in.done), std::move(m.delta));
      push = true;
    }
    for (auto& [in, result] : answered) in->done(std::move(result));
    // Do not wait for the next round: push majority/all writes to every
    // replica now.
    if (push) {
      for (const auto& [name, m] : membership_.members()) {
        if (m.state != internal::MemberState::kLeft) deltas_.SendTo(name);
      }
    }
    CheckStore();
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

  // --- rounds ----------------------------------------------------------------

  void ScheduleRound() {
    round_timer_ = n_.clock_.Schedule(n_.options_.gossip_interval_ms, [this] {
      if (!running_) return;
      Round();
      ScheduleRound();
    });
  }

  void Round() {
    CheckStore();
    ++stats_.rounds;
    membership_.Beat();
    const std::uint64_t now = n_.clock_.NowMs();
    for (const std::string& name : membership_.UpdateStates(now, n_.clock_.WallMs())) {
      log_.Warn("replication: forgetting member " + name + ", which left an hour ago");
      Forgotten(name);
    }
    if (n_.options_.forget_dead_after_ms > 0) {
      for (const std::string& name : membership_.Dead()) {
        const internal::Member& m = membership_.members().at(name);
        if (now - m.last_change_ms < n_.options_.forget_dead_after_ms) continue;
        log_.Warn("replication: forgetting member " + name + ", dead for " +
                  std::to_string((now - m.last_change_ms) / 1000) + " s (forget_dead_after_ms)");
        (void)Forget(name);
      }
    }
    deltas_.Trim();
    pruning_.Round(n_.self_.value());
    levels_told_.clear();
    // The origin table keeps the members' current replicas only (once every
    // live one told us its own: a restarted node knows none at first).
    if (applier_.origins().size() > membership_.members().size() + 1) {
      std::set<std::uint64_t> current{n_.self_.value()};
      bool known = true;
      for (const auto& [name, m] : membership_.members()) {
        current.insert(m.replica);
        known = known && (m.replica != 0 || m.state == internal::MemberState::kDead ||
                          m.state == internal::MemberState::kLeft);
      }
      if (known) applier_.RetainOrigins(current);
    }
    // Alive and suspected members: gossip and deltas to `fanout` of them.
    std::vector<std::string> live = membership_.Live();
    const std::vector<std::string> dead = membership_.Dead();
    std::shuffle(live.begin(), live.end(), rng_);
    const std::size_t fanout =
        std::min<std::size_t>(live.size(), static_cast<std::size_t>(n_.options_.fanout));
    for (std::size_t i = 0; i < fanout; ++i) {
      SendGossip(*membership_.EndpointOf(live[i]));
      deltas_.SendTo(live[i]);
    }
    // A dead member may only be cut off: probe one now and then.
    if (!dead.empty() && stats_.rounds % 4 == 0) {
      SendGossip(*membership_.EndpointOf(dead[rng_() % dead.size()]));
    }
    // Large clusters: probe a member, and now and then exchange whole lists.
    const internal::Membership::ProbePlan plan = membership_.ProbeRound(now, rng_);
    if (plan.probe) SendGossip(*plan.probe, GossipExtras::Probe(plan.nonce));
    for (const Endpoint& helper : plan.helpers) {
      GossipExtras ask;
      ask.probe_for = std::tuple(plan.target, plan.target_address, plan.nonce);
      SendGossip(helper, ask);
    }
    if (!live.empty() && membership_.PushPullDue(stats_.rounds)) {
      SendGossip(*membership_.EndpointOf(live[0]),
                 GossipExtras::List(internal::Membership::ListKind::kPush));
    }
    // Seeds not known as members: knock at them, every round while no
    // member is known, and every 4th round after. (Two groups can form
    // apart at first, each around the seed it heard from while its
    // messages to the other seed were lost; they would never meet.)
    if (membership_.empty() || stats_.rounds % 4 == 0) {
      for (const std::string& seed : n_.options_.seeds) {
        if (seed != n_.options_.address && !membership_.KnowsAddress(seed)) {
          SendGossip(Endpoint{"", seed});
        }
      }
    }
    // Anti-entropy with one peer: one that needs it, else a random one.
    if (n_.options_.ae_every_rounds > 0 &&
        stats_.rounds % static_cast<std::uint64_t>(n_.options_.ae_every_rounds) == 0 &&
        !live.empty()) {
      ae_.Round(live, now, rng_());
    }
    large_.Round(now);
    Verify();
  }

  // --- self-checking state ---------------------------------------------------------

  // After the store reopened from a disk error it may hold writes that were
  // reported as failed (their batch reached the log before the sync
  // failed): the digest tree and sequences are read back from it before the
  // node goes on (called at the start and end of everything the node does).
  void CheckStore() {
    const std::uint64_t reopens = n_.store_.reopens();
    if (reopens == store_reopens_) return;
    if (Status s = Reload(); !s.ok()) {
      log_.Warn(
          "replication: the store reopened after a disk error, but reading the digest "
          "tree back failed (tried again): " +
          s.ToString());
      return;
    }
    store_reopens_ = reopens;
  }

  Status Reload() {
    HashTree tree(n_.options_.tree_depth);
    CONVERGE_RETURN_IF_ERROR(internal::records::LoadTree(n_.store_, tree));
    StatusOr<std::uint64_t> seq = internal::records::LoadUpdateSequence(n_.store_);
    if (!seq.ok()) return seq.status();
    CONVERGE_RETURN_IF_ERROR(applier_.LoadOrigins());
    const bool changed = tree.root() != n_.tree_.root();
    n_.tree_ = std::move(tree);
    n_.update_seq_ = std::max(n_.update_seq_, *seq);
    ae_.StopStreaming();
    ++stats_.store_reloads;
    log_.Warn(std::string("replication: the store reopened after a disk error; the digest tree "
                          "and sequences were read back from it") +
              (changed ? " (they changed: writes reported as failed had reached the store)" : ""));
    return Status::Ok();
  }

  // A few keys of the store against the digest index and the tree, each
  // round; what is wrong is fixed, counted and logged.
  void Verify() {
    if (n_.options_.verify_keys_per_round == 0) return;
    StatusOr<std::uint64_t> repaired = verifier_.Step(n_.options_.verify_keys_per_round);
    if (repaired.ok() && *repaired > 0) {
      log_.Warn("replication: verification found " + std::to_string(*repaired) +
                " digest index entries or tree leaves that did not match the stored states, "
                "and repaired them");
    }
  }

  void SendGossip(const Endpoint& to) { SendGossip(to, GossipExtras{}); }
  void SendGossip(const Endpoint& to, const GossipExtras& extras) {
    capnp::MallocMessageBuilder builder;
    auto gossip = outbox_.Header(builder).getBody().initGossip();
    membership_.Fill(gossip, n_.self_.value(), to.name, extras.list);
    gossip.setProbe(extras.probe);
    gossip.setAck(extras.ack);
    if (extras.probe_for) {
      auto request = gossip.initProbeFor();
      request.setTarget(std::get<0>(*extras.probe_for));
      request.setAddress(std::get<1>(*extras.probe_for));
      request.setNonce(std::get<2>(*extras.probe_for));
    }
    if (extras.prune) {
      extras.prune->Fill(gossip.initPrune());
    } else if (const std::optional<internal::PruneMessage> levels = pruning_.ForPeer(to.name)) {
      levels->Fill(gossip.initPrune());
    }
    // What we hold of the receiver's updates, so that it can learn it was
    // rolled back (only its current ReplicaId matters: a process never
    // issues under an earlier one). A receiver we do not know yet (a seed)
    // gets the entries of every member's current id. The table of every id
    // ever seen would grow with every restart in the cluster's life.
    const auto& held = applier_.origins();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> wanted;
    const auto add = [&](std::uint64_t replica) {
      if (const auto it = held.find(replica); it != held.end()) wanted.push_back(*it);
    };
    if (const auto it = membership_.members().find(to.name); it != membership_.members().end()) {
      add(it->second.replica);
    } else {
      std::set<std::uint64_t> replicas;
      for (const auto& [name, m] : membership_.members()) replicas.insert(m.replica);
      for (const std::uint64_t replica : replicas) add(replica);
    }
    auto origins = gossip.initOrigins(static_cast<unsigned>(wanted.size()));
    for (unsigned i = 0; i < wanted.size(); ++i) {
      origins[i].setReplica(wanted[i].first);
      origins[i].setSeq(wanted[i].second);
    }
    outbox_.Send(to, builder);
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
      if (msg.getVersion() != internal::kProtocolVersion ||
          msg.getCluster() != n_.options_.cluster.c_str() || from.empty() ||
          from == n_.options_.name) {
        ++stats_.messages_rejected;
        return;
      }
      // A malformed field anywhere throws here, before any of the message
      // is acted on (a gossip message once persisted its first members and
      // then threw on a later one).
      internal::ReadEveryField(capnp::toDynamic(msg));
      const std::uint64_t generation = msg.getGeneration();
      // Their clock minus ours, as of now (less the message's transit).
      membership_.Heard(
          from, n_.clock_.NowMs(),
          msg.getWallMs() == 0
              ? std::nullopt
              : std::optional(static_cast<std::int64_t>(msg.getWallMs() - n_.clock_.WallMs())));
      const auto body = msg.getBody();
      // States and deltas are exchanged only between equal pruning levels.
      const bool same_level = pruning_.Accepts(from, msg.getPruneLevel());
      if (!same_level && body.which() != wire::Message::Body::GOSSIP &&
          body.which() != wire::Message::Body::DELTA_ACK) {
        ++stats_.messages_other_level;
        // A peer behind hears of the levels it lacks at once (once a round).
        if (msg.getPruneLevel() < pruning_.level() && levels_told_.insert(from).second) {
          if (const std::optional<Endpoint> peer = membership_.EndpointOf(from)) SendGossip(*peer);
        }
        CheckStore();
        return;
      }
      switch (body.which()) {
        case wire::Message::Body::GOSSIP:
          OnGossip(from, generation, body.getGossip());
          break;
        case wire::Message::Body::DELTAS:
          deltas_.OnDeltas(from, generation, body.getDeltas());
          break;
        case wire::Message::Body::DELTA_ACK:
          deltas_.OnAck(from, body.getDeltaAck());
          break;
        case wire::Message::Body::AE_NODES:
          ae_.OnNodes(from, body.getAeNodes());
          break;
        case wire::Message::Body::AE_LEAVES:
          ae_.OnLeaves(from, body.getAeLeaves());
          break;
        case wire::Message::Body::AE_STATES:
          ae_.OnStates(from, body.getAeStates());
          break;
        case wire::Message::Body::CHUNK_REQUEST:
          large_.OnRequest(from, body.getChunkRequest());
          break;
        case wire::Message::Body::CHUNK:
          large_.OnChunk(from, body.getChunk());
          break;
      }
    } catch (const kj::Exception&) {
      ++stats_.messages_rejected;
    }
    CheckStore();
  }

  void OnGossip(const std::string& from, std::uint64_t generation, wire::Gossip::Reader gossip) {
    const internal::Membership::Merged merged = membership_.Merge(from, gossip, n_.clock_.NowMs());
    for (const std::string& name : merged.removed) {
      log_.Warn("replication: member " + name + " was forgotten (learned from " + from + ")");
      Forgotten(name);
    }
    if (merged.self_forgotten && *merged.self_forgotten >= membership_.generation()) {
      RejoinAsNew(*merged.self_forgotten, from);
    }
    if (!membership_.contains(from)) {
      // A forgotten process (it was cut off when it was forgotten): not a
      // peer, but it must learn that it was forgotten to rejoin as new.
      for (const auto e : gossip.getMembers()) {
        if (e.getName() == from) {
          SendGossip(Endpoint{from, e.getAddress()});
          break;
        }
      }
      return;
    }
    if (deltas_.OnGossip(from, generation)) {
      // A new process: a session with its predecessor (killed mid-way) would
      // never be answered, and would keep us from the session it needs for
      // the whole session timeout (an "all" write waiting on it timed out).
      ae_.Forget(from);
    }
    AnswerGossip(from, gossip);
    if (gossip.hasPrune()) {
      pruning_.OnMessage(from, internal::PruneMessage::Read(gossip.getPrune()), n_.self_.value());
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

  // Probes, acks, requests to probe for another, and push-pull exchanges
  // (large clusters; docs/replication.md, "Membership").
  void AnswerGossip(const std::string& from, wire::Gossip::Reader gossip) {
    const Endpoint sender = *membership_.EndpointOf(from);
    bool answered = false;
    if (gossip.getProbe() != 0 || gossip.getList() == wire::MemberList::PUSH) {
      GossipExtras answer = GossipExtras::Ack(gossip.getProbe());
      if (gossip.getList() == wire::MemberList::PUSH) {
        answer.list = internal::Membership::ListKind::kPushReply;
      }
      SendGossip(sender, answer);
      answered = true;
    }
    if (gossip.getAck() != 0) {
      if (const auto relay = membership_.Acked(gossip.getAck())) {
        if (const auto requester = membership_.EndpointOf(relay->first)) {
          SendGossip(*requester, GossipExtras::Ack(relay->second));
        }
      }
    }
    if (gossip.hasProbeFor()) {
      const auto request = gossip.getProbeFor();
      const std::string target = request.getTarget();
      if (!target.empty() && target != n_.options_.name && membership_.contains(target)) {
        const std::uint64_t nonce =
            membership_.ProbeFor(from, request.getNonce(), n_.clock_.NowMs());
        SendGossip(*membership_.EndpointOf(target), GossipExtras::Probe(nonce));
      }
    }
    // A member we suspect is talking to us: it should hear it, and refute.
    if (!answered && membership_.ShouldHearItsEntry(from)) SendGossip(sender);
  }

  // --- forgetting members -----------------------------------------------------------

  Status Forget(const std::string& name) {
    CONVERGE_RETURN_IF_ERROR(membership_.Forget(name, n_.clock_.WallMs()));
    Forgotten(name);
    return Status::Ok();
  }

  // `name` is no longer a member: what the protocols kept of it goes.
  void Forgotten(const std::string& name) {
    ++stats_.members_forgotten;
    pruning_.Forgotten(name);
    ae_.Forget(name);
    large_.Forget(name);
    storage::WriteBatch batch;
    internal::records::DeleteProgress(batch, name);
    (void)n_.store_.Write(batch);  // best effort: a stale record is only a position
    deltas_.Forget(name);
  }

  // The cluster forgot this node's process (an operator took it for gone
  // for good): it goes on as a new member, under a generation above the
  // forgotten one and a new ReplicaId, never under its old identity.
  void RejoinAsNew(std::uint64_t forgotten_generation, const std::string& from) {
    membership_.set_generation(
        std::max(forgotten_generation + 1, (n_.clock_.WallMs() << 16) | (rng_() & 0xffff)));
    storage::WriteBatch batch;
    internal::records::PutGeneration(batch, membership_.generation());
    (void)n_.store_.Write(batch);  // a restart takes a greater one anyway
    (void)Retire();                // on failure: dots stay safe, the id is only reused
    ++stats_.rejoined_as_new;
    log_.Warn("replication: this node was forgotten by the cluster (learned from " + from +
              "); it rejoins as a new member");
  }

  // Continues under a new incarnation: a fresh ReplicaId whose update
  // sequence starts again at 0.
  Status Retire() {
    CONVERGE_RETURN_IF_ERROR(n_.store_.Retire());
    retire_before_first_dot_ = false;
    n_.self_ = n_.store_.identity().replica;
    n_.update_seq_ = 0;
    storage::WriteBatch batch;
    internal::records::PutUpdateSequence(batch, 0);
    CONVERGE_RETURN_IF_ERROR(n_.store_.Write(batch));
    ++stats_.retirements;
    return Status::Ok();
  }

  // --- remote states -------------------------------------------------------------

  // How remote entries came: forwarded entries join our delta buffer.
  enum class Source { kInterval, kAntiEntropy, kMerge };

  // Joins remote entries from `from` (internal::StateApplier) and acts on
  // what changed: forwards it through our buffer (unless it came from
  // anti-entropy, which every peer runs itself), tells subscribers, and
  // retires our ReplicaId if a peer forwarded our own updates beyond what we
  // hold. `refused` (optional) receives the indexes of the entries not held:
  // refused for their timestamp, or rejected (logged and counted).
  Status ApplyRemote(const std::string& from, std::span<const internal::RemoteEntry> entries,
                     Source source, std::vector<std::size_t>* refused = nullptr,
                     decltype(internal::StateApplier::Options::progress) progress = {}) {
    internal::StateApplier::Options options;
    options.reference_ms = [this] { return ClusterWallMs(); };
    options.known_absent = [this](std::string_view key) { return ae_.KnownAbsent(key); };
    options.refuse = [this](std::string_view delta, const std::optional<std::string>& state) {
      if (!pruning_.Refuses(delta, state)) return false;
      ++stats_.entries_refused_pruning;
      return true;
    };
    options.progress = std::move(progress);
    StatusOr<internal::Applied> applied = applier_.Apply(entries, options);
    if (!applied.ok()) return applied.status();
    for (const internal::Applied::Rejection& r : applied->rejected) {
      ++stats_.entries_rejected;
      log_.Warn(std::string("replication: ") +
                (source == Source::kAntiEntropy ? "a state" : "a delta") + " of key '" +
                internal::Printable(entries[r.index].key) + "' from " + from +
                " cannot be applied, so it is not held and not acknowledged: " + r.reason);
    }
    if (refused != nullptr) {
      *refused = std::move(applied->refused);
      for (const internal::Applied::Rejection& r : applied->rejected) refused->push_back(r.index);
      std::sort(refused->begin(), refused->end());
    }
    for (const std::size_t index : applied->applied) {
      const internal::RemoteEntry& e = entries[index];
      if (source == Source::kAntiEntropy) {
        ++stats_.ae_keys_repaired;
        continue;
      }
      deltas_.Append(std::string(e.key), std::string(e.delta), e.origin, e.origin_seq,
                     /*local=*/e.origin == n_.self_.value() && !retire_before_first_dot_);
      ++stats_.deltas_applied;
    }
    ae_.Changed(applied->changes);
    if (!subscriptions_.empty()) {
      for (const internal::Applied::Change& change : applied->changes) {
        Notify(std::string(change.key), change.before, change.now);
      }
    }
    // Dot safety also when a peer forwards our own old updates.
    if (const auto it = applied->origins.find(n_.self_.value());
        it != applied->origins.end() && it->second > n_.update_seq_) {
      (void)Retire();  // as in OnGossip: checked again with the next delta
    }
    return Status::Ok();
  }

  // DeltaIntervals::Host
  Status ApplyInterval(const std::string& from, std::span<const internal::RemoteEntry> entries,
                       std::vector<std::size_t>* refused,
                       decltype(internal::StateApplier::Options::progress) progress) override {
    return ApplyRemote(from, entries, Source::kInterval, refused, std::move(progress));
  }

  // AntiEntropy::Host
  Status ApplyStates(const std::string& from,
                     std::span<const internal::RemoteEntry> states) override {
    return ApplyRemote(from, states, Source::kAntiEntropy);
  }
  void InSync(const std::string& peer, std::uint64_t start_seq) override {
    deltas_.InSync(peer, start_seq);
  }
  bool NeedsAe(const std::string& peer) override { return deltas_.NeedsAe(peer); }

  // Pruning::Host
  void SendPrune(const std::string& to, const internal::PruneMessage& message) override {
    if (const std::optional<Endpoint> endpoint = membership_.EndpointOf(to)) {
      SendGossip(*endpoint, GossipExtras::Prune(message));
    }
  }
  void Renamed() override {
    outbox_.set_prune_level(pruning_.level());
    // Sessions and pulls under way compared or carried states of the old
    // level: they start again (a bootstrap's stream too, from where it is).
    for (const auto& [name, m] : membership_.members()) {
      ae_.Forget(name);
      large_.Forget(name);
    }
  }

  // LargeStates::Host
  Status ApplyPulled(const std::string& from, std::string_view key,
                     std::string_view state) override {
    const internal::RemoteEntry entry{key, state, 0, 0};
    return ApplyRemote(from, {&entry, 1}, Source::kAntiEntropy);
  }
  [[nodiscard]] std::uint64_t buffer_end() const override { return deltas_.last_seq(); }
  [[nodiscard]] bool running() const override { return running_; }

  // The time last-writer-wins timestamps are judged against: our clock, or
  // the cluster's when ours is behind it (a clock stepped back, or skewed:
  // refusing our peers' correct timestamps would keep us apart until our
  // clock caught up, an hour later). Never ahead of ours by the word of a
  // minority, never stricter than ours.
  std::uint64_t ClusterWallMs() const {
    const std::uint64_t wall = n_.clock_.WallMs();
    const std::int64_t offset = membership_.ClusterClockOffsetMs(n_.clock_.NowMs());
    return offset > 0 ? wall + static_cast<std::uint64_t>(offset) : wall;
  }

  // A state from outside (coherence-check's repair), joined like a peer's
  // and forwarded to peers through the buffer. True when it changed ours.
  StatusOr<bool> Merge(const std::string& key, const std::string& state) {
    if (!running_) return Status(StatusCode::kUnavailable, "node is not running");
    codec::DecodeOptions options;
    CONVERGE_RETURN_IF_ERROR(n_.registry_->Validate(state, options).WithContext("state to merge"));
    // A state read at another pruning level names dots by other names.
    StatusOr<std::optional<std::string>> ours = n_.store_.Get(key);
    if (!ours.ok()) return ours.status();
    if (std::optional<std::string> other = pruning_.StaleView(state, *ours)) {
      return InvalidArgument("the state to merge was read at another pruning level: " + *other);
    }
    const std::uint64_t before = n_.tree_.root();
    const internal::RemoteEntry entry{key, state, 0, 0};
    const Status applied = ApplyRemote("a repair", {&entry, 1}, Source::kMerge);
    CheckStore();
    CONVERGE_RETURN_IF_ERROR(applied);
    return n_.tree_.root() != before;
  }

  // --- introspection ---------------------------------------------------------

  std::vector<PeerStatus> Peers() const {
    std::vector<PeerStatus> out;
    const std::uint64_t now = n_.clock_.NowMs();
    for (const auto& [name, m] : membership_.members()) {
      PeerStatus p;
      p.name = name;
      p.address = m.address;
      p.metadata = m.metadata;
      p.state = std::string(internal::MemberStateName(m.state));
      const std::uint64_t acked = deltas_.acked(name);
      p.acked = acked;
      p.lag = deltas_.last_seq() > acked ? deltas_.last_seq() - acked : 0;
      const std::optional<std::uint64_t> heard = membership_.last_heard_ms(name);
      p.last_heard_ms_ago = heard ? now - *heard : now;
      out.push_back(std::move(p));
    }
    return out;
  }

  NodeStats Stats() const {
    NodeStats s = stats_;
    s.cluster_clock_offset_ms = membership_.ClusterClockOffsetMs(n_.clock_.NowMs());
    s.members_suspected = membership_.suspected();
    s.suspicions_refuted = membership_.refuted();
    s.buffer_entries = deltas_.entries();
    s.prune_level = pruning_.level();
    s.buffer_bytes = deltas_.bytes();
    return s;
  }

 private:
  struct Subscription {
    std::uint64_t id;
    std::string prefix;
    ChangeFn fn;
  };

  Node& n_;
  std::mt19937_64 rng_;
  internal::NodeLog log_;
  NodeStats stats_;
  internal::Membership membership_;
  internal::Outbox outbox_;
  internal::StateApplier applier_;
  internal::LargeStates large_;
  internal::DeltaIntervals deltas_;
  internal::AntiEntropy ae_;
  internal::Verifier verifier_;
  internal::Pruning pruning_;
  std::set<std::string> levels_told_;  // peers behind told of our levels this round
  std::uint64_t store_reopens_ = 0;    // the store's reopens() our tree reflects
  bool running_ = false;
  // This process must continue under a new incarnation before it issues
  // its first dot (a store it did not create: see Start).
  bool retire_before_first_dot_ = false;
  Clock::TimerId round_timer_ = 0;
  Clock::TimerId hold_timer_ = 0;  // HoldingWrites: Drain again
  std::uint64_t started_ms_ = 0;
  std::mutex incoming_mu_;
  std::vector<Incoming> incoming_;  // guarded by incoming_mu_
  bool drain_scheduled_ = false;    // guarded by incoming_mu_
  std::vector<Subscription> subscriptions_;
  std::uint64_t next_subscription_ = 0;
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

void Node::Forget(std::string name, std::function<void(Status)> done) {
  clock_.Post(
      [this, name = std::move(name), done = std::move(done)] { done(impl_->Forget(name)); });
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
