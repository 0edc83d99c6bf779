// TcpTransport: see tcp_transport.h for the contract and docs/replication.md
// ("TCP transport") for the wire format and limits.
//
// Structure: one Core per transport, shared with its connections (Session).
// Everything that touches sockets or the Core's maps runs on one strand, so
// none of it needs a lock; the public calls post onto it. Each Session runs
// three coroutines on that strand — the handshake and read loop (Main), the
// writer, and a watchdog that closes the connection when its earliest
// deadline (handshake, frame, idle, write, linger) passes. The coroutines
// hold the Session (shared_from_this); the Core only points at live ones.
//
// The gate: frames reach the node through Clock::Post. A recursive mutex and
// a stopped flag, shared with every posted delivery, make Stop() final — no
// delivery is posted once it is set, and a delivery already posted checks it
// before running the handler.

#include "replication/tcp_transport.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "replication/internal/tcp_wire.h"

namespace converge::replication {
namespace {

using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Strand = asio::strand<asio::io_context::executor_type>;
template <class T>
using Awaitable = asio::awaitable<T>;

constexpr TimePoint kNever = TimePoint::max();
constexpr std::size_t kReadChunkBytes = std::size_t{32} << 10;
constexpr std::size_t kWriteBatchBytes = std::size_t{256} << 10;

// now + ms; 0 means "no limit".
TimePoint After(std::uint64_t ms) {
  if (ms == 0 || ms > (std::uint64_t{1} << 40)) return kNever;
  return SteadyClock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

bool IsLoopback(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().is_loopback();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).is_loopback();
  return v6.is_loopback();
}

std::string Format(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  std::string host = address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

void AtomicMax(std::atomic<std::uint64_t>& target, std::uint64_t value) {
  std::uint64_t current = target.load(std::memory_order_relaxed);
  while (value > current &&
         !target.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
  }
}

// The single common name of the peer's (verified) certificate; empty when it
// has none, several, or one with an embedded NUL.
std::string PeerCommonName(SSL* ssl) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), &X509_free);
  if (cert == nullptr) return {};
  return [&]() -> std::string {
    X509_NAME* subject = X509_get_subject_name(cert.get());
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) return {};
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    const int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) return {};
    std::string name(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    if (name.find('\0') != std::string::npos) return {};
    return name;
  }();
}

std::string OwnCommonName(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return {};
  X509_NAME* subject = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return {};
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

enum class CloseReason {
  kPeerClosed,
  kIoError,
  kDialFailed,
  kRefused,  // an address we may not or cannot connect to
  kTlsFailed,
  kHelloRejected,
  kOversized,
  kHandshakeTimeout,
  kFrameTimeout,
  kIdleTimeout,
  kWriteTimeout,
  kSelf,  // we dialled ourselves
  kStopped,
};

std::string_view ReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeerClosed:
      return "closed by peer";
    case CloseReason::kIoError:
      return "i/o error";
    case CloseReason::kDialFailed:
      return "dial failed";
    case CloseReason::kRefused:
      return "refused";
    case CloseReason::kTlsFailed:
      return "TLS handshake failed";
    case CloseReason::kHelloRejected:
      return "hello rejected";
    case CloseReason::kOversized:
      return "oversized frame";
    case CloseReason::kHandshakeTimeout:
      return "handshake timeout";
    case CloseReason::kFrameTimeout:
      return "frame read timeout";
    case CloseReason::kIdleTimeout:
      return "idle timeout";
    case CloseReason::kWriteTimeout:
      return "write timeout";
    case CloseReason::kSelf:
      return "connected to self";
    case CloseReason::kStopped:
      return "stopped";
  }
  return "closed";
}

// Reasons that mean the peer misbehaved or stalled (peers_disconnected).
bool Misbehaving(CloseReason reason) {
  switch (reason) {
    case CloseReason::kTlsFailed:
    case CloseReason::kHelloRejected:
    case CloseReason::kOversized:
    case CloseReason::kHandshakeTimeout:
    case CloseReason::kFrameTimeout:
    case CloseReason::kWriteTimeout:
      return true;
    default:
      return false;
  }
}

