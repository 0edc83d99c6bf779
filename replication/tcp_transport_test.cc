#include "replication/tcp_transport.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "replication/asio.h"
#include "replication/asio_clock.h"
#include "replication/internal/tcp_wire.h"

namespace converge::replication {
namespace {

using internal::FrameDecoder;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// --- the wire format ---------------------------------------------------------

std::string Framed(std::string_view payload) {
  return internal::FrameHeader(static_cast<std::uint32_t>(payload.size())) + std::string(payload);
}

TEST(FrameDecoderTest, DecodesFramesSplitAnywhere) {
  const std::string stream = Framed("hello") + Framed("") + Framed(std::string(1000, 'x'));
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{7}, stream.size()}) {
    FrameDecoder decoder(1000);
    std::vector<std::string> frames;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      std::string_view input = std::string_view(stream).substr(at, chunk);
      std::string frame;
      while (!input.empty() || decoder.partial()) {
        const auto result = decoder.Feed(input, &frame);
        ASSERT_NE(result, FrameDecoder::Result::kOversized);
        if (result == FrameDecoder::Result::kNeedMore) break;
        frames.push_back(std::move(frame));
      }
    }
    ASSERT_EQ(frames.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(frames[0], "hello");
    EXPECT_EQ(frames[1], "");
    EXPECT_EQ(frames[2], std::string(1000, 'x'));
    EXPECT_FALSE(decoder.partial());
    EXPECT_EQ(decoder.frames_begun(), 3u);
  }
}

TEST(FrameDecoderTest, RefusesAnOversizedPrefixBeforeReadingPayload) {
  FrameDecoder decoder(std::size_t{4} << 20);
  std::string_view input("\xff\xff\xff\xff", 4);
  std::string frame;
  EXPECT_EQ(decoder.Feed(input, &frame), FrameDecoder::Result::kOversized);
  EXPECT_EQ(decoder.announced_length(), 0xffffffffu);
  EXPECT_TRUE(frame.empty());
  EXPECT_EQ(frame.capacity(), std::string().capacity());

  // One above the cap is refused, the cap itself is accepted.
  FrameDecoder exact(16);
  const std::string over = internal::FrameHeader(17);
  std::string_view over_input(over);
  EXPECT_EQ(exact.Feed(over_input, &frame), FrameDecoder::Result::kOversized);
  FrameDecoder fits(16);
  const std::string ok = Framed(std::string(16, 'a'));
  std::string_view ok_input(ok);
  EXPECT_EQ(fits.Feed(ok_input, &frame), FrameDecoder::Result::kFrame);
  EXPECT_EQ(frame.size(), 16u);
}

TEST(FrameDecoderTest, PartialFrameIsTracked) {
  FrameDecoder decoder(100);
  const std::string stream = Framed("abcdef");
  std::string_view input = std::string_view(stream).substr(0, 2);
  std::string frame;
  EXPECT_FALSE(decoder.partial());
  EXPECT_EQ(decoder.Feed(input, &frame), FrameDecoder::Result::kNeedMore);
  EXPECT_TRUE(decoder.partial());
  EXPECT_EQ(decoder.frames_begun(), 1u);
  input = std::string_view(stream).substr(2);
  EXPECT_EQ(decoder.Feed(input, &frame), FrameDecoder::Result::kFrame);
  EXPECT_FALSE(decoder.partial());
  EXPECT_EQ(frame, "abcdef");
}

TEST(HelloTest, RoundTripAndRejects) {
  const std::string bytes = internal::EncodeHello({1, "prod", "node-1"});
  const auto hello = internal::DecodeHello(bytes);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->version, 1);
  EXPECT_EQ(hello->cluster, "prod");
  EXPECT_EQ(hello->name, "node-1");
  // A later version's extra fields are ignored.
  EXPECT_TRUE(internal::DecodeHello(bytes + "extra"));

  EXPECT_FALSE(internal::DecodeHello(""));
  EXPECT_FALSE(internal::DecodeHello("XXXX" + bytes.substr(4)));
  for (std::size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(internal::DecodeHello(bytes.substr(0, n))) << "truncated at " << n;
  std::string version_zero = bytes;
  version_zero[4] = version_zero[5] = '\0';
  EXPECT_FALSE(internal::DecodeHello(version_zero));
  EXPECT_FALSE(internal::DecodeHello(internal::EncodeHello({1, "prod", "bad name"})));
  EXPECT_FALSE(internal::DecodeHello(bytes + std::string(internal::kMaxHelloBytes, 'x')));
}

