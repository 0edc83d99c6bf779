// Transport: moves frames between named nodes of one cluster.
//
// A frame is one encoded protocol message (replication/protocol.capnp); the
// transport adds its own length prefix on the wire, authenticates the peer
// (TCP: mutual TLS, the certificate's common name is the node name) and
// delivers whole frames. Delivery is best effort: frames may be lost,
// delayed, duplicated or reordered (the simulated network does all four on
// purpose); the node's protocols tolerate that.
//
// Implementations: TcpTransport (replication/tcp_transport.h) and the
// simulated network's transport (replication/sim/). The same Node runs on
// both.
//
// Threading: Send may be called only from the node's executor; the frame
// handler is invoked on the node's executor (through Clock::Post).

#ifndef CONVERGE_REPLICATION_TRANSPORT_H_
#define CONVERGE_REPLICATION_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace converge::replication {

// Where a peer listens: "host:port" for TCP, a name in the simulator.
struct Endpoint {
  std::string name;     // the peer's node name (unique in the cluster)
  std::string address;  // how to reach it

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct TransportStats {
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_dropped = 0;      // send queue full, peer unreachable, cut link
  std::uint64_t peers_disconnected = 0;  // misbehaving or timed-out peers cut off
};

class Transport {
 public:
  // from: the authenticated name of the sending node.
  using FrameHandler = std::function<void(const std::string& from, std::string frame)>;

  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport() = default;

  // Starts accepting frames; `handler` runs on the node's executor.
  virtual void Start(FrameHandler handler) = 0;
  // Queues `frame` for `to`; never blocks. Frames over the size limit and
  // frames to a peer whose queue is full are dropped (and counted).
  virtual void Send(const Endpoint& to, std::string frame) = 0;
  // Closes every connection; no handler runs after Stop returns.
  virtual void Stop() = 0;

  // Fault injection (the cart's /admin/partition): while a peer is blocked,
  // frames to and from it are dropped.
  virtual void Block(const std::string& peer) = 0;
  virtual void UnblockAll() = 0;

  [[nodiscard]] virtual TransportStats stats() const = 0;
  // The largest frame Send accepts.
  [[nodiscard]] virtual std::size_t max_frame_bytes() const = 0;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_TRANSPORT_H_
