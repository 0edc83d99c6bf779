// Membership: who the cluster's members are, whether they are alive, and what
// majority and all count (docs/replication.md, "Membership").
//
// Members are learned by gossip, remembered in the store for the next process
// (records::PutMember), and marked left when they leave gracefully. What is
// said of a member is ordered by (generation, incarnation, status), with
// alive < suspect < dead < left at equal incarnations; its heartbeat (raised
// every round) is kept as the greatest heard. The node's own entry — its
// generation, incarnation and heartbeat — is kept here too.
//
// Two regimes (NodeOptions::members_per_message, K):
//  - at most K other members: every gossip message carries the whole list,
//    and a member is suspected, then declared dead, when its heartbeat stops
//    growing (suspect_after_ms, dead_after_ms);
//  - more: a message carries the sender's entry and at most K recent changes
//    (each sent about 4 log10 N times, fewest-sent first), whole lists are
//    exchanged with one member every max(32, N/4) rounds, and liveness comes
//    from probes as in SWIM (Das et al. 2002): one member a round, round
//    robin; no answer by the next round, three others are asked to probe it;
//    no answer by the round after, it is suspected, and the suspicion spreads
//    as a change. A member that hears it is suspected refutes with a greater
//    incarnation; a suspicion not refuted within the suspicion timeout makes
//    the member dead, which spreads too, and which the member refutes the
//    same way if it is alive after all.

#ifndef CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_
#define CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "replication/internal/records.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "replication/transport.h"
#include "storage/store.h"

namespace converge::replication::internal {

enum class MemberState { kAlive, kSuspect, kDead, kLeft };

std::string_view MemberStateName(MemberState s);

struct Member {
  std::string address;
  std::string metadata;
  std::uint64_t generation = 0;
  std::uint64_t incarnation = 0;
  std::uint64_t heartbeat = 0;
  bool left = false;
  std::uint64_t replica = 0;
  std::uint64_t last_change_ms = 0;  // local time the heartbeat last grew
  // Large clusters: what is said of it at its incarnation (kAlive, kSuspect
  // or kDead), and since when (local time) it is suspected or dead here.
  MemberState reported = MemberState::kAlive;
  std::uint64_t reported_ms = 0;
  MemberState state = MemberState::kAlive;
};

class Membership {
 public:
  Membership(const NodeOptions& options, storage::Store& store)
      : options_(options), store_(store) {}

  // --- this node's own entry ---
  [[nodiscard]] std::uint64_t generation() const { return generation_; }
  void set_generation(std::uint64_t generation) {
    generation_ = generation;
    incarnation_ = 0;
    next_nonce_ = generation * 0x9e3779b97f4a7c15ULL;  // apart from the last process's
  }
  [[nodiscard]] bool left() const { return left_; }
  void Beat() { ++heartbeat_; }  // one more round
  void Leave() {
    left_ = true;
    ++heartbeat_;
  }

  // The members and forgotten members the previous process of this node
  // remembered (at start).
  void Restore(std::vector<records::MemberRecord> members,
               std::vector<records::ForgottenRecord> forgotten, std::uint64_t now);

  // A message from `from` arrived; `clock_offset_ms` is their wall clock
  // minus ours when the message gave it.
  void Heard(const std::string& from, std::uint64_t now,
             std::optional<std::int64_t> clock_offset_ms);
  [[nodiscard]] std::optional<std::uint64_t> last_heard_ms(const std::string& name) const;

  // Suspicion and death from silence, the expiry of forgotten members'
  // tombstones, and members that left long ago forgotten (each round).
  // Returns the names forgotten.
  std::vector<std::string> UpdateStates(std::uint64_t now, std::uint64_t wall_ms);

  struct Merged {
    std::vector<std::string> removed;  // members forgotten by a peer's operator
    // This node's own name is forgotten up to this generation.
    std::optional<std::uint64_t> self_forgotten;
  };
  // Joins the member entries and forgotten members of a gossip message from
  // `from` (persisting new members, changed addresses and generations, and
  // tombstones).
  Merged Merge(const std::string& from, wire::Gossip::Reader gossip, std::uint64_t now);