TEST(HostPortTest, Parses) {
  auto hp = internal::ParseHostPort("127.0.0.1:7000");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7000);
  hp = internal::ParseHostPort("[::1]:0");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 0);
  for (const char* bad :
       {"", "host", "host:", ":80", "h:65536", "h:-1", "h:1x", "::1:80", "[::1]80", "[::1]"}) {
    EXPECT_FALSE(internal::ParseHostPort(bad)) << bad;
  }
}

// --- transports on loopback --------------------------------------------------

bool WaitFor(const std::function<bool()>& condition,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

struct Received {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> frames;
  std::size_t size() {
    std::lock_guard lock(mu);
    return frames.size();
  }
  std::vector<std::pair<std::string, std::string>> copy() {
    std::lock_guard lock(mu);
    return frames;
  }
};

class TcpTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = std::filesystem::path(::testing::TempDir()) /
             ("converge-tcp-certs-" + std::to_string(::getpid()));
    other_ca_ = certs_.string() + "-other";
    const std::string make = CONVERGE_MAKE_CERTS;
    const std::string quiet = " > /dev/null";
    ASSERT_EQ(std::system((make + " " + certs_.string() + " a b c" + quiet).c_str()), 0);
    // Same name "b", another CA.
    ASSERT_EQ(std::system((make + " --ca-dir " + other_ca_.string() + "/ca " + other_ca_.string() +
                           " b" + quiet)
                              .c_str()),
              0);
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    std::filesystem::remove_all(certs_, ignored);
    std::filesystem::remove_all(other_ca_, ignored);
  }

  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    for (auto& p : peers_) p->transport->Stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    for (auto& p : peers_) p->clock->Shutdown();
    work_.reset();
    io_.stop();
    thread_.join();
    peers_.clear();
  }

  struct Peer {
    std::unique_ptr<AsioClock> clock;
    std::unique_ptr<TcpTransport> transport;
    Received received;
    std::string address;
  };

  TcpTransportOptions Tls(const std::string& name,
                          const std::filesystem::path& dir = certs_) const {
    TcpTransportOptions o;
    o.name = name;
    o.listen = "127.0.0.1:0";
    o.ca_file = (dir / "ca.pem").string();
    o.cert_file = (dir / (name + ".pem")).string();
    o.key_file = (dir / (name + ".key")).string();
    o.reconnect_backoff_min_ms = 10;
    o.reconnect_backoff_max_ms = 50;
    return o;
  }
  static TcpTransportOptions Plain(const std::string& name) {
    TcpTransportOptions o;
    o.name = name;
    o.listen = "127.0.0.1:0";
    o.insecure_loopback = true;
    o.reconnect_backoff_min_ms = 10;
    o.reconnect_backoff_max_ms = 50;
    return o;
  }

  Peer& Make(TcpTransportOptions options) {
    auto peer = std::make_unique<Peer>();
    peer->clock = std::make_unique<AsioClock>(asio::make_strand(io_));
    peer->transport = std::make_unique<TcpTransport>(io_, *peer->clock, std::move(options));
    const Status opened = peer->transport->Open();
    EXPECT_TRUE(opened.ok()) << opened;
    peer->address = peer->transport->local_address();
    Received* received = &peer->received;
    peer->transport->Start([received](const std::string& from, std::string frame) {
      std::lock_guard lock(received->mu);
      received->frames.emplace_back(from, std::move(frame));
    });
    peers_.push_back(std::move(peer));
    return *peers_.back();
  }

  // A plaintext client speaking the wire format by hand (blocking sockets).
  struct RawClient {
    asio::io_context io;
    tcp::socket socket{io};
    explicit RawClient(const std::string& address) {
      const auto hp = internal::ParseHostPort(address);
      socket.connect(tcp::endpoint(asio::ip::make_address(hp->host), hp->port));
    }
    void Write(std::string_view bytes) {
      boost::system::error_code ec;
      asio::write(socket, asio::buffer(bytes.data(), bytes.size()), ec);
    }
    void Hello(const std::string& name, const std::string& cluster = "converge") {
      Write(Framed(internal::EncodeHello({internal::kHelloVersion, cluster, name})));
    }
    // True once the peer closed the connection (reads what it sent before).
    bool Closed(std::chrono::milliseconds timeout) {
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      socket.non_blocking(true);
      char buffer[4096];
      while (std::chrono::steady_clock::now() < deadline) {
        boost::system::error_code ec;
        socket.read_some(asio::buffer(buffer), ec);
        if (ec == asio::error::would_block) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        if (ec) return true;
      }
      return false;
    }
  };

  static inline std::filesystem::path certs_;
  static inline std::filesystem::path other_ca_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_;
  std::vector<std::unique_ptr<Peer>> peers_;
};

