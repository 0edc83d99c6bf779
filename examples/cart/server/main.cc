// cart-server: one replica of the shopping-cart service (docs/cart-api.md,
// docs/operations.md).
//
// main() wires the pieces together: a RocksStore in --data, the replication
// Node with its AsioClock and TcpTransport on one io_context and thread, and
// the HTTP server with the CartService on another. SIGTERM/SIGINT: stop
// taking requests, leave the cluster (peers learn it at once), let the last
// frames go out, close the store cleanly.

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "crdt/codec/registry.h"
#include "examples/cart/server/cart_service.h"
#include "examples/cart/server/http_server.h"
#include "replication/address.h"
#include "replication/asio.h"
#include "replication/asio_clock.h"
#include "replication/node.h"
#include "replication/tcp_transport.h"
#include "storage/rocks_store.h"

namespace converge::cart {
namespace {

struct Flags {
  std::string id;
  std::string http;
  std::string gossip;
  std::string data;
  std::vector<std::string> seeds;
  std::string tls_dir;
  bool insecure_loopback = false;
  bool fault_injection = false;
  bool allow_repair = false;
  bool allow_forget = false;
  std::string durability = "sync";
  std::uint64_t gossip_interval_ms = 200;
  std::size_t max_connections = 1'000;
  std::size_t min_replicas = 0;
};

void Log(const std::string& line) { std::cerr << line << '\n' << std::flush; }

// Enough descriptors for the connection cap (the soft limit is often 1024).
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Run(const Flags& flags) {
  const std::string who = "cart-server[" + flags.id + "]";
  RaiseDescriptorLimit();
  auto registry = std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  storage::RocksStoreOptions store_options;
  store_options.registry = registry;
  store_options.durability =
      flags.durability == "buffered" ? storage::Durability::kBuffered : storage::Durability::kSync;
  store_options.validate_writes = false;  // the node validates what peers send
  StatusOr<std::unique_ptr<storage::RocksStore>> opened =
      storage::RocksStore::Open(flags.data, store_options);
  if (!opened.ok()) {
    Log(who + ": cannot open the data directory " + flags.data + ": " + opened.status().ToString());
    return 1;
  }
  storage::RocksStore& store = **opened;
  StatusOr<ContextKeyring> keyring = ContextKeyring::Open(store);
  if (!keyring.ok()) {
    Log(who + ": cannot load the cart context key: " + keyring.status().ToString());
    return 1;
  }

  // The node's world: one thread runs its io_context (transport and clock).
  asio::io_context node_io(1);
  auto node_work = asio::make_work_guard(node_io);
  replication::AsioClock clock(asio::make_strand(node_io));
  replication::TcpTransportOptions net;
  net.name = flags.id;
  net.listen = flags.gossip;
  net.insecure_loopback = flags.insecure_loopback;
  if (!flags.tls_dir.empty()) {
    net.ca_file = flags.tls_dir + "/ca.pem";
    net.cert_file = flags.tls_dir + "/" + flags.id + ".pem";
    net.key_file = flags.tls_dir + "/" + flags.id + ".key";
  }
  net.log = [who](const std::string& line) { Log(who + ": " + line); };
  replication::TcpTransport transport(node_io, clock, net);
  if (Status s = transport.Open(); !s.ok()) {
    Log(who + ": " + s.ToString());
    return 1;
  }
  replication::NodeOptions node_options;
  node_options.name = flags.id;
  node_options.address = flags.gossip;
  node_options.seeds = flags.seeds;
  node_options.gossip_interval_ms = flags.gossip_interval_ms;
  node_options.min_replicas = flags.min_replicas;
  node_options.log = [who](const std::string& line) { Log(who + ": " + line); };
  node_options.metadata =
      nlohmann::json{{"http", flags.http}, {"ctx_key", keyring->Advertised()}}.dump();
  node_options.max_message_bytes =
      std::min(node_options.max_message_bytes, transport.max_frame_bytes());
  replication::Node node(node_options, store, transport, clock, registry);

  // The HTTP world: another thread.
  asio::io_context http_io(1);
  CartServiceOptions service_options;
  service_options.node_name = flags.id;
  service_options.http_address = flags.http;
  service_options.gossip_address = flags.gossip;
  service_options.fault_injection = flags.fault_injection;
  service_options.allow_repair = flags.allow_repair;
  service_options.allow_forget = flags.allow_forget;
  service_options.durability = store_options.durability;
  CartService service(service_options, node, clock, transport, store, *keyring,
                      http_io.get_executor());
  HttpServerOptions http_options;
  http_options.listen = flags.http;
  http_options.max_connections = flags.max_connections;
  // coherence-check --repair pushes whole states (base64 in JSON).
  http_options.max_body_limit = std::size_t{8} << 20;
  // (Only when repair is on: otherwise the route does not exist, and large
  // bodies would only let anyone hold memory.)
  http_options.body_limit_for = [repair = flags.allow_repair](std::string_view method,
                                                              std::string_view path) {
    return repair && method == "POST" && path == "/internal/merge" ? std::size_t{8} << 20
                                                                   : std::size_t{16} << 10;
  };
  HttpServer http(http_io, http_options,
                  [&service](HttpRequest request) { return service.Handle(std::move(request)); });
  if (Status s = http.Open(); !s.ok()) {
    Log(who + ": " + s.ToString());
    return 1;
  }
  service.set_http_stats([&http] { return http.stats(); });

  std::thread node_thread([&node_io] { node_io.run(); });
  std::promise<Status> started;
  clock.Post([&] { started.set_value(node.Start()); });
  if (Status s = started.get_future().get(); !s.ok()) {
    Log(who + ": cannot start the node: " + s.ToString());
    node_work.reset();
    node_io.stop();
    node_thread.join();
    return 1;
  }
  http.Start();
  service.Start();
  Log(who + ": serving http://" + http.local_address() + "/ (gossip " + flags.gossip + ", " +
      (flags.tls_dir.empty() ? "plaintext on loopback" : "mutual TLS") + ", data " + flags.data +
      ", " + flags.durability + ", replica incarnation " +
      std::to_string(store.identity().incarnation) + ")");

  asio::signal_set signals(http_io, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    Log(who + ": " + (signal == SIGTERM ? "SIGTERM" : "SIGINT") + ", leaving the cluster");
    http.Stop();
    service.Stop();
    http_io.stop();
  });
  http_io.run();

