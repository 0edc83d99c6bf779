// Anti-entropy sessions (docs/replication.md, "Anti-entropy"): two nodes
// compare their digest trees top-down and exchange the states that differ;
// a node that started with an empty store catches up by streaming a peer's
// states in key order instead. One session per peer at a time, started by
// the rounds; a session that ends with equal roots tells the delta intervals
// that the peer holds everything we held when it started.

#ifndef CONVERGE_REPLICATION_INTERNAL_ANTI_ENTROPY_H_
#define CONVERGE_REPLICATION_INTERNAL_ANTI_ENTROPY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/hash_tree.h"
#include "replication/internal/apply.h"
#include "replication/internal/large_states.h"
#include "replication/internal/membership.h"
#include "replication/internal/messages.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "storage/store.h"

namespace converge::replication::internal {

class AntiEntropy {
 public:
  // What the sessions need of the node.
  class Host {
   public:
    virtual ~Host() = default;
    // Joins states a peer sent (not forwarded: every peer repairs itself).
    // Not ok: nothing applied (they are asked again later).
    virtual Status ApplyStates(const std::string& from, std::span<const RemoteEntry> states) = 0;
    // A session we started with `peer` ended with equal roots: it holds
    // everything we held at buffer entry `start_seq`.
    virtual void InSync(const std::string& peer, std::uint64_t start_seq) = 0;
    // Whether our delta buffer no longer holds what `peer` lacks.
    virtual bool NeedsAe(const std::string& peer) = 0;
    // Our last delta buffer entry.
    [[nodiscard]] virtual std::uint64_t buffer_end() const = 0;
    [[nodiscard]] virtual bool running() const = 0;
  };

  AntiEntropy(const NodeOptions& options, storage::Store& store, const HashTree& tree,
              const Membership& membership, Outbox& outbox, Clock& clock, std::mt19937_64& rng,
              NodeStats& stats, LargeStates& large, Host& host)
      : options_(options),
        store_(store),
        tree_(tree),
        membership_(membership),
        outbox_(outbox),
        clock_(clock),
        rng_(rng),
        stats_(stats),
        large_(large),
        host_(host) {}

  // At start: an empty store catches up by streaming from one peer (in key
  // order: sequential reads there, sequential writes here) before comparing
  // trees.
  void set_bootstrap(bool empty) { want_stream_ = empty; }
  // A member was forgotten: no session with it goes on.
  void Forget(const std::string& name) {
    sessions_.erase(name);
    if (stream_peer_ == name) stream_peer_.clear();
  }
  // Compares trees from now on, also if the stream had not ended (the
  // store changed under it: it reopened after a disk error).
  void StopStreaming() {
    want_stream_ = false;
    stream_peer_.clear();
    touched_while_streaming_.clear();
  }

  // The round's session: with one of the `live` members that needs one,
  // else a random one (`start`: a random number), skipping those whose
  // session is still in flight.
  void Round(const std::vector<std::string>& live, std::uint64_t now, std::uint64_t start);

  void OnNodes(const std::string& from, wire::AeNodes::Reader msg);
  void OnLeaves(const std::string& from, wire::AeLeaves::Reader msg);
  void OnStates(const std::string& from, wire::AeStates::Reader msg);

  // --- what applying states needs to know about a bootstrap ---
  // A local write to `key` (not in a peer's stream).
  void Touched(const std::string& key) {
    if (want_stream_) touched_while_streaming_.insert(key);
  }
  // States that changed ours (after they were applied).
  void Changed(std::span<const Applied::Change> changes) {
    if (!want_stream_ || stream_floor_) return;
    for (const Applied::Change& change : changes) touched_while_streaming_.emplace(change.key);
  }
  // Whether `key` is known not to be in the store: while a streamed message
  // is applied, a key past the stream's previous end that nothing else wrote
  // since we started empty.
  [[nodiscard]] bool KnownAbsent(std::string_view key) const {
    return stream_floor_ && key > *stream_floor_ &&
           !touched_while_streaming_.contains(std::string(key));
  }

 private:
  struct Session {
    std::uint64_t id = 0;  // 0: none
    std::uint64_t started_ms = 0;
    std::uint64_t start_seq = 0;  // our buffer end when it started
    bool moved_state = false;     // states they sent in it changed ours
    bool in_sync = false;         // they answered it: our roots are equal
  };
  // A state to send; one too large for a message is announced instead
  // (`state` empty, its size and digest given) and pulled in chunks.
  struct OutState {
    std::string key;
    std::string state;
    std::uint64_t size = 0;
    std::uint64_t digest = 0;
  };
  using States = std::vector<OutState>;

  bool InFlight(const std::string& name, std::uint64_t now);
  void Start(const std::string& name);
  // The initiator's session ends (done, or the states exchange finished).
  void End(const std::string& name, std::uint64_t session);
  void Send(const std::string& name, capnp::MallocMessageBuilder& builder);
  void StreamStates(const std::string& to, std::uint64_t session, const std::string& after);
  // Our (key, digest) pairs in `leaf`.
  std::vector<std::pair<std::string, std::uint64_t>> LeafKeys(std::uint32_t leaf);
  void SendLeaves(const std::string& to, std::uint64_t session,
                  const std::vector<std::uint32_t>& leaves);
  void PushLeafRanges(const std::string& to, std::uint64_t session,
                      const std::vector<std::pair<std::uint32_t, std::uint32_t>>& ranges);
  bool AddState(std::string& key, std::string& state, States* states, std::size_t* bytes) const;
  static void PutStates(wire::AeStates::Builder ae, const States& states);
  void SendStates(const std::string& to, std::uint64_t session,
                  const std::vector<std::string>& push, const std::vector<std::string>& pull);
  void SendStates(const std::string& to, std::uint64_t session, States states,
                  const std::vector<std::string>& pull);

  const NodeOptions& options_;
  storage::Store& store_;
  const HashTree& tree_;
  const Membership& membership_;
  Outbox& outbox_;
  Clock& clock_;
  std::mt19937_64& rng_;
  NodeStats& stats_;
  LargeStates& large_;
  Host& host_;
  std::map<std::string, Session> sessions_;
  bool want_stream_ = false;  // catching up by streaming (started empty)
  std::string stream_peer_;   // ... from this peer
  std::string stream_after_;  // ... after this key
  // While a streamed message is applied: the stream's end before it. Keys
  // past it that nothing else wrote since we started empty are not in the
  // store.
  std::optional<std::string> stream_floor_;
  std::set<std::string> touched_while_streaming_;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_ANTI_ENTROPY_H_
