// Keys of any size (docs/replication.md, "Keys larger than a message"): a
// state too large for one message is announced instead of sent (its size and
// digest, in anti-entropy and bootstrap; its size, in a delta interval), and
// the side that wants it pulls it chunk by chunk — one chunk in flight per
// state, re-requested after a lost message or a broken connection from where
// the assembly is, started again if the state changed meanwhile. An assembled
// state is checked against its digest and joined like any state from a peer.

#ifndef CONVERGE_REPLICATION_INTERNAL_LARGE_STATES_H_
#define CONVERGE_REPLICATION_INTERNAL_LARGE_STATES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "replication/clock.h"
#include "replication/internal/log.h"
#include "replication/internal/membership.h"
#include "replication/internal/messages.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "storage/store.h"

namespace converge::replication::internal {

class LargeStates {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    // Joins a state pulled from `from` (checked against its digest).
    virtual Status ApplyPulled(const std::string& from, std::string_view key,
                               std::string_view state) = 0;
  };

  LargeStates(const NodeOptions& options, storage::Store& store, const HashTree& tree,
              const Membership& membership, Outbox& outbox, Clock& clock, NodeStats& stats,
              NodeLog& log, Host& host)
      : options_(options),
        store_(store),
        tree_(tree),
        membership_(membership),
        outbox_(outbox),
        clock_(clock),
        stats_(stats),
        log_(log),
        host_(host) {}

  // The most bytes of a state one message carries (the rest of the message
  // — header, key, fields — fits in what is left of max_message_bytes).
  [[nodiscard]] std::size_t chunk_bytes() const;
  // Whether a state (or delta) of `size` bytes for `key` must be pulled in
  // chunks rather than sent in a message with others.
  [[nodiscard]] bool TooLarge(std::string_view key, std::size_t size) const {
    return key.size() + size + 64 > chunk_bytes();
  }

  // Receiving side: `from` holds a state of `key` too large for a message
  // (`digest` 0: not known yet). Starts pulling it unless we hold that very
  // state, or pull it already.
  void Want(const std::string& from, std::string_view key, std::uint64_t size,
            std::uint64_t digest);
  void OnChunk(const std::string& from, wire::StateChunk::Reader chunk);
  // Sending side.
  void OnRequest(const std::string& from, wire::ChunkRequest::Reader request);

  // Each round: chunks not answered in time are asked for again; a pull
  // that keeps failing is given up (the next anti-entropy session announces
  // the state again).
  void Round(std::uint64_t now);
  void Forget(const std::string& peer);

 private:
  struct Assembly {
    std::uint64_t digest = 0;  // 0: not known yet
    std::uint64_t size = 0;
    std::string data;
    std::uint64_t requested_ms = 0;
    int retries = 0;
  };
  struct Served {
    std::uint64_t digest = 0;
    std::shared_ptr<const std::string> state;
    std::uint64_t used_ms = 0;
  };

  void Request(const std::string& from, const std::string& key, Assembly& a);
  void Give(const std::string& to, const std::string& key, std::uint64_t digest, std::uint64_t size,
            std::uint64_t offset, std::string_view bytes);
  // Our state of `key` as last read for serving (nullptr: none).
  std::shared_ptr<const std::string> Serve(const std::string& key, std::uint64_t* digest);
  [[nodiscard]] std::size_t assembling_bytes() const;

  const NodeOptions& options_;
  storage::Store& store_;
  const HashTree& tree_;
  const Membership& membership_;
  Outbox& outbox_;
  Clock& clock_;
  NodeStats& stats_;
  NodeLog& log_;
  Host& host_;
  std::map<std::pair<std::string, std::string>, Assembly> assemblies_;  // (peer, key)
  std::map<std::string, Served> served_;                                // key
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_LARGE_STATES_H_