TEST_F(TcpTransportTest, TlsPairExchangesFramesWithAuthenticatedNames) {
  Peer& a = Make(Tls("a"));
  Peer& b = Make(Tls("b"));
  // a knows b's address only (a seed): the name comes from the handshake.
  a.transport->Send(Endpoint{"", b.address}, "ping");
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 1; }));
  EXPECT_EQ(b.received.copy()[0], std::make_pair(std::string("a"), std::string("ping")));
  // b answers by name over the connection a opened (no address needed).
  b.transport->Send(Endpoint{"a", ""}, "pong");
  ASSERT_TRUE(WaitFor([&] { return a.received.size() == 1; }));
  EXPECT_EQ(a.received.copy()[0], std::make_pair(std::string("b"), std::string("pong")));
  // Many frames, in order, over one connection.
  for (int i = 0; i < 200; ++i) a.transport->Send(Endpoint{"b", b.address}, std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 201; }));
  const auto frames = b.received.copy();
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(frames[static_cast<std::size_t>(i) + 1].second, std::to_string(i));
  const TcpTransportStats s = a.transport->tcp_stats();
  EXPECT_EQ(s.connections_dialed, 1u);
  EXPECT_EQ(s.frames_sent, 201u);
  EXPECT_EQ(s.frames_dropped, 0u);
  EXPECT_EQ(b.transport->tcp_stats().connections_accepted, 1u);
  EXPECT_EQ(b.transport->tcp_stats().frames_received, 201u);
}

TEST_F(TcpTransportTest, CertificateOfAnotherCaIsRejected) {
  Peer& a = Make(Tls("a"));
  Peer& impostor = Make(Tls("b", other_ca_));
  impostor.transport->Send(Endpoint{"a", a.address}, "let me in");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().tls_failures >= 1; }));
  EXPECT_GE(a.transport->tcp_stats().peers_disconnected, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(a.received.size(), 0u);
  EXPECT_EQ(impostor.received.size(), 0u);
}

TEST_F(TcpTransportTest, PlaintextPeerAgainstTlsIsRejected) {
  Peer& a = Make(Tls("a"));
  Peer& plain = Make(Plain("b"));
  plain.transport->Send(Endpoint{"a", a.address}, "hello?");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().tls_failures >= 1; }));
  EXPECT_EQ(a.received.size(), 0u);
}

TEST_F(TcpTransportTest, OtherClusterAndWrongNameAreRejected) {
  TcpTransportOptions other = Tls("b");
  other.cluster = "elsewhere";
  Peer& a = Make(Tls("a"));
  Peer& b = Make(other);
  b.transport->Send(Endpoint{"a", a.address}, "x");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().hellos_rejected >= 1; }));
  EXPECT_EQ(a.received.size(), 0u);

  // Dialling "c" at a's address reaches a: refused too.
  Peer& c = Make(Tls("c"));
  c.transport->Send(Endpoint{"c-expected", a.address}, "x");
  ASSERT_TRUE(WaitFor([&] { return c.transport->tcp_stats().hellos_rejected >= 1; }));
  EXPECT_EQ(a.received.size(), 0u);
}