  // What a gossip message to `to` carries of the membership.
  enum class ListKind {
    kChosen,     // the regime's own: whole list, or changes (or a push to a stranger)
    kPush,       // the whole list, asking for the receiver's (large clusters)
    kPushReply,  // the whole list, answering a push
  };
  // Fills a gossip message's member list (this node first) and forgotten
  // members.
  void Fill(wire::Gossip::Builder gossip, std::uint64_t replica, const std::string& to,
            ListKind kind = ListKind::kChosen);

  // Large clusters: whether this round exchanges whole lists with a member.
  [[nodiscard]] bool PushPullDue(std::uint64_t round) const;

  // --- probes (large clusters) ---
  struct ProbePlan {
    std::optional<Endpoint> probe;  // send it a probe with `nonce`
    std::uint64_t nonce = 0;
    // Ask these to probe `target` (at `target_address`) for us, with `nonce`.
    std::vector<Endpoint> helpers;
    std::string target;
    std::string target_address;
  };
  // This round's probing: the next member to probe, or the helpers for one
  // that did not answer; a member that answered neither is suspected.
  ProbePlan ProbeRound(std::uint64_t now, std::mt19937_64& rng);
  // An ack arrived. Returns the requester and its nonce when it answers a
  // probe we made for someone else.
  std::optional<std::pair<std::string, std::uint64_t>> Acked(std::uint64_t nonce);
  // A member asked us to probe `target`: the nonce for our probe of it.
  std::uint64_t ProbeFor(const std::string& requester, std::uint64_t their_nonce,
                         std::uint64_t now);
  // Whether we see `name` as suspected or dead while it is talking to us:
  // it should hear so, to refute.
  [[nodiscard]] bool ShouldHearItsEntry(const std::string& name) const;
  [[nodiscard]] std::uint64_t suspected() const { return suspected_; }
  [[nodiscard]] std::uint64_t refuted() const { return refuted_; }

  // Removes a member an operator declared gone for good: it must be dead or
  // left. Its entries up to its current generation are ignored from now on
  // (and by every node this one gossips with); a process of that name with
  // a greater generation joins as a new member.
  Status Forget(const std::string& name, std::uint64_t wall_ms);
  // How long a tombstone is kept (and gossiped): a node cut off for longer
  // may bring the forgotten member back as a dead one, to be forgotten again.
  static constexpr std::uint64_t kTombstoneMs = 7ULL * 24 * 3600 * 1000;
  // A member that left gracefully is forgotten this long after it left.
  static constexpr std::uint64_t kForgetLeftAfterMs = 3600ULL * 1000;
  [[nodiscard]] std::size_t forgotten() const { return forgotten_.size(); }

  [[nodiscard]] const std::map<std::string, Member>& members() const { return members_; }
  [[nodiscard]] bool empty() const { return members_.empty(); }
  [[nodiscard]] bool contains(const std::string& name) const { return members_.contains(name); }
  [[nodiscard]] std::optional<Endpoint> EndpointOf(const std::string& name) const;
  // Whether a member (in any state) has this address.
  [[nodiscard]] bool KnowsAddress(std::string_view address) const;
  // Names of the members that are alive or suspected, and of the dead ones.
  [[nodiscard]] std::vector<std::string> Live() const;
  [[nodiscard]] std::vector<std::string> Dead() const;
  // Whether `name` is a member whose buffer progress counts (not dead or left).
  [[nodiscard]] bool Counts(const std::string& name) const;

  // Whether this node knows whom "all" and "majority" count: it has heard of
  // members (by gossip, or from its store after a restart), or it has no
  // seed to learn them from. A node that just lost its data directory knows
  // nobody yet and must not call itself a majority.
  [[nodiscard]] bool Known() const;
  // Peer acknowledgements a write needs beyond our own (counting the members
  // known now: a member learned meanwhile raises what "all" needs; and never
  // fewer than the replicas the cluster is deployed with).
  [[nodiscard]] std::size_t AcksNeeded(WriteConsistency consistency) const;

