// Pruning: keeps version vectors bounded by renaming the dots of retired
// replica ids onto one archive id (crdt/relabel.h), level by level, fenced
// by agreement of every member (docs/replication.md, "Pruning retired
// replica ids").
//
// Each node is at a pruning level; states and deltas are exchanged only
// between nodes at equal levels (Message.pruneLevel). A level is made by a
// two-phase exchange in gossip:
//
//  1. prepare: the coordinator — the lowest-named member, when every member
//     is alive and at its level — proposes the ids its states name that are
//     no member's current id, in an order. Each member records the proposal
//     (persisted), from then on refuses remote entries that would raise its
//     figures for those ids (their highest counters, counts, and the
//     archive's), and reports a hash of its figures over all its keys.
//  2. commit: when every member reported the coordinator's own hash (and the
//     same member names), the coordinator renames its states and buffered
//     deltas, moves to the new level, and sends the level to every member
//     behind; a member that reported on that proposal renames the same way
//     (its figures equal the coordinator's: the renaming is the same). Any
//     other answer, or none in time, aborts.
//
// A node behind that did not report on a level (a restored copy, a member
// that was forgotten, a new member with states) strips the level's ids
// instead: what it holds of them the members hold renamed.

#ifndef CONVERGE_REPLICATION_INTERNAL_PRUNING_H_
#define CONVERGE_REPLICATION_INTERNAL_PRUNING_H_

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/codec/registry.h"
#include "replication/hash_tree.h"
#include "replication/internal/delta_intervals.h"
#include "replication/internal/log.h"
#include "replication/internal/membership.h"
#include "replication/internal/records.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "storage/store.h"

namespace converge::replication::internal {

// A pruning message, as carried in a gossip message (wire::Prune).
struct PruneMessage {
  wire::PruneKind kind = wire::PruneKind::PREPARE;
  std::uint64_t nonce = 0;
  std::uint64_t level = 0;
  std::vector<std::uint64_t> retired;
  bool ok = false;
  std::uint64_t summary = 0;
  std::uint64_t members = 0;
  std::vector<records::PruneLevelRecord> tail;
  std::vector<std::uint64_t> id_summaries;

  static PruneMessage Of(wire::PruneKind kind, std::uint64_t nonce, std::uint64_t level,
                         std::vector<std::uint64_t> retired = {}) {
    PruneMessage m;
    m.kind = kind;
    m.nonce = nonce;
    m.level = level;
    m.retired = std::move(retired);
    return m;
  }
  void Fill(wire::Prune::Builder out) const;
  static PruneMessage Read(wire::Prune::Reader in);
};

class Pruning {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    // Sends `message` to member `to` in a gossip message.
    virtual void SendPrune(const std::string& to, const PruneMessage& message) = 0;
    // The states were renamed (the level changed): streams in progress
    // restart, messages carry the new level.
    virtual void Renamed() = 0;
  };

  // Levels kept to bring members behind up to date (and refused in repairs).
  static constexpr std::size_t kTailLevels = 64;
  // Rounds between proposals, and before a proposal without every answer
  // is given up.
  static constexpr std::uint64_t kProposeEveryRounds = 10;
  static constexpr std::uint64_t kAnswerWithinRounds = 60;
  static constexpr std::uint64_t kAskAgainEveryRounds = 10;

  Pruning(const NodeOptions& options, storage::Store& store, const codec::TypeRegistry& registry,
          HashTree& tree, const Membership& membership, DeltaIntervals& deltas, NodeStats& stats,
          NodeLog& log, std::mt19937_64& rng, Host& host)
      : options_(options),
        store_(store),
        registry_(registry),
        tree_(tree),
        membership_(membership),
        deltas_(deltas),
        stats_(stats),
        log_(log),
        rng_(rng),
        host_(host) {}

  // Reads the level and a recorded proposal back; `self` is our current id.
  Status Load(std::uint64_t self);
  [[nodiscard]] std::uint64_t level() const { return record_.level; }
  // Whether this node or a peer it heard from is past level 0: until then
  // no client context can name renamed dots (StaleView has nothing to find).
  [[nodiscard]] bool Active() const { return record_.level > 0 || peers_past_zero_; }
  // Whether a peer was heard at our level or below: we are not behind it.
  [[nodiscard]] bool HeardAPeerNotAhead() const {
    return std::any_of(peer_levels_.begin(), peer_levels_.end(),
                       [&](const auto& p) { return p.second <= record_.level; });
  }

