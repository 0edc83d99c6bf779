// TcpTransport: the node's Transport over TCP with mutual TLS.
//
// Every connection carries length-prefixed frames (4-byte big-endian length,
// then the payload; docs/replication.md, "TCP transport"). After the TLS
// handshake each side sends a hello (magic, version, cluster, node name) and
// checks the other's; only then are frames exchanged:
//   - the peer's certificate must chain to our CA (ca_file), both ways
//     (verify_peer | verify_fail_if_no_peer_cert), and carry the
//     serverAuth/clientAuth extended key usages scripts/make-certs gives;
//   - the certificate's common name is the peer's node name: a hello naming
//     anyone else, or another cluster, closes the connection before any
//     frame is read, and frames are delivered with `from` = that name.
// Plaintext is allowed only with insecure_loopback, and only when every
// address listened on or connected to is a loopback address.
//
// Limits (TcpTransportOptions): frame size (a larger length prefix
// disconnects the peer before anything is allocated for it), connections,
// bytes queued per connection (frames beyond are dropped and counted; a
// write that does not finish within write_timeout_ms disconnects the peer),
// the handshake (TCP, TLS and hello within handshake_timeout_ms), idle
// connections (no complete frame either way for idle_timeout_ms) and slow
// frames (a frame must arrive whole within frame_read_timeout_ms of its first
// byte: a peer trickling bytes is cut off). A misbehaving or stalled peer is
// disconnected; the others are unaffected.
//
// Connections: Send(to) uses an established connection with the peer named
// to.name if there is one (either direction), else dials to.address (an empty
// to.name, as for seeds, learns the name from the peer's hello) and queues
// the frame until the handshake completes. A failed dial backs off
// exponentially (reconnect_backoff_*); frames sent meanwhile are dropped.
//
// Threading: every public member may be called from any thread. Socket work
// runs on a strand of the io_context; frames are handed to the handler
// through clock.Post, so they run on the node's executor. Stop() (and the
// destructor) may run on the node's executor or anywhere else: once it
// returns no handler runs and the clock is no longer used.
//
// Lifetime: the io_context must outlive the transport; the clock must
// outlive Stop(). Queued frames get up to stop_linger_ms to be written after
// Stop (a graceful leave's last gossip), if the io_context still runs.

#ifndef CONVERGE_REPLICATION_TCP_TRANSPORT_H_
#define CONVERGE_REPLICATION_TCP_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "crdt/codec/status.h"
#include "replication/asio.h"
#include "replication/clock.h"
#include "replication/transport.h"

namespace converge::replication {

struct TcpTransportOptions {
  std::string name;                  // this node: our certificate's common name
  std::string cluster = "converge";  // peers of another cluster are refused
  std::string listen;                // "host:port" or "[v6]:port"; port 0 picks one

  // Mutual TLS: PEM files (scripts/make-certs makes them).
  std::string ca_file;    // the cluster's CA: peers' certificates must chain to it
  std::string cert_file;  // our certificate (chain), common name = name
  std::string key_file;   // its private key
  // Plaintext, for tests and demos only: refused unless set AND every
  // listen/connect address is loopback (127.0.0.0/8, ::1).
  bool insecure_loopback = false;

  std::size_t max_frame_bytes = std::size_t{4} << 20;
  std::size_t max_connections = 256;                         // inbound + outbound; more are refused
  std::size_t max_send_queue_bytes = std::size_t{16} << 20;  // per connection
  // Frames received but not yet handled by the node, per connection: reading
  // pauses beyond it (at least one frame is always let through).
  std::size_t max_receive_backlog_bytes = std::size_t{16} << 20;
  std::uint64_t handshake_timeout_ms = 5'000;    // TCP connect + TLS + hello
  std::uint64_t idle_timeout_ms = 60'000;        // no complete frame, either way
  std::uint64_t frame_read_timeout_ms = 10'000;  // first byte of a frame to its last
  std::uint64_t write_timeout_ms = 10'000;       // one socket write to complete
  std::uint64_t reconnect_backoff_min_ms = 100;
  std::uint64_t reconnect_backoff_max_ms = 5'000;
  std::uint64_t stop_linger_ms = 500;

  // Diagnostics (rejected peers, timeouts, dial failures); called on the
  // transport's strand. Empty: silent (the counters still count).
  std::function<void(const std::string& line)> log;
};

// stats() plus the transport's own counters. Monotonic unless noted.
struct TcpTransportStats : TransportStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_dialed = 0;
  std::uint64_t connections_refused = 0;      // over max_connections
  std::uint64_t connections_open = 0;         // now (gauge)
  std::uint64_t connections_established = 0;  // now, past the hello (gauge)
  std::uint64_t dial_failures = 0;            // TCP connect failed or refused
  std::uint64_t tls_failures = 0;             // TLS handshake failed (bad certificate, plaintext)
  std::uint64_t hellos_rejected = 0;          // malformed hello, other cluster, name != certificate
  std::uint64_t frames_oversized = 0;
  std::uint64_t frames_blocked = 0;  // dropped by Block (also in frames_dropped)
  std::uint64_t handshake_timeouts = 0;
  std::uint64_t frame_timeouts = 0;
  std::uint64_t idle_timeouts = 0;
  std::uint64_t write_timeouts = 0;
  std::uint64_t send_queue_peak_bytes = 0;  // the largest queue of any connection
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(asio::io_context& io, Clock& clock, TcpTransportOptions options);
  ~TcpTransport() override;

  // Checks the options, loads the TLS material and binds the listening
  // socket. Start calls it when it was not called; call it first to learn
  // about errors (InvalidArgument for bad options, IoError for files and
  // sockets). Not thread-safe with Start.
  [[nodiscard]] Status Open();
  // The address actually bound ("127.0.0.1:40123"), after a successful Open.
  [[nodiscard]] std::string local_address() const;
  // Why the transport is not running: Open's error, if Start could not open.
  [[nodiscard]] Status status() const;

  void Start(FrameHandler handler) override;
  void Send(const Endpoint& to, std::string frame) override;
  void Stop() override;
  void Block(const std::string& peer) override;
  void UnblockAll() override;
  [[nodiscard]] TransportStats stats() const override;
  [[nodiscard]] TcpTransportStats tcp_stats() const;
  [[nodiscard]] std::size_t max_frame_bytes() const override;

  class Core;  // shared with the connections, which may outlive the transport

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_TCP_TRANSPORT_H_