struct Counters {
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> frames_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> frames_dropped{0};
  std::atomic<std::uint64_t> peers_disconnected{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_dialed{0};
  std::atomic<std::uint64_t> connections_refused{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_established{0};
  std::atomic<std::uint64_t> dial_failures{0};
  std::atomic<std::uint64_t> tls_failures{0};
  std::atomic<std::uint64_t> hellos_rejected{0};
  std::atomic<std::uint64_t> frames_oversized{0};
  std::atomic<std::uint64_t> frames_blocked{0};
  std::atomic<std::uint64_t> handshake_timeouts{0};
  std::atomic<std::uint64_t> frame_timeouts{0};
  std::atomic<std::uint64_t> idle_timeouts{0};
  std::atomic<std::uint64_t> write_timeouts{0};
  std::atomic<std::uint64_t> send_queue_peak_bytes{0};
};

void Bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// Shared by the transport and every delivery it posts (see the file comment).
struct Gate {
  std::recursive_mutex mu;
  bool stopped = false;
  Transport::FrameHandler handler;
  Clock* clock = nullptr;
};

class Session;

}  // namespace

class TcpTransport::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::io_context& io, Clock& clock, TcpTransportOptions options)
      : options_(std::move(options)),
        io_(io),
        strand_(asio::make_strand(io)),
        gate_(std::make_shared<Gate>()),
        rng_(std::random_device{}()) {
    gate_->clock = &clock;
  }

  // --- any thread ------------------------------------------------------------

  Status Open();
  void Start(FrameHandler handler);
  void Send(const Endpoint& to, std::string frame);
  void Stop();
  void Block(const std::string& peer) {
    std::lock_guard lock(blocked_mu_);
    blocked_.insert(peer);
    any_blocked_ = true;
  }
  void UnblockAll() {
    std::lock_guard lock(blocked_mu_);
    blocked_.clear();
    any_blocked_ = false;
  }
  bool IsBlocked(const std::string& peer) const {
    if (!any_blocked_.load(std::memory_order_relaxed) || peer.empty()) return false;
    std::lock_guard lock(blocked_mu_);
    return blocked_.contains(peer);
  }
  TcpTransportStats Snapshot() const;
  std::string local_address() const {
    std::lock_guard lock(status_mu_);
    return local_address_;
  }
  Status status() const {
    std::lock_guard lock(status_mu_);
    return status_;
  }

  // --- strand only -----------------------------------------------------------

  const TcpTransportOptions& options() const { return options_; }
  const Strand& strand() const { return strand_; }
  Counters& counters() { return counters_; }
  bool tls() const { return tls_ != nullptr; }
  asio::ssl::context& tls_context() { return *tls_; }
  void Log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  void OnEstablished(Session& session);
  void OnClosed(Session& session, CloseReason reason, const std::string& detail,
                bool was_established);
  // Hands a frame from an established session to the node.
  void Deliver(const std::shared_ptr<Session>& session, std::string frame);
  // An inbound connection finished (or abandoned) its handshake.
  void InboundHandshakeEnded() { --inbound_handshakes_; }

 private:
  static std::string DialKey(const Endpoint& to) { return to.address + '\n' + to.name; }
  void SendOnStrand(const Endpoint& to, std::string wire);
  Session* FindEstablished(const std::string& name);
  Session* Dial(const Endpoint& to);
  void StopOnStrand();
  Awaitable<void> AcceptLoop(std::shared_ptr<Core> self);

  const TcpTransportOptions options_;
  asio::io_context& io_;
  Strand strand_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::optional<tcp::acceptor> acceptor_;
  std::shared_ptr<Gate> gate_;
  Counters counters_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};

  mutable std::mutex blocked_mu_;
  std::set<std::string> blocked_;
  std::atomic<bool> any_blocked_{false};

  mutable std::mutex status_mu_;
  std::string local_address_;
  Status status_;

  // Strand only.
  bool opened_ = false;
  bool stopping_ = false;
  std::map<Session*, std::weak_ptr<Session>> sessions_;
  std::map<std::string, std::vector<Session*>> established_;  // by peer name, oldest first
  std::map<std::string, Session*> dialing_;  // outbound, by DialKey (address, expected name)
  struct Backoff {
    int failures = 0;
    TimePoint next_attempt;
  };
  std::map<std::string, Backoff> backoff_;  // by DialKey
  std::size_t inbound_handshakes_ = 0;
  std::minstd_rand rng_;
};

namespace {

using Core = TcpTransport::Core;

class Session : public std::enable_shared_from_this<Session> {
 public:
  enum class Phase { kConnecting, kTls, kHello, kEstablished, kClosed };

  Session(std::shared_ptr<Core> core, tcp::socket socket, bool outbound, std::string address,
          std::string expected_name)
      : core_(std::move(core)),
        outbound_(outbound),
        address_(std::move(address)),
        expected_name_(std::move(expected_name)),
        watchdog_(core_->strand()),
        write_wake_(core_->strand()),
        read_wake_(core_->strand()),
        read_buffer_(kReadChunkBytes),
        decoder_(internal::kMaxHelloBytes) {
    if (core_->tls()) {
      tls_.emplace(std::move(socket), core_->tls_context());
    } else {
      plain_.emplace(std::move(socket));
    }
    phase_ = outbound_ ? Phase::kConnecting : (tls_ ? Phase::kTls : Phase::kHello);
  }

  void Run() {
    asio::co_spawn(core_->strand(), Main(shared_from_this()), Report());
    asio::co_spawn(core_->strand(), Watchdog(shared_from_this()), Report());
  }

  [[nodiscard]] bool outbound() const { return outbound_; }
  [[nodiscard]] bool established() const { return phase_ == Phase::kEstablished; }
  [[nodiscard]] bool closed() const { return phase_ == Phase::kClosed; }
  [[nodiscard]] bool handshaking() const { return !established() && !closed(); }
  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] const std::string& expected_name() const { return expected_name_; }
  [[nodiscard]] const std::string& peer_name() const { return peer_name_; }
  [[nodiscard]] bool has_queue() const { return !queue_.empty(); }