  // A message from `from` carried `level`: whether its states and deltas
  // may be taken in (equal levels).
  bool Accepts(const std::string& from, std::uint64_t level);
  // Each round: the coordinator's part. `self` is our current replica id.
  void Round(std::uint64_t self);
  // A pruning message in gossip from `from`.
  void OnMessage(const std::string& from, const PruneMessage& message, std::uint64_t self);
  // What to attach to gossip for `to`: the latest levels when it is behind.
  [[nodiscard]] std::optional<PruneMessage> ForPeer(const std::string& to) const;

  // While a proposal is recorded: whether a remote entry of `key` (its
  // encoding `delta`, our state `state`) would raise our figures for the
  // proposed ids, and so must be refused.
  [[nodiscard]] bool Refuses(std::string_view delta, const std::optional<std::string>& state) const;
  // Why a local update's delta (or a state from outside: a repair) cannot
  // be taken, if it cannot: it acted on a client's causal context read
  // before a pruning level (it names a pruned id) or at a level this node
  // has not reached (archive dots beyond ours).
  [[nodiscard]] std::optional<std::string> StaleView(std::string_view delta,
                                                     const std::optional<std::string>& state) const;

  // A member was forgotten: a proposal of its is given up.
  void Forgotten(const std::string& name);

 private:
  // Hashes of our figures over every key: the archive's, and each id's.
  struct Summaries {
    std::uint64_t archive = 0;
    std::vector<std::uint64_t> ids;
  };
  struct Proposal {
    std::uint64_t nonce = 0;
    std::uint64_t level = 0;
    std::vector<std::uint64_t> retired;
    Summaries summaries;
    std::uint64_t members = 0;
    std::uint64_t started_round = 0;
    std::map<std::string, PruneMessage> reports;
  };

  [[nodiscard]] std::vector<std::string> Others() const;  // every other member, left ones too
  [[nodiscard]] std::uint64_t MembersHash() const;
  // Whether `name` is the lowest-named member (ourselves included): the one
  // whose proposals we answer.
  [[nodiscard]] bool IsCoordinator(const std::string& name) const;
  // Our current id and the members' (as we know them): never renamed.
  [[nodiscard]] std::set<std::uint64_t> Current(std::uint64_t self) const;
  // The recorded proposal's ids that are no member's current id: those
  // whose figures we hold still (Refuses).
  void Freeze(std::uint64_t self);
  // Our report on the recorded proposal.
  [[nodiscard]] std::optional<PruneMessage> MakeReport(std::uint64_t self) const;
  StatusOr<Summaries> Summarize(const std::vector<std::uint64_t>& retired,
                                std::uint64_t self) const;
  StatusOr<std::vector<std::uint64_t>> Candidates(std::uint64_t self) const;
  void Propose(std::uint64_t self);
  void Resume(std::uint64_t self);
  // Sends a proposal's prepare to every member and waits for their reports.
  void Launch(Proposal p);
  void Decide();
  void Abort(const std::string& why);
  // Renames (or strips) `level`'s ids in every state and buffered delta and
  // moves to that level, atomically.
  Status Sweep(const records::PruneLevelRecord& level, bool strip);
  Status Persist();
  void CatchUp(const std::vector<records::PruneLevelRecord>& tail);
  [[nodiscard]] bool InTail(const std::vector<crdt::ReplicaId>& ids) const;

  const NodeOptions& options_;
  storage::Store& store_;
  const codec::TypeRegistry& registry_;
  HashTree& tree_;
  const Membership& membership_;
  DeltaIntervals& deltas_;
  NodeStats& stats_;
  NodeLog& log_;
  std::mt19937_64& rng_;
  Host& host_;
  records::PruneRecord record_;
  std::optional<Proposal> proposal_;  // ours, as coordinator
  std::vector<std::uint64_t> frozen_;
  std::optional<PruneMessage> last_report_;  // ours, on the recorded proposal
  std::map<std::string, std::uint64_t> peer_levels_;
  bool peers_past_zero_ = false;
  std::uint64_t rounds_ = 0;
  // The first proposal of a process comes a few rounds after its start
  // (once it has heard from its peers).
  std::uint64_t last_proposal_round_ = 0;
  std::uint64_t propose_every_rounds_ = kProposeEveryRounds;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_PRUNING_H_
