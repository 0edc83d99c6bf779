// Delta intervals (docs/replication.md, "Deltas"): the buffer of deltas this
// node forwards, the intervals it sends from it to each peer with per-peer
// sequence numbers, the acknowledgements that trim it, the intervals it
// receives (applied only in order), and the local writes waiting for
// acknowledgements to reach their consistency level.

#ifndef CONVERGE_REPLICATION_INTERNAL_DELTA_INTERVALS_H_
#define CONVERGE_REPLICATION_INTERNAL_DELTA_INTERVALS_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/internal/apply.h"
#include "replication/internal/large_states.h"
#include "replication/internal/membership.h"
#include "replication/internal/messages.h"
#include "replication/internal/records.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"

namespace converge::replication::internal {

class DeltaIntervals {
 public:
  using DoneFn = std::function<void(StatusOr<std::string>)>;

  // What the intervals need of the node.
  class Host {
   public:
    virtual ~Host() = default;
    // Joins a received interval's entries (and forwards what changed);
    // `refused` receives the indexes of the entries not applied (a
    // timestamp too far ahead, or an entry that does not decode or join);
    // `progress` (StateApplier::Options) commits with the changes. Not ok:
    // nothing applied (the interval is not acknowledged and comes again).
    virtual Status ApplyInterval(const std::string& from, std::span<const RemoteEntry> entries,
                                 std::vector<std::size_t>* refused,
                                 decltype(StateApplier::Options::progress) progress) = 0;
  };

  DeltaIntervals(const NodeOptions& options, const Membership& membership, Outbox& outbox,
                 Clock& clock, NodeStats& stats, LargeStates& large, Host& host)
      : options_(options),
        membership_(membership),
        outbox_(outbox),
        clock_(clock),
        stats_(stats),
        large_(large),
        host_(host) {}

  // Where we were in each peer's buffer before a restart (at start).
  void Restore(const std::vector<records::ProgressRecord>& progress);

  // --- our buffer ---
  // Appends a delta to forward; returns its buffer sequence. `local`: our
  // own update (its replication latency is measured).
  std::uint64_t Append(const std::string& key, const std::string& delta, std::uint64_t origin,
                       std::uint64_t origin_seq, bool local);
  // The last buffer sequence used (0: none yet).
  [[nodiscard]] std::uint64_t last_seq() const { return next_seq_ - 1; }
  [[nodiscard]] std::size_t entries() const { return buffer_.size(); }
  [[nodiscard]] std::size_t bytes() const { return buffer_bytes_; }
  // Drops entries every live peer acknowledged; beyond the byte cap, drops
  // the oldest anyway (peers behind them are repaired by anti-entropy).
  void Trim();

  // Sends `name` the entries it has not acknowledged, up to the message cap
  // (or marks it for anti-entropy when it is behind what we still hold).
  void SendTo(const std::string& name);

  // --- messages in ---
  void OnDeltas(const std::string& from, std::uint64_t generation,
                wire::DeltaInterval::Reader interval);
  void OnAck(const std::string& from, wire::DeltaAck::Reader ack);
  // A gossip message from `from`'s process `generation`: a new process
  // restarts its buffer, and its state may have been lost or rolled back.
  // True if it is a process we had not heard from.
  bool OnGossip(const std::string& from, std::uint64_t generation);

  // --- anti-entropy's part ---
  [[nodiscard]] bool NeedsAe(const std::string& name) { return peers_[name].needs_ae; }
  // An anti-entropy session with `name` ended with equal roots: it holds
  // everything we held up to buffer entry `start_seq`.
  void InSync(const std::string& name, std::uint64_t start_seq);

  // --- writes waiting for confirmations ---
  // A committed write (buffer entry `buffer_seq`) waiting for `consistency`.
  void Wait(std::uint64_t buffer_seq, WriteConsistency consistency, DoneFn done, std::string delta);
  // Every waiting write learns that its confirmations will not come.
  void FailWaits(const Status& status);

  // A member was forgotten: its progress goes, and writes waiting for it
  // count without it (the members left may now be enough).
  void Forget(const std::string& name);

  // Rewrites the buffered deltas key by key (pruning renames them with the
  // plan of the key's state): fn gets every buffered delta of one key, in
  // place; `then` runs once fn succeeded for every key, before the buffer
  // changes. All or nothing: when fn or `then` fails, the buffer is as it was.
  using RewriteFn = std::function<Status(const std::string& key, std::span<std::string> deltas)>;
  Status Rewrite(const RewriteFn& fn, const std::function<Status()>& then);

  // --- introspection ---
  [[nodiscard]] std::uint64_t acked(const std::string& name) const;

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
  // A peer's delta progress, both ways.
  struct Peer {
    // Their delta buffer, as we receive it.
    std::uint64_t their_generation = 0;
    std::uint64_t expected = 1;  // next entry of theirs we may apply
    // Entries of theirs we refused (a timestamp too far ahead, or one we
    // cannot decode or join) lately, with when: every acknowledgement
    // repeats them, so that losing one ack cannot make a refused write count
    // as held.
    std::deque<std::pair<std::uint64_t, std::uint64_t>> refused;
    // Our delta buffer, as they acknowledge it.
    std::uint64_t acked = 0;
    bool send_resync = false;  // next interval tells them to skip to its start
    bool needs_ae = false;     // behind our trimmed buffer, or restarted
  };
  struct PendingWrite {
    WriteConsistency consistency = WriteConsistency::kLocal;
    std::set<std::string> acked_by;
    std::set<std::string> refused_by;  // did not apply it
    DoneFn done;
    std::string delta;
    Clock::TimerId timer = 0;
  };

  [[nodiscard]] std::uint64_t Front() const {
    return buffer_.empty() ? next_seq_ : buffer_.front().seq;
  }
  void ObserveReplication(std::uint64_t ms);
  void SendAck(const std::string& name, std::uint64_t generation, std::uint64_t up_to, bool gap,
               const std::vector<std::uint64_t>& refused = {});
  // `from` durably holds every update of ours up to buffer entry `up_to`:
  // writes waiting for that many confirmations are done.
  void Confirm(const std::string& from, std::uint64_t up_to);

  const NodeOptions& options_;
  const Membership& membership_;
  Outbox& outbox_;
  Clock& clock_;
  NodeStats& stats_;
  LargeStates& large_;
  Host& host_;
  std::deque<BufferEntry> buffer_;
  std::uint64_t next_seq_ = 1;
  std::size_t buffer_bytes_ = 0;
  std::map<std::string, Peer> peers_;
  std::map<std::uint64_t, PendingWrite> waits_;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_DELTA_INTERVALS_H_