  // Queues a wire-ready frame (prefix + payload); drops it when the queue is
  // full (at least one frame always fits) or the connection is closed.
  void Enqueue(std::string wire) {
    Counters& c = core_->counters();
    if (closed() || lingering_ ||
        (!queue_.empty() && queue_bytes_ + wire.size() > core_->options().max_send_queue_bytes)) {
      Bump(c.frames_dropped);
      return;
    }
    queue_bytes_ += wire.size();
    AtomicMax(c.send_queue_peak_bytes, queue_bytes_);
    queue_.push_back(std::move(wire));
    write_wake_.cancel();
  }

  // Writes what is queued, then closes; closes anyway at `deadline`.
  void Linger(TimePoint deadline) {
    if (closed()) return;
    lingering_ = true;
    linger_deadline_ = deadline;
    Rearm();
    write_wake_.cancel();
  }

  // The delivery of `bytes` was handled by the node: reading may go on.
  void Handled(std::size_t bytes) {
    backlog_bytes_ -= std::min(backlog_bytes_, bytes);
    read_wake_.cancel();
  }
  void AddBacklog(std::size_t bytes) { backlog_bytes_ += bytes; }

  void Close(CloseReason reason, const std::string& detail) {
    if (closed()) return;
    const bool was_established = established();
    if (!outbound_ && !was_established) core_->InboundHandshakeEnded();
    phase_ = Phase::kClosed;
    error_code ignored;
    Socket().shutdown(tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
    watchdog_.cancel();
    write_wake_.cancel();
    read_wake_.cancel();
    // A write in flight still refers to the queue; the writer drops it.
    if (!write_in_flight_) DropQueue();
    core_->OnClosed(*this, reason, detail, was_established);
  }

 private:
  tcp::socket& Socket() { return tls_ ? tls_->next_layer() : *plain_; }

  // Logs an exception that escaped a coroutine (none should) and closes.
  std::function<void(std::exception_ptr)> Report() {
    return [self = shared_from_this()](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        self->core_->Log(std::string("transport: unexpected exception: ") + ex.what());
      } catch (...) {
        self->core_->Log("transport: unexpected exception");
      }
      self->Close(CloseReason::kIoError, "exception");
    };
  }

  void DropQueue() {
    Bump(core_->counters().frames_dropped, queue_.size());
    queue_.clear();
    queue_bytes_ = 0;
  }

  // --- deadlines --------------------------------------------------------------

  TimePoint Deadline(CloseReason* why) const {
    TimePoint deadline = kNever;
    auto consider = [&](TimePoint t, CloseReason reason) {
      if (t < deadline) {
        deadline = t;
        *why = reason;
      }
    };
    consider(handshake_deadline_, phase_ == Phase::kConnecting ? CloseReason::kDialFailed
                                                               : CloseReason::kHandshakeTimeout);
    consider(frame_deadline_, CloseReason::kFrameTimeout);
    consider(idle_deadline_, CloseReason::kIdleTimeout);
    consider(write_deadline_, CloseReason::kWriteTimeout);
    consider(linger_deadline_, CloseReason::kStopped);
    return deadline;
  }

  // Wakes the watchdog when a deadline moved earlier than it sleeps.
  void Rearm() {
    CloseReason why = CloseReason::kStopped;
    if (Deadline(&why) < watchdog_.expiry()) watchdog_.cancel();
  }

  // `self` keeps the session alive while the coroutine runs (it lives in the
  // coroutine frame).
  Awaitable<void> Watchdog(std::shared_ptr<Session> /*self*/) {
    while (!closed()) {
      CloseReason why = CloseReason::kStopped;
      watchdog_.expires_at(Deadline(&why));
      error_code ec;
      co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (closed()) break;
      if (SteadyClock::now() >= Deadline(&why)) {
        Close(why, why == CloseReason::kDialFailed ? "connect timed out" : "deadline passed");
        break;
      }
    }
  }

  // --- reading ----------------------------------------------------------------

  Awaitable<std::size_t> ReadSome(error_code& ec) {
    const auto buffer = asio::buffer(read_buffer_);
    if (tls_)
      co_return co_await tls_->async_read_some(buffer,
                                               asio::redirect_error(asio::use_awaitable, ec));
    co_return co_await plain_->async_read_some(buffer,
                                               asio::redirect_error(asio::use_awaitable, ec));
  }

  CloseReason ReadErrorReason(const error_code& ec) const {
    if (ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::ssl::error::stream_truncated)
      return CloseReason::kPeerClosed;
    if (!established() && ec.category() == asio::error::get_ssl_category())
      return CloseReason::kTlsFailed;
    return CloseReason::kIoError;
  }