TEST_F(TcpTransportTest, OpenRefusesBadOptions) {
  AsioClock clock(io_.get_executor());
  {
    TcpTransportOptions o = Plain("a");
    o.listen = "0.0.0.0:0";
    TcpTransport t(io_, clock, o);
    const Status s = t.Open();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("loopback"), std::string::npos) << s;
  }
  {
    TcpTransportOptions o = Plain("a");
    o.listen = "10.1.2.3:0";
    TcpTransport t(io_, clock, o);
    EXPECT_EQ(t.Open().code(), StatusCode::kInvalidArgument);
  }
  {
    TcpTransportOptions o = Plain("a");
    o.insecure_loopback = false;  // and no certificates
    TcpTransport t(io_, clock, o);
    const Status s = t.Open();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("TLS"), std::string::npos) << s;
  }
  {
    TcpTransportOptions o = Tls("a");
    o.name = "b";  // a's certificate is not b's
    TcpTransport t(io_, clock, o);
    EXPECT_EQ(t.Open().code(), StatusCode::kInvalidArgument);
  }
  {
    TcpTransportOptions o = Plain("a");
    o.listen = "localhost";
    TcpTransport t(io_, clock, o);
    EXPECT_EQ(t.Open().code(), StatusCode::kInvalidArgument);
    // Start without a working Open: nothing runs, every Send is dropped.
    t.Start([](const std::string&, std::string) {});
    EXPECT_FALSE(t.status().ok());
    t.Send(Endpoint{"x", "127.0.0.1:1"}, "frame");
    EXPECT_EQ(t.stats().frames_dropped, 1u);
  }
}

TEST_F(TcpTransportTest, InsecureTransportDialsOnlyLoopback) {
  Peer& a = Make(Plain("a"));
  a.transport->Send(Endpoint{"b", "10.255.255.1:9"}, "x");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().dial_failures == 1; }));
  EXPECT_EQ(a.transport->tcp_stats().connections_established, 0u);
}

TEST_F(TcpTransportTest, BlockDropsFramesBothWaysUntilUnblocked) {
  Peer& a = Make(Tls("a"));
  Peer& b = Make(Tls("b"));
  a.transport->Send(Endpoint{"b", b.address}, "1");
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 1; }));

  a.transport->Block("b");
  a.transport->Send(Endpoint{"b", b.address}, "to b, blocked");
  b.transport->Send(Endpoint{"a", a.address}, "from b, blocked");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().frames_blocked == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_EQ(a.received.size(), 0u);

  a.transport->UnblockAll();
  a.transport->Send(Endpoint{"b", b.address}, "2");
  b.transport->Send(Endpoint{"a", a.address}, "3");
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 2 && a.received.size() == 1; }));
  EXPECT_EQ(b.received.copy()[1].second, "2");
  EXPECT_EQ(a.received.copy()[0].second, "3");
}

TEST_F(TcpTransportTest, NoHandlerRunsAfterStop) {
  Peer& a = Make(Tls("a"));
  Peer& b = Make(Tls("b"));
  a.transport->Send(Endpoint{"b", b.address}, "before");
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 1; }));
  b.transport->Stop();
  for (int i = 0; i < 50; ++i) a.transport->Send(Endpoint{"b", b.address}, "after");
  b.transport->Send(Endpoint{"a", a.address}, "from a stopped transport");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_EQ(a.received.size(), 0u);
  EXPECT_EQ(b.transport->tcp_stats().connections_open, 0u);
  // The stopped side's connection is gone; a notices.
  EXPECT_TRUE(WaitFor([&] { return a.transport->tcp_stats().connections_open == 0; }));
}

