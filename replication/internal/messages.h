// Building and sending the node's messages (replication/protocol.capnp).

#ifndef CONVERGE_REPLICATION_INTERNAL_MESSAGES_H_
#define CONVERGE_REPLICATION_INTERNAL_MESSAGES_H_

#include <capnp/message.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "replication/clock.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "replication/transport.h"

namespace converge::replication::internal {

inline constexpr std::uint16_t kProtocolVersion = 1;

inline capnp::Data::Reader AsData(std::string_view bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

inline std::string_view AsView(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

inline std::string AsString(capnp::Data::Reader data) { return std::string(AsView(data)); }

// The packed encoding of a message (the frame a transport carries).
std::string Pack(capnp::MessageBuilder& builder);

class Membership;

// Where every message leaves the node: the header (protocol version, cluster,
// the sender's generation and wall clock), the byte counters, the transport.
class Outbox {
 public:
  Outbox(const NodeOptions& options, const Membership& membership, Transport& transport,
         Clock& clock, NodeStats& stats)
      : options_(options),
        membership_(membership),
        transport_(transport),
        clock_(clock),
        stats_(stats) {}

  // The root of a new message, its header filled in.
  wire::Message::Builder Header(capnp::MallocMessageBuilder& builder) const;

  // An anti-entropy message is also counted as such (NodeStats::ae_bytes_sent).
  enum class Kind { kOther, kAntiEntropy };
  void Send(const Endpoint& to, capnp::MallocMessageBuilder& builder, Kind kind = Kind::kOther);
  // Called for a message that would pass max_message_bytes (not sent).
  void set_oversized(std::function<void(const std::string& to, std::size_t bytes)> fn) {
    oversized_ = std::move(fn);
  }
  // The pruning level every message carries (Message.pruneLevel).
  void set_prune_level(std::uint64_t level) { prune_level_ = level; }

  // To a member by name; nothing when it is not a member.
  void SendToMember(const std::string& name, capnp::MallocMessageBuilder& builder,
                    Kind kind = Kind::kOther);

 private:
  const NodeOptions& options_;
  const Membership& membership_;
  Transport& transport_;
  Clock& clock_;
  NodeStats& stats_;
  std::function<void(const std::string& to, std::size_t bytes)> oversized_;
  std::uint64_t prune_level_ = 0;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_MESSAGES_H_