  // How far the cluster's clock is ahead of ours: the median of the offsets
  // of the live members that told us their clock lately, and ours (0). With
  // an even count, the middle value nearer to ours: two clocks that disagree
  // do not say which one is wrong. A minority of wrong clocks, fast or slow,
  // cannot move it.
  [[nodiscard]] std::int64_t ClusterClockOffsetMs(std::uint64_t now) const;

 private:
  // What we last heard from a node (member or not).
  struct Contact {
    std::uint64_t last_heard_ms = 0;
    // Their wall clock minus ours, from their last message that gave it, and
    // when (local time; 0: never).
    std::int64_t clock_offset_ms = 0;
    std::uint64_t clock_sampled_ms = 0;
    // Its last gossip carried a whole list as its regime (a small view of
    // the cluster, judging liveness by heartbeats): it gets whole lists too.
    bool sends_whole = false;
  };

  struct Tombstone {
    std::uint64_t generation = 0;
    std::uint64_t wall_ms = 0;
  };

  // Joins one entry of a member (not this node).
  void MergeEntry(const std::string& name, wire::Member::Reader e, std::uint64_t now);
  // Joins what a peer says of this node: a suspicion is refuted.
  void MergeSelf(wire::Member::Reader e);
  // Large clusters: `name` changed in a way every member should learn.
  void Changed(const std::string& name);
  void FillEntry(wire::Member::Builder out, const std::string& name, const Member& m) const;
  // Suspects `name` (large clusters), unless already suspected or dead.
  void Suspect(const std::string& name, std::uint64_t now);
  // Whether there are too many members for whole lists in every message
  // (the regime the next UpdateStates takes).
  [[nodiscard]] bool Large() const { return members_.size() > options_.members_per_message; }
  // The suspicion timeout for large clusters.
  [[nodiscard]] std::uint64_t SuspicionTimeoutMs() const;
  // How many messages carry a change (large clusters).
  [[nodiscard]] std::uint32_t RetransmitLimit() const;
  // Moves between the regimes when the member count crosses K.
  void SwitchRegime(std::uint64_t now);

  // Remembers a member for the next process (best effort: a failed write
  // only means a restart learns it again by gossip).
  void Persist(const std::string& name, const Member& m);
  // Records a tombstone and drops the member it covers; true if it did.
  bool Bury(const std::string& name, Tombstone tombstone);

  const NodeOptions& options_;
  storage::Store& store_;
  std::uint64_t generation_ = 0;
  std::uint64_t incarnation_ = 0;
  std::uint64_t heartbeat_ = 0;
  bool left_ = false;
  std::map<std::string, Member> members_;
  std::map<std::string, Contact> contacts_;
  std::map<std::string, Tombstone> forgotten_;
  bool large_ = false;           // the regime of the last UpdateStates
  std::uint64_t suspected_ = 0;  // NodeStats::members_suspected
  std::uint64_t refuted_ = 0;    // NodeStats::suspicions_refuted
  // Large clusters: members whose change is still being spread, and how
  // many messages carried it so far.
  std::map<std::string, std::uint32_t> changes_;
  // Large clusters: the probe in progress, the round-robin order, and the
  // probes we make for others.
  struct Probe {
    std::string target;
    std::uint64_t nonce = 0;
    std::uint64_t generation = 0;  // of the target when probed
    std::uint64_t incarnation = 0;
    std::uint64_t sent_ms = 0;
    bool acked = false;
    bool helpers_asked = false;
  };
  std::optional<Probe> probe_;
  std::vector<std::string> probe_order_;
  std::size_t probe_next_ = 0;
  std::uint64_t next_nonce_ = 0;
  struct Relay {
    std::string requester;
    std::uint64_t nonce = 0;
    std::uint64_t expires_ms = 0;
  };
  std::map<std::uint64_t, Relay> relays_;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_