  // Reads until one whole frame is in *frame. false: the session closed.
  Awaitable<bool> ReadFrame(std::string* frame) {
    for (;;) {
      while (!unread_.empty()) {
        const std::uint64_t begun = decoder_.frames_begun();
        const auto result = decoder_.Feed(unread_, frame);
        if (decoder_.frames_begun() != begun) {
          frame_deadline_ = After(core_->options().frame_read_timeout_ms);
          Rearm();
        }
        if (result == internal::FrameDecoder::Result::kOversized) {
          Bump(core_->counters().frames_oversized);
          Close(CloseReason::kOversized,
                "length prefix " + std::to_string(decoder_.announced_length()) + " > limit " +
                    std::to_string(decoder_.max_frame_bytes()));
          co_return false;
        }
        if (result == internal::FrameDecoder::Result::kFrame) {
          frame_deadline_ = kNever;
          co_return true;
        }
      }
      error_code ec;
      const std::size_t n = co_await ReadSome(ec);
      if (closed()) co_return false;
      if (ec) {
        Close(ReadErrorReason(ec), ec.message());
        co_return false;
      }
      Bump(core_->counters().bytes_received, n);
      unread_ = std::string_view(read_buffer_.data(), n);
    }
  }

  // --- writing ----------------------------------------------------------------

  template <class Buffers>
  Awaitable<std::size_t> WriteAll(const Buffers& buffers, error_code& ec) {
    if (tls_)
      co_return co_await asio::async_write(*tls_, buffers,
                                           asio::redirect_error(asio::use_awaitable, ec));
    co_return co_await asio::async_write(*plain_, buffers,
                                         asio::redirect_error(asio::use_awaitable, ec));
  }