  // Shutdown: leave, give the last frames a moment, stop the node's world.
  std::promise<void> left;
  clock.Post([&] {
    node.Leave();
    left.set_value();
  });
  left.get_future().wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::promise<void> shut;
  clock.Post([&] {
    clock.Shutdown();
    shut.set_value();
  });
  shut.get_future().wait_for(std::chrono::seconds(2));
  node_work.reset();
  node_io.stop();
  node_thread.join();
  if (Status s = store.Close(); !s.ok()) {
    Log(who + ": closing the store: " + s.ToString());
    return 1;
  }
  Log(who + ": stopped");
  return 0;
}

// CLI11 validator for HOST:PORT with an IP address.
CLI::Validator HostPort() {
  return CLI::Validator(
      [](const std::string& value) -> std::string {
        const auto hp = replication::ParseHostPort(value);
        if (!hp || hp->port == 0) return "'" + value + "' is not HOST:PORT with a port 1-65535";
        boost::system::error_code ec;
        asio::ip::make_address(hp->host, ec);
        if (ec) return "'" + hp->host + "' is not an IP address";
        return {};
      },
      "HOST:PORT");
}

}  // namespace
}  // namespace converge::cart

int main(int argc, char** argv) {
  using converge::cart::Flags;
  std::signal(SIGPIPE, SIG_IGN);
  Flags flags;
  CLI::App app{"cart-server: one replica of the converge shopping-cart service (docs/cart-api.md)"};
  app.add_option("--id", flags.id, "this node's name, unique in the cluster (its TLS common name)")
      ->required()
      ->check(CLI::Validator(
          [](const std::string& v) -> std::string {
            return converge::replication::ValidNodeName(v)
                       ? std::string()
                       : "1-255 printable ASCII characters without spaces";
          },
          "NAME"));
  app.add_option("--http", flags.http, "HOST:PORT for the HTTP API and the web page")
      ->required()
      ->check(converge::cart::HostPort());
  app.add_option("--gossip", flags.gossip, "HOST:PORT where peers reach this node")
      ->required()
      ->check(converge::cart::HostPort());
  app.add_option("--data", flags.data, "data directory (RocksDB; created when missing)")
      ->required();
  app.add_option("--seed", flags.seeds, "gossip HOST:PORT of a node to join through (repeatable)")
      ->check(converge::cart::HostPort());
  auto* tls = app.add_option("--tls-dir", flags.tls_dir,
                             "directory with ca.pem, NAME.pem and NAME.key (scripts/make-certs): "
                             "mutual TLS between replicas")
                  ->check(CLI::ExistingDirectory);
  auto* insecure = app.add_flag("--insecure-loopback", flags.insecure_loopback,
                                "plaintext gossip, refused unless every address is loopback");
  tls->excludes(insecure);
  insecure->excludes(tls);
  app.add_flag("--allow-fault-injection", flags.fault_injection,
               "enable /admin/partition and /admin/corrupt (tests and demos)");
  app.add_flag("--allow-repair", flags.allow_repair,
               "enable POST /internal/merge (coherence-check --repair)");
  app.add_flag("--allow-forget", flags.allow_forget,
               "enable DELETE /cluster/members/NAME (an operator removes a dead member)");
  app.add_option("--durability", flags.durability,
                 "sync: a 2xx answer means the write is on disk; buffered: in the OS cache")
      ->capture_default_str()
      ->check(CLI::IsMember({"sync", "buffered"}));
  app.add_option("--gossip-interval-ms", flags.gossip_interval_ms, "gossip round period")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{10}, std::uint64_t{60'000}));
  app.add_option("--min-replicas", flags.min_replicas,
                 "replicas the cluster is deployed with: ?w=majority and ?w=all never count "
                 "fewer (0: the members known)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{100'000}));
  app.add_option("--max-connections", flags.max_connections, "HTTP connections at most")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{8}, std::size_t{100'000}));
  try {
    app.parse(argc, argv);
    if (flags.tls_dir.empty() && !flags.insecure_loopback) {
      throw CLI::ValidationError("give --tls-dir DIR (mutual TLS) or --insecure-loopback");
    }
    if (flags.insecure_loopback) {
      // Plaintext gossip only between loopback addresses (the transport
      // refuses anything else too; say so here, naming the flag).
      const auto loopback = [](const std::string& address) {
        const auto hp = converge::replication::ParseHostPort(address);
        boost::system::error_code ec;
        const auto ip = boost::asio::ip::make_address(hp->host, ec);
        return !ec && ip.is_loopback();
      };
      if (!loopback(flags.gossip)) {
        throw CLI::ValidationError("--gossip " + flags.gossip +
                                   ": --insecure-loopback needs a loopback address (127.0.0.0/8, "
                                   "::1); use --tls-dir for other addresses");
      }
      for (const std::string& seed : flags.seeds) {
        if (!loopback(seed)) {
          throw CLI::ValidationError("--seed " + seed +
                                     ": --insecure-loopback needs loopback seeds; use --tls-dir");
        }
      }
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return converge::cart::Run(flags);
}
