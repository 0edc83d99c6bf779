#include "replication/internal/messages.h"

#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <utility>

#include "replication/internal/membership.h"

namespace converge::replication::internal {

std::string Pack(capnp::MessageBuilder& builder) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, builder);
  const kj::ArrayPtr<kj::byte> bytes = out.getArray();
  return {reinterpret_cast<const char*>(bytes.begin()), bytes.size()};
}

wire::Message::Builder Outbox::Header(capnp::MallocMessageBuilder& builder) const {
  auto msg = builder.initRoot<wire::Message>();
  msg.setVersion(kProtocolVersion);
  msg.setCluster(options_.cluster);
  msg.setGeneration(membership_.generation());
  msg.setWallMs(clock_.WallMs());
  msg.setPruneLevel(prune_level_);
  return msg;
}

void Outbox::Send(const Endpoint& to, capnp::MallocMessageBuilder& builder, Kind kind) {
  std::string frame = Pack(builder);
  if (frame.size() > options_.max_message_bytes) {
    // Every protocol keeps its messages under the cap (large states travel
    // in chunks): this is a bug. Not sent — the transport would drop it.
    ++stats_.messages_oversized;
    if (oversized_) oversized_(to.name, frame.size());
    return;
  }
  if (kind == Kind::kAntiEntropy) stats_.ae_bytes_sent += frame.size();
  stats_.bytes_sent += frame.size();
  transport_.Send(to, std::move(frame));
}

void Outbox::SendToMember(const std::string& name, capnp::MallocMessageBuilder& builder,
                          Kind kind) {
  if (const std::optional<Endpoint> to = membership_.EndpointOf(name)) Send(*to, builder, kind);
}

}  // namespace converge::replication::internal