  Awaitable<void> Writer(std::shared_ptr<Session> /*self*/) {
    std::string batch;
    while (!closed()) {
      if (!queue_.empty() && core_->IsBlocked(peer_name_)) {
        Bump(core_->counters().frames_blocked, queue_.size());
        DropQueue();
      }
      if (queue_.empty()) {
        if (lingering_) {
          Close(CloseReason::kStopped, "queue written");
          break;
        }
        write_wake_.expires_at(kNever);
        error_code ec;
        co_await write_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      // Small frames go out together, so that TLS makes one record of them.
      std::size_t count = 1;
      std::size_t bytes = queue_.front().size();
      while (count < queue_.size() && bytes + queue_[count].size() <= kWriteBatchBytes) {
        bytes += queue_[count].size();
        ++count;
      }
      asio::const_buffer buffer = asio::buffer(queue_.front());
      if (count > 1) {
        batch.clear();
        for (std::size_t i = 0; i < count; ++i) batch += queue_[i];
        buffer = asio::buffer(batch);
      }
      write_deadline_ = After(core_->options().write_timeout_ms);
      Rearm();
      write_in_flight_ = true;
      error_code ec;
      co_await WriteAll(buffer, ec);
      write_in_flight_ = false;
      write_deadline_ = kNever;
      if (closed()) {
        DropQueue();
        break;
      }
      if (ec) {
        Close(ec == asio::error::broken_pipe || ec == asio::error::connection_reset
                  ? CloseReason::kPeerClosed
                  : CloseReason::kIoError,
              ec.message());
        DropQueue();
        break;
      }
      Counters& c = core_->counters();
      Bump(c.frames_sent, count);
      Bump(c.bytes_sent, bytes);
      for (std::size_t i = 0; i < count; ++i) queue_.pop_front();
      queue_bytes_ -= bytes;
      idle_deadline_ = After(core_->options().idle_timeout_ms);
      if (batch.capacity() > kWriteBatchBytes * 2) batch = std::string();
    }
  }

  // --- the connection ---------------------------------------------------------

  Awaitable<bool> Connect() {
    const auto host_port = internal::ParseHostPort(address_);
    if (!host_port) {
      Close(CloseReason::kRefused, "malformed address");
      co_return false;
    }
    tcp::resolver resolver(core_->strand());
    error_code ec;
    const auto results =
        co_await resolver.async_resolve(host_port->host, std::to_string(host_port->port),
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (closed()) co_return false;
    if (ec) {
      Close(CloseReason::kDialFailed, "resolve: " + ec.message());
      co_return false;
    }
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results) {
      if (core_->tls() || IsLoopback(entry.endpoint().address()))
        endpoints.push_back(entry.endpoint());
    }
    if (endpoints.empty()) {
      Close(CloseReason::kRefused,
            "plaintext (insecure_loopback) connections go only to loopback addresses");
      co_return false;
    }
    co_await asio::async_connect(Socket(), endpoints,
                                 asio::redirect_error(asio::use_awaitable, ec));
    if (closed()) co_return false;
    if (ec) {
      Close(CloseReason::kDialFailed, "connect: " + ec.message());
      co_return false;
    }
    Socket().set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  Awaitable<bool> TlsHandshake() {
    phase_ = Phase::kTls;
    error_code ec;
    co_await tls_->async_handshake(
        outbound_ ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
        asio::redirect_error(asio::use_awaitable, ec));
    if (closed()) co_return false;
    if (ec) {
      Close(CloseReason::kTlsFailed, ec.message());
      co_return false;
    }
    SSL* ssl = tls_->native_handle();
    if (SSL_get_verify_result(ssl) != X509_V_OK) {
      Close(CloseReason::kTlsFailed, "peer certificate not verified");
      co_return false;
    }
    certificate_name_ = PeerCommonName(ssl);
    if (certificate_name_.empty()) {
      Close(CloseReason::kTlsFailed, "peer certificate has no single common name");
      co_return false;
    }
    co_return true;
  }

  Awaitable<bool> ExchangeHello() {
    phase_ = Phase::kHello;
    const TcpTransportOptions& options = core_->options();
    const std::string hello =
        internal::EncodeHello({internal::kHelloVersion, options.cluster, options.name});
    const std::string wire =
        internal::FrameHeader(static_cast<std::uint32_t>(hello.size())) + hello;
    error_code ec;
    co_await WriteAll(asio::buffer(wire), ec);
    if (closed()) co_return false;
    if (ec) {
      Close(ReadErrorReason(ec), "sending hello: " + ec.message());
      co_return false;
    }
    std::string payload;
    if (!co_await ReadFrame(&payload)) co_return false;
    const std::optional<internal::Hello> theirs = internal::DecodeHello(payload);
    std::string problem;
    if (!theirs) {
      problem = "malformed hello";
    } else if (theirs->cluster != options.cluster) {
      problem = "peer " + theirs->name + " is of cluster '" + theirs->cluster + "', not '" +
                options.cluster + "'";
    } else if (tls_ && theirs->name != certificate_name_) {
      problem = "peer says it is '" + theirs->name + "' but its certificate names '" +
                certificate_name_ + "'";
    } else if (!expected_name_.empty() && theirs->name != expected_name_) {
      problem = "dialled '" + expected_name_ + "' but reached '" + theirs->name + "'";
    }
    if (!problem.empty()) {
      Bump(core_->counters().hellos_rejected);
      Close(CloseReason::kHelloRejected, problem);
      co_return false;
    }
    if (theirs->name == options.name) {
      Close(CloseReason::kSelf, "");
      co_return false;
    }
    peer_name_ = theirs->name;
    co_return true;
  }

  Awaitable<void> Main(std::shared_ptr<Session> self) {
    const TcpTransportOptions& options = core_->options();
    handshake_deadline_ = After(options.handshake_timeout_ms);
    Rearm();
    if (outbound_ && !co_await Connect()) co_return;
    if (tls_ && !co_await TlsHandshake()) co_return;
    if (!co_await ExchangeHello()) co_return;

    if (!outbound_) core_->InboundHandshakeEnded();
    phase_ = Phase::kEstablished;
    handshake_deadline_ = kNever;
    idle_deadline_ = After(options.idle_timeout_ms);
    decoder_.set_max_frame_bytes(options.max_frame_bytes);
    core_->OnEstablished(*this);
    asio::co_spawn(core_->strand(), Writer(self), Report());

    for (;;) {
      // The node is behind with our frames: stop reading (the peer's writes
      // block, its queue fills) until it catches up. Our own slowness must
      // not time the peer out.
      while (backlog_bytes_ > options.max_receive_backlog_bytes && !closed()) {
        frame_deadline_ = kNever;
        idle_deadline_ = kNever;
        read_wake_.expires_at(kNever);
        error_code ec;
        co_await read_wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        idle_deadline_ = After(options.idle_timeout_ms);
        if (decoder_.partial()) frame_deadline_ = After(options.frame_read_timeout_ms);
      }
      if (closed()) co_return;
      std::string frame;
      if (!co_await ReadFrame(&frame)) co_return;
      idle_deadline_ = After(options.idle_timeout_ms);
      core_->Deliver(self, std::move(frame));
    }
  }

  std::shared_ptr<Core> core_;
  std::optional<asio::ssl::stream<tcp::socket>> tls_;
  std::optional<tcp::socket> plain_;
  const bool outbound_;
  const std::string address_;
  const std::string expected_name_;
  std::string certificate_name_;
  std::string peer_name_;
  Phase phase_ = Phase::kConnecting;

  TimePoint handshake_deadline_ = kNever;
  TimePoint frame_deadline_ = kNever;
  TimePoint idle_deadline_ = kNever;
  TimePoint write_deadline_ = kNever;
  TimePoint linger_deadline_ = kNever;
  asio::steady_timer watchdog_;
  asio::steady_timer write_wake_;  // a condition variable: cancelled when frames arrive
  asio::steady_timer read_wake_;   // cancelled when the node handled a frame

  std::deque<std::string> queue_;  // wire-ready frames
  std::size_t queue_bytes_ = 0;
  bool write_in_flight_ = false;
  bool lingering_ = false;
  std::size_t backlog_bytes_ = 0;

  std::vector<char> read_buffer_;
  std::string_view unread_;  // read but not yet decoded, inside read_buffer_
  internal::FrameDecoder decoder_;
};

}  // namespace

// --- Core --------------------------------------------------------------------

Status TcpTransport::Core::Open() {
  if (opened_) return Status::Ok();
  const TcpTransportOptions& o = options_;
  if (!internal::ValidHelloName(o.name))
    return InvalidArgument("transport: node name '" + o.name +
                           "' must be 1-255 printable ASCII characters without spaces");
  if (!internal::ValidHelloName(o.cluster))
    return InvalidArgument("transport: cluster name '" + o.cluster +
                           "' must be 1-255 printable ASCII characters without spaces");
  if (o.max_frame_bytes == 0 || o.max_frame_bytes > 0xffffffffULL)
    return InvalidArgument("transport: max_frame_bytes must be in [1, 2^32)");
  if (o.max_connections == 0) return InvalidArgument("transport: max_connections must be > 0");
  const auto listen = internal::ParseHostPort(o.listen);
  if (!listen)
    return InvalidArgument("transport: listen address '" + o.listen +
                           "' is not host:port (or [v6]:port)");

  error_code ec;
  tcp::resolver resolver(io_);
  const auto results =
      resolver.resolve(listen->host, std::to_string(listen->port), tcp::resolver::passive, ec);
  if (ec || results.empty())
    return IoError("transport: cannot resolve listen address '" + o.listen + "': " + ec.message());

  if (o.insecure_loopback) {
    for (const auto& entry : results) {
      if (!IsLoopback(entry.endpoint().address()))
        return InvalidArgument(
            "transport: insecure_loopback (plaintext) is refused: listen address '" + o.listen +
            "' is not loopback (127.0.0.0/8 or ::1); use TLS");
    }
  } else {
    if (o.ca_file.empty() || o.cert_file.empty() || o.key_file.empty())
      return InvalidArgument(
          "transport: mutual TLS needs ca_file, cert_file and key_file (plaintext only with "
          "insecure_loopback on loopback addresses)");
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    // No resumption: every connection proves its certificate afresh.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
    ctx->load_verify_file(o.ca_file, ec);
    if (ec) return IoError("transport: cannot load CA file '" + o.ca_file + "': " + ec.message());
    ctx->use_certificate_chain_file(o.cert_file, ec);
    if (ec)
      return IoError("transport: cannot load certificate '" + o.cert_file + "': " + ec.message());
    ctx->use_private_key_file(o.key_file, asio::ssl::context::pem, ec);
    if (ec) return IoError("transport: cannot load key '" + o.key_file + "': " + ec.message());
    if (SSL_CTX_check_private_key(native) != 1)
      return InvalidArgument("transport: key '" + o.key_file + "' does not match certificate '" +
                             o.cert_file + "'");
    const std::string own = OwnCommonName(native);
    if (own != o.name)
      return InvalidArgument("transport: certificate '" + o.cert_file + "' names '" + own +
                             "', not this node '" + o.name + "'");
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    tls_ = std::move(ctx);
  }

  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor acceptor(strand_);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return IoError("transport: cannot listen on '" + o.listen + "': " + ec.message());
  const tcp::endpoint bound = acceptor.local_endpoint(ec);
  acceptor_.emplace(std::move(acceptor));
  {
    std::lock_guard lock(status_mu_);
    local_address_ = Format(bound);
  }
  opened_ = true;
  return Status::Ok();
}

void TcpTransport::Core::Start(FrameHandler handler) {
  if (!opened_) {
    Status s = Open();
    if (!s.ok()) {
      Log(s.ToString());
      std::lock_guard lock(status_mu_);
      status_ = std::move(s);
      return;
    }
  }
  {
    std::lock_guard lock(gate_->mu);
    if (gate_->stopped) return;
    gate_->handler = std::move(handler);
  }
  started_ = true;
  asio::co_spawn(strand_, AcceptLoop(shared_from_this()),
                 [self = shared_from_this()](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& ex) {
                     self->Log(std::string("transport: accept loop ended: ") + ex.what());
                   }
                 });
}