TEST_F(TcpTransportTest, OversizedLengthPrefixDisconnects) {
  TcpTransportOptions o = Plain("a");
  o.max_frame_bytes = 1024;
  Peer& a = Make(o);
  RawClient raw(a.address);
  raw.Hello("mallory");
  raw.Write(std::string("\xff\xff\xff\xff", 4));
  EXPECT_TRUE(raw.Closed(std::chrono::milliseconds(5'000)));
  EXPECT_EQ(a.transport->tcp_stats().frames_oversized, 1u);
  EXPECT_EQ(a.transport->tcp_stats().peers_disconnected, 1u);

  // Before the hello, the limit is the hello's own.
  RawClient early(a.address);
  early.Write(internal::FrameHeader(2000));
  EXPECT_TRUE(early.Closed(std::chrono::milliseconds(5'000)));
  EXPECT_EQ(a.transport->tcp_stats().frames_oversized, 2u);
}

TEST_F(TcpTransportTest, SlowPeersAreCutOff) {
  TcpTransportOptions o = Plain("a");
  o.handshake_timeout_ms = 200;
  o.frame_read_timeout_ms = 200;
  Peer& a = Make(o);

  RawClient silent(a.address);  // never says hello
  RawClient trickle(a.address);
  trickle.Hello("slow");
  trickle.Write(
      std::string("\0\0\0\x10"
                  "abc",
                  7));  // 16 announced, 3 sent
  EXPECT_TRUE(silent.Closed(std::chrono::milliseconds(5'000)));
  EXPECT_TRUE(trickle.Closed(std::chrono::milliseconds(5'000)));
  const TcpTransportStats s = a.transport->tcp_stats();
  EXPECT_EQ(s.handshake_timeouts, 1u);
  EXPECT_EQ(s.frame_timeouts, 1u);
  EXPECT_EQ(s.peers_disconnected, 2u);
}

TEST_F(TcpTransportTest, PeerThatNeverReadsIsDisconnected) {
  TcpTransportOptions o = Plain("a");
  o.max_send_queue_bytes = std::size_t{2} << 20;
  o.write_timeout_ms = 300;
  Peer& a = Make(o);
  RawClient sink(a.address);
  sink.Hello("sink");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().connections_established == 1; }));
  const std::string big(std::size_t{1} << 20, 'z');
  for (int i = 0; i < 64; ++i) a.transport->Send(Endpoint{"sink", ""}, big);
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().write_timeouts == 1; }));
  const TcpTransportStats s = a.transport->tcp_stats();
  EXPECT_GT(s.frames_dropped, 0u);
  EXPECT_LE(s.send_queue_peak_bytes, (std::size_t{2} << 20) + 16);
  EXPECT_EQ(s.connections_open, 0u);
}

TEST_F(TcpTransportTest, ConnectionsBeyondTheCapAreRefused) {
  TcpTransportOptions o = Plain("a");
  o.max_connections = 2;
  Peer& a = Make(o);
  // With a cap of 2, at most one connection may be handshaking at a time
  // (half the slots), so the second client connects once the first is in.
  RawClient one(a.address);
  one.Hello("one");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().connections_established == 1; }));
  RawClient two(a.address);
  two.Hello("two");
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().connections_established == 2; }));
  RawClient three(a.address);
  EXPECT_TRUE(three.Closed(std::chrono::milliseconds(5'000)));
  EXPECT_EQ(a.transport->tcp_stats().connections_refused, 1u);
}

TEST_F(TcpTransportTest, RedialsAfterThePeerRestarts) {
  Peer& a = Make(Tls("a"));
  TcpTransportOptions bo = Tls("b");
  Peer& b = Make(bo);
  a.transport->Send(Endpoint{"b", b.address}, "1");
  ASSERT_TRUE(WaitFor([&] { return b.received.size() == 1; }));
  // b goes away and comes back on the same port.
  const std::string address = b.address;
  b.transport->Stop();
  ASSERT_TRUE(WaitFor([&] { return a.transport->tcp_stats().connections_open == 0; }));
  bo.listen = address;
  Peer& b2 = Make(bo);
  ASSERT_EQ(b2.address, address);
  ASSERT_TRUE(WaitFor([&] {
    a.transport->Send(Endpoint{"b", address}, "again");
    return b2.received.size() >= 1;
  }));
  EXPECT_EQ(b2.received.copy()[0].first, "a");
}

}  // namespace
}  // namespace converge::replication
