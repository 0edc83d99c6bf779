// Membership: who the cluster's members are, whether they are alive, and what
// majority and all count (docs/replication.md, "Membership").
//
// Members are learned by gossip (a member's entry with the greater
// (generation, heartbeat) wins), remembered in the store for the next process
// (records::PutMember), suspected and then declared dead when their heartbeat
// stops growing, and marked left when they leave gracefully. The node's own
// entry — its generation and heartbeat — is kept here too.

#ifndef CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_
#define CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_

#include <cstdint>
#include <map>
#include <optional>
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
  std::uint64_t heartbeat = 0;
  bool left = false;
  std::uint64_t replica = 0;
  std::uint64_t last_change_ms = 0;  // local time the heartbeat last grew
  MemberState state = MemberState::kAlive;
};

class Membership {
 public:
  Membership(const NodeOptions& options, storage::Store& store)
      : options_(options), store_(store) {}

  // --- this node's own entry ---
  [[nodiscard]] std::uint64_t generation() const { return generation_; }
  void set_generation(std::uint64_t generation) { generation_ = generation; }
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
  // Joins the member entries and forgotten members of a gossip message
  // (persisting new members, changed addresses and generations, and
  // tombstones).
  Merged Merge(wire::Gossip::Reader gossip, std::uint64_t now);
  // Fills a gossip message's member list (this node first, then every
  // member) and forgotten members.
  void Fill(wire::Gossip::Builder gossip, std::uint64_t replica) const;

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
  };

  struct Tombstone {
    std::uint64_t generation = 0;
    std::uint64_t wall_ms = 0;
  };

  // Remembers a member for the next process (best effort: a failed write
  // only means a restart learns it again by gossip).
  void Persist(const std::string& name, const Member& m);
  // Records a tombstone and drops the member it covers; true if it did.
  bool Bury(const std::string& name, Tombstone tombstone);

  const NodeOptions& options_;
  storage::Store& store_;
  std::uint64_t generation_ = 0;
  std::uint64_t heartbeat_ = 0;
  bool left_ = false;
  std::map<std::string, Member> members_;
  std::map<std::string, Contact> contacts_;
  std::map<std::string, Tombstone> forgotten_;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_MEMBERSHIP_H_