Awaitable<void> TcpTransport::Core::AcceptLoop(std::shared_ptr<Core> self) {
  asio::steady_timer pause(strand_);
  while (!stopping_ && acceptor_) {
    error_code ec;
    tcp::socket socket =
        co_await acceptor_->async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors and the like: wait a little rather than spin.
      Log("transport: accept failed: " + ec.message());
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    // Unauthenticated connections may take at most half the slots, so that a
    // flood of them cannot keep the cluster's own peers out.
    const std::size_t max_handshakes = std::max<std::size_t>(1, options_.max_connections / 2);
    if (sessions_.size() >= options_.max_connections || inbound_handshakes_ >= max_handshakes) {
      Bump(counters_.connections_refused);
      socket.close(ec);
      continue;
    }
    std::string address;
    if (const auto remote = socket.remote_endpoint(ec); !ec) address = Format(remote);
    socket.set_option(tcp::no_delay(true), ec);
    Bump(counters_.connections_accepted);
    Bump(counters_.connections_open);
    ++inbound_handshakes_;
    auto session = std::make_shared<Session>(self, std::move(socket), /*outbound=*/false,
                                             std::move(address), "");
    sessions_.emplace(session.get(), session);
    session->Run();
  }
}

void TcpTransport::Core::Send(const Endpoint& to, std::string frame) {
  if (frame.size() > options_.max_frame_bytes || !started_ || stopped_) {
    Bump(counters_.frames_dropped);
    return;
  }
  if (IsBlocked(to.name)) {
    Bump(counters_.frames_blocked);
    Bump(counters_.frames_dropped);
    return;
  }
  // The prefix is added here, off the strand: one copy, and the writer can
  // batch frames without further work.
  std::string wire = internal::FrameHeader(static_cast<std::uint32_t>(frame.size()));
  wire.reserve(internal::kFrameHeaderBytes + frame.size());
  wire += frame;
  asio::post(strand_, [self = shared_from_this(), to, wire = std::move(wire)]() mutable {
    self->SendOnStrand(to, std::move(wire));
  });
}

void TcpTransport::Core::SendOnStrand(const Endpoint& to, std::string wire) {
  if (stopping_) {
    Bump(counters_.frames_dropped);
    return;
  }
  Session* session = to.name.empty() ? nullptr : FindEstablished(to.name);
  if (session == nullptr) {
    const auto it = dialing_.find(DialKey(to));
    if (it != dialing_.end()) session = it->second;
  }
  if (session == nullptr) session = Dial(to);
  if (session == nullptr) {
    Bump(counters_.frames_dropped);
    return;
  }
  session->Enqueue(std::move(wire));
}

Session* TcpTransport::Core::FindEstablished(const std::string& name) {
  const auto it = established_.find(name);
  if (it == established_.end() || it->second.empty()) return nullptr;
  return it->second.front();
}

Session* TcpTransport::Core::Dial(const Endpoint& to) {
  const std::string key = DialKey(to);
  const TimePoint now = SteadyClock::now();
  if (const auto it = backoff_.find(key); it != backoff_.end() && now < it->second.next_attempt)
    return nullptr;
  if (sessions_.size() >= options_.max_connections) {
    Bump(counters_.connections_refused);
    return nullptr;
  }
  if (!internal::ParseHostPort(to.address)) {
    Log("transport: cannot dial malformed address '" + to.address + "'");
    backoff_[key] = Backoff{1, now + std::chrono::milliseconds(static_cast<std::int64_t>(
                                         options_.reconnect_backoff_max_ms))};
    return nullptr;
  }
  Bump(counters_.connections_dialed);
  Bump(counters_.connections_open);
  auto session = std::make_shared<Session>(shared_from_this(), tcp::socket(strand_),
                                           /*outbound=*/true, to.address, to.name);
  sessions_.emplace(session.get(), session);
  dialing_[key] = session.get();
  session->Run();
  return session.get();
}

void TcpTransport::Core::OnEstablished(Session& session) {
  established_[session.peer_name()].push_back(&session);
  Bump(counters_.connections_established);
  if (session.outbound()) backoff_.erase(DialKey({session.expected_name(), session.address()}));
}

void TcpTransport::Core::OnClosed(Session& session, CloseReason reason, const std::string& detail,
                                  bool was_established) {
  sessions_.erase(&session);
  counters_.connections_open.fetch_sub(1, std::memory_order_relaxed);
  if (was_established) {
    counters_.connections_established.fetch_sub(1, std::memory_order_relaxed);
    auto it = established_.find(session.peer_name());
    if (it != established_.end()) {
      std::erase(it->second, &session);
      if (it->second.empty()) established_.erase(it);
    }
  }
  const std::string key = DialKey({session.expected_name(), session.address()});
  if (session.outbound()) {
    if (const auto it = dialing_.find(key); it != dialing_.end() && it->second == &session)
      dialing_.erase(it);
  }
  switch (reason) {
    case CloseReason::kDialFailed:
    case CloseReason::kRefused:
      Bump(counters_.dial_failures);
      break;
    case CloseReason::kTlsFailed:
      Bump(counters_.tls_failures);
      break;
    case CloseReason::kHandshakeTimeout:
      Bump(counters_.handshake_timeouts);
      break;
    case CloseReason::kFrameTimeout:
      Bump(counters_.frame_timeouts);
      break;
    case CloseReason::kIdleTimeout:
      Bump(counters_.idle_timeouts);
      break;
    case CloseReason::kWriteTimeout:
      Bump(counters_.write_timeouts);
      break;
    default:
      break;
  }
  if (Misbehaving(reason)) Bump(counters_.peers_disconnected);
  // A dial that never got through waits before the next attempt.
  if (session.outbound() && !was_established && reason != CloseReason::kStopped) {
    Backoff& b = backoff_[key];
    b.failures = std::min(b.failures + 1, 30);
    const std::uint64_t base =
        std::min<std::uint64_t>(options_.reconnect_backoff_max_ms,
                                options_.reconnect_backoff_min_ms << std::min(b.failures - 1, 20));
    // ±25% jitter, so that peers do not redial in lockstep.
    const std::uint64_t jitter = base / 2 == 0 ? 0 : rng_() % (base / 2);
    b.next_attempt = SteadyClock::now() +
                     std::chrono::milliseconds(static_cast<std::int64_t>(base - base / 4 + jitter));
  }
  if (reason != CloseReason::kStopped && reason != CloseReason::kSelf &&
      (Misbehaving(reason) || reason == CloseReason::kDialFailed ||
       reason == CloseReason::kRefused || reason == CloseReason::kIoError)) {
    std::string who = session.peer_name().empty()
                          ? (session.expected_name().empty() ? "?" : session.expected_name())
                          : session.peer_name();
    Log("transport: " + std::string(session.outbound() ? "to " : "from ") + who + " (" +
        session.address() + "): " + std::string(ReasonName(reason)) +
        (detail.empty() ? "" : ": " + detail));
  }
}

void TcpTransport::Core::Deliver(const std::shared_ptr<Session>& session, std::string frame) {
  if (IsBlocked(session->peer_name())) {
    Bump(counters_.frames_blocked);
    Bump(counters_.frames_dropped);
    return;
  }
  Bump(counters_.frames_received);
  const std::size_t bytes = frame.size();
  std::lock_guard lock(gate_->mu);
  if (gate_->stopped || !gate_->handler) return;
  session->AddBacklog(bytes);
  gate_->clock->Post([gate = gate_, session, from = session->peer_name(), frame = std::move(frame),
                      bytes, strand = strand_]() mutable {
    {
      std::lock_guard handler_lock(gate->mu);
      if (!gate->stopped) gate->handler(from, std::move(frame));
    }
    asio::post(strand, [session, bytes] { session->Handled(bytes); });
  });
}

void TcpTransport::Core::Stop() {
  {
    std::lock_guard lock(gate_->mu);
    if (gate_->stopped) return;
    gate_->stopped = true;
    gate_->clock = nullptr;
  }
  stopped_ = true;
  asio::post(strand_, [self = shared_from_this()] { self->StopOnStrand(); });
}

void TcpTransport::Core::StopOnStrand() {
  stopping_ = true;
  if (acceptor_) {
    error_code ignored;
    acceptor_->close(ignored);
  }
  const TimePoint linger_until = After(options_.stop_linger_ms);
  std::vector<std::shared_ptr<Session>> live;
  for (const auto& [ptr, weak] : sessions_) {
    if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (const auto& s : live) {
    if (s->established() && s->has_queue() && linger_until != kNever &&
        options_.stop_linger_ms > 0) {
      s->Linger(linger_until);
    } else {
      s->Close(CloseReason::kStopped, "");
    }
  }
}

TcpTransportStats TcpTransport::Core::Snapshot() const {
  const auto get = [](const std::atomic<std::uint64_t>& a) {
    return a.load(std::memory_order_relaxed);
  };
  TcpTransportStats s;
  s.frames_sent = get(counters_.frames_sent);
  s.frames_received = get(counters_.frames_received);
  s.bytes_sent = get(counters_.bytes_sent);
  s.bytes_received = get(counters_.bytes_received);
  s.frames_dropped = get(counters_.frames_dropped);
  s.peers_disconnected = get(counters_.peers_disconnected);
  s.connections_accepted = get(counters_.connections_accepted);
  s.connections_dialed = get(counters_.connections_dialed);
  s.connections_refused = get(counters_.connections_refused);
  s.connections_open = get(counters_.connections_open);
  s.connections_established = get(counters_.connections_established);
  s.dial_failures = get(counters_.dial_failures);
  s.tls_failures = get(counters_.tls_failures);
  s.hellos_rejected = get(counters_.hellos_rejected);
  s.frames_oversized = get(counters_.frames_oversized);
  s.frames_blocked = get(counters_.frames_blocked);
  s.handshake_timeouts = get(counters_.handshake_timeouts);
  s.frame_timeouts = get(counters_.frame_timeouts);
  s.idle_timeouts = get(counters_.idle_timeouts);
  s.write_timeouts = get(counters_.write_timeouts);
  s.send_queue_peak_bytes = get(counters_.send_queue_peak_bytes);
  return s;
}

// --- TcpTransport -------------------------------------------------------------

TcpTransport::TcpTransport(asio::io_context& io, Clock& clock, TcpTransportOptions options)
    : core_(std::make_shared<Core>(io, clock, std::move(options))) {}

TcpTransport::~TcpTransport() { core_->Stop(); }

Status TcpTransport::Open() { return core_->Open(); }
std::string TcpTransport::local_address() const { return core_->local_address(); }
Status TcpTransport::status() const { return core_->status(); }
void TcpTransport::Start(FrameHandler handler) { core_->Start(std::move(handler)); }
void TcpTransport::Send(const Endpoint& to, std::string frame) {
  core_->Send(to, std::move(frame));
}
void TcpTransport::Stop() { core_->Stop(); }
void TcpTransport::Block(const std::string& peer) { core_->Block(peer); }
void TcpTransport::UnblockAll() { core_->UnblockAll(); }
TransportStats TcpTransport::stats() const { return core_->Snapshot(); }
TcpTransportStats TcpTransport::tcp_stats() const { return core_->Snapshot(); }
std::size_t TcpTransport::max_frame_bytes() const { return core_->options().max_frame_bytes; }

}  // namespace converge::replication
