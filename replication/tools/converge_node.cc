// converge-node: one converge replica as a process, for tests and demos.
//
//   converge-node --name n1 --listen 127.0.0.1:7001 --data /tmp/n1 --tls-dir certs
//   converge-node --name n2 --listen 127.0.0.1:7002 --data /tmp/n2 --tls-dir certs
//                 --seed 127.0.0.1:7001
//
// It wires a RocksStore, an io_context run by one thread, an AsioClock, a
// TcpTransport and a Node together, prints "ready" once the node started, and
// then answers line commands on stdin, one line each on stdout (errors are
// "error CODE: message"):
//
//   add KEY ELEMENT [local|majority|all]   OrSet<string> add       -> ok
//   remove KEY ELEMENT [w]                 OrSet<string> remove    -> ok
//   incr KEY N [w]                         GCounter increment      -> ok
//   set KEY VALUE [w]                      LwwRegister<string> write, stamped by
//                                          the node's hybrid clock  -> ok
//   lww KEY                                the register's value and its timestamp
//                                          "VALUE PHYSICAL_MS.LOGICAL" (or "-")
//   get KEY                                the sorted elements, space-separated
//   count KEY                              the number of elements
//   value KEY                              the GCounter's value
//   root                                   the digest tree's root hash (hex)
//   peers                                  "name state lag" per member, comma-separated
//   stats                                  node and transport counters, key=value
//   addbig KEY COUNT BYTES                 COUNT elements of BYTES bytes each
//                                          into a set (local writes) -> ok
//   forget NAME                            remove a dead member for good: majority
//                                          and all stop counting it -> ok
//   block NAME | unblock                   drop frames to/from NAME (fault injection)
//   loadcarts N [PREFIX]                   N cart keys PREFIXnnnnnnn (default
//                                          "cart:"), one line each, written
//                                          locally as fast as the node takes
//                                          them -> "ok N MS" (for benchmarks)
//   keys                                   how many keys the store holds
//   ids KEY                                how many replica ids KEY's state names
//                                          (its version vector, or counter entries)
//   quit                                   leave the cluster and exit
//
// SIGTERM, SIGINT and the end of stdin also leave gracefully: the node
// announces its leave, its last frames get a moment to go out, and the store
// is closed. Exit status: 0 after a clean shutdown, 1 when the node cannot
// start, 2 for bad flags.

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "crdt/causal_counter.h"
#include "crdt/g_counter.h"
#include "crdt/lww_register.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "replication/asio.h"
#include "replication/asio_clock.h"
#include "replication/internal/tcp_wire.h"
#include "replication/node.h"
#include "replication/tcp_transport.h"
#include "storage/rocks_store.h"

namespace converge::replication {
namespace {

using StringSet = crdt::OrSet<std::string>;
using Lww = crdt::LwwRegister<std::string>;

struct Flags {
  std::string name;
  std::string listen;
  std::string data;
  std::vector<std::string> seeds;
  std::string tls_dir;
  bool insecure_loopback = false;
  std::string cluster = "converge";
  std::uint64_t gossip_interval_ms = 200;
  std::string durability = "sync";
  // Tuning, mostly for tests that need short timeouts.
  std::uint64_t suspect_after_ms = 2'000;
  std::uint64_t dead_after_ms = 6'000;
  std::size_t members_per_message = NodeOptions{}.members_per_message;
  bool prune = false;
  std::uint64_t write_timeout_ms = 5'000;
  int fanout = 3;
  std::size_t min_replicas = 0;
  TcpTransportOptions net;
  bool quiet = false;
};

// One line to stdout, whole, from any thread.
std::mutex output_mu;
void Say(const std::string& line) {
  std::lock_guard lock(output_mu);
  std::cout << line << '\n' << std::flush;
}
void Complain(const std::string& line) {
  std::lock_guard lock(output_mu);
  std::cerr << line << '\n' << std::flush;
}

std::string Error(const Status& status) {
  return "error " + std::string(StatusCodeName(status.code())) + ": " + status.message();
}

// Runs fn on the node's executor and returns its result (the caller waits).
template <class F>
auto OnNode(Clock& clock, F fn) -> decltype(fn()) {
  std::packaged_task<decltype(fn())()> task(std::move(fn));
  auto result = task.get_future();
  clock.Post([&task] { task(); });
  return result.get();
}

// What a shutdown was asked by: stdin's end, quit, or a signal.
class ShutdownRequest {
 public:
  void Request(std::string why) {
    std::lock_guard lock(mu_);
    if (requested_) return;
    requested_ = true;
    why_ = std::move(why);
    cv_.notify_all();
  }
  std::string Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return requested_; });
    return why_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  std::string why_;
};

class NodeProcess {
 public:
  NodeProcess(Flags flags, storage::RocksStore& store,
              std::shared_ptr<const codec::TypeRegistry> registry, asio::io_context& io)
      : flags_(std::move(flags)),
        store_(store),
        registry_(std::move(registry)),
        clock_(asio::make_strand(io)),
        transport_(io, clock_, flags_.net) {}

  Status Open() {
    CONVERGE_RETURN_IF_ERROR(transport_.Open());
    NodeOptions options;
    options.name = flags_.name;
    // A port of 0 was chosen by the system: peers need the real one.
    const auto listen = internal::ParseHostPort(flags_.listen);
    options.address = listen && listen->port == 0 ? transport_.local_address() : flags_.listen;
    options.cluster = flags_.cluster;
    options.seeds = flags_.seeds;
    options.gossip_interval_ms = flags_.gossip_interval_ms;
    options.suspect_after_ms = flags_.suspect_after_ms;
    options.dead_after_ms = flags_.dead_after_ms;
    options.members_per_message = flags_.members_per_message;
    options.prune_retired_ids = flags_.prune;
    options.write_timeout_ms = flags_.write_timeout_ms;
    options.fanout = flags_.fanout;
    options.min_replicas = flags_.min_replicas;
    // What the node cannot do by itself is logged even with --quiet (which
    // silences the transport's connection lines): it is rare, rate-limited,
    // and an operator must see it.
    options.log = [name = flags_.name](const std::string& line) {
      Complain("converge-node[" + name + "]: " + line);
    };
    options.max_message_bytes = std::min(options.max_message_bytes, transport_.max_frame_bytes());
    node_ = std::make_unique<Node>(options, store_, transport_, clock_, registry_);
    return OnNode(clock_, [this] { return node_->Start(); });
  }

  // Answers one command line.
  std::string Execute(const std::string& line, bool* quit) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(std::move(w));
    if (words.empty()) return "error INVALID_ARGUMENT: empty command";
    const std::string& command = words[0];
    const auto arity = [&](std::size_t min, std::size_t max) {
      return words.size() >= min + 1 && words.size() <= max + 1;
    };
    if (command == "add" || command == "remove") {
      if (!arity(2, 3)) return "error INVALID_ARGUMENT: usage: " + command + " KEY ELEMENT [w]";
      const auto w = Consistency(words, 3);
      if (!w) return "error INVALID_ARGUMENT: w is local, majority or all";
      const std::string element = words[2];
      if (command == "add") {
        return Write<StringSet>(
            words[1], *w, [element](StringSet& s, crdt::ReplicaId r) { return s.Add(r, element); });
      }
      return Write<StringSet>(
          words[1], *w, [element](StringSet& s, crdt::ReplicaId) { return s.Remove(element); });
    }
    if (command == "incr") {
      if (!arity(2, 3)) return "error INVALID_ARGUMENT: usage: incr KEY N [w]";
      std::uint64_t n = 0;
      try {
        std::size_t used = 0;
        n = std::stoull(words[2], &used);
        if (used != words[2].size() || words[2][0] == '-') throw std::invalid_argument("N");
      } catch (const std::exception&) {
        return "error INVALID_ARGUMENT: N must be a non-negative integer";
      }
      const auto w = Consistency(words, 3);
      if (!w) return "error INVALID_ARGUMENT: w is local, majority or all";
      return Write<crdt::GCounter>(
          words[1], *w, [n](crdt::GCounter& c, crdt::ReplicaId r) { return c.Increment(r, n); });
    }
    if (command == "get" || command == "count") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: " + command + " KEY";
      StatusOr<StringSet> set = node_->Read<StringSet>(words[1]);
      if (!set.ok()) return Error(set.status());
      if (command == "count") return std::to_string(set->size());
      std::string out;
      for (const std::string& e : set->Elements()) {
        if (!out.empty()) out += ' ';
        out += e;
      }
      return out;
    }
    if (command == "set") {
      if (!arity(2, 3)) return "error INVALID_ARGUMENT: usage: set KEY VALUE [w]";
      const auto w = Consistency(words, 3);
      if (!w) return "error INVALID_ARGUMENT: w is local, majority or all";
      return Write<Lww>(words[1], *w, [this, value = words[2]](Lww& reg, crdt::ReplicaId r) {
        return reg.Assign(r, node_->Now(), value);  // on the node's executor
      });
    }
    if (command == "lww") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: lww KEY";
      StatusOr<Lww> reg = node_->Read<Lww>(words[1]);
      if (!reg.ok()) return Error(reg.status());
      if (!reg->write()) return "-";
      const auto& w = *reg->write();
      return w.value + " " + std::to_string(w.timestamp.physical_ms) + "." +
             std::to_string(w.timestamp.logical);
    }
    if (command == "value") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: value KEY";
      StatusOr<crdt::GCounter> counter = node_->Read<crdt::GCounter>(words[1]);
      if (!counter.ok()) return Error(counter.status());
      const auto value = counter->TryValue();
      return value ? std::to_string(*value) : "error INVALID_ARGUMENT: overflow";
    }
    if (command == "root") {
      const std::uint64_t root = OnNode(clock_, [this] { return node_->root_hash(); });
      std::ostringstream out;
      out << std::hex << std::setw(16) << std::setfill('0') << root;
      return out.str();
    }
    if (command == "peers") {
      const auto peers = OnNode(clock_, [this] { return node_->Peers(); });
      std::string out;
      for (const PeerStatus& p : peers) {
        if (!out.empty()) out += ',';
        out += p.name + ' ' + p.state + ' ' + std::to_string(p.lag);
      }
      return out;
    }
    if (command == "stats") return Stats();
    if (command == "loadcarts") {
      if (!arity(1, 2)) return "error INVALID_ARGUMENT: usage: loadcarts N [PREFIX]";
      std::uint64_t n = 0;
      try {
        n = std::stoull(words[1]);
      } catch (const std::exception&) {
        return "error INVALID_ARGUMENT: N must be a number";
      }
      return LoadCarts(n, words.size() > 2 ? words[2] : "cart:");
    }
    if (command == "keys") {
      std::uint64_t keys = 0;
      const Status s = store_.Scan("", "", [&](std::string_view, std::string_view) {
        ++keys;
        return true;
      });
      return s.ok() ? std::to_string(keys) : Error(s);
    }
    if (command == "ids") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: ids KEY";
      StatusOr<std::optional<std::string>> state = store_.Get(words[1]);
      if (!state.ok()) return Error(state.status());
      if (!state->has_value()) return "0";
      StatusOr<const codec::TypeRegistry::Entry*> type = registry_->Lookup(**state);
      if (!type.ok()) return Error(type.status());
      StatusOr<std::vector<crdt::ReplicaId>> ids = (*type)->replicas(**state);
      return ids.ok() ? std::to_string(ids->size()) : Error(ids.status());
    }
    if (command == "addbig") {
      if (!arity(3, 3)) return "error INVALID_ARGUMENT: usage: addbig KEY COUNT BYTES";
      std::uint64_t count = 0, bytes = 0;
      try {
        count = std::stoull(words[2]);
        bytes = std::stoull(words[3]);
      } catch (const std::exception&) {
        return "error INVALID_ARGUMENT: COUNT and BYTES must be numbers";
      }
      if (count > 100'000 || bytes > (std::uint64_t{1} << 20)) {
        return "error INVALID_ARGUMENT: at most 100000 elements of at most 1 MiB";
      }
      // Elements e<i>-<filler> of BYTES bytes each, one local write each.
      for (std::uint64_t i = 0; i < count; ++i) {
        std::string element = "e" + std::to_string(i) + "-";
        element.resize(std::max<std::size_t>(element.size(), bytes),
                       static_cast<char>('a' + i % 26));
        const std::string answer = Write<StringSet>(
            words[1], WriteConsistency::kLocal,
            [element](StringSet& s, crdt::ReplicaId r) { return s.Add(r, element); });
        if (answer != "ok") return answer;
      }
      return "ok";
    }
    if (command == "forget") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: forget NAME";
      std::promise<Status> answer;
      auto result = answer.get_future();
      node_->Forget(words[1], [&answer](Status s) { answer.set_value(std::move(s)); });
      const Status s = result.get();
      return s.ok() ? "ok" : Error(s);
    }
    if (command == "block") {
      if (!arity(1, 1)) return "error INVALID_ARGUMENT: usage: block NAME";
      transport_.Block(words[1]);
      return "ok";
    }
    if (command == "unblock") {
      transport_.UnblockAll();
      return "ok";
    }
    if (command == "quit") {
      *quit = true;
      return "bye";
    }
    return "error INVALID_ARGUMENT: unknown command '" + command + "'";
  }

  // Leaves the cluster; the transport gets a moment to write the last frames.
  void Leave() {
    OnNode(clock_, [this] { node_->Leave(); });
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min<std::uint64_t>(flags_.net.stop_linger_ms, 1'000) + 50));
    OnNode(clock_, [this] { clock_.Shutdown(); });
  }

 private:
  static std::optional<WriteConsistency> Consistency(const std::vector<std::string>& words,
                                                     std::size_t index) {
    if (words.size() <= index) return WriteConsistency::kLocal;
    std::string_view w = words[index];
    if (w.starts_with("w=")) w.remove_prefix(2);
    return ParseWriteConsistency(w);
  }

  template <class T, class F>
  std::string Write(const std::string& key, WriteConsistency w, F mutate) {
    std::promise<std::string> answer;
    auto result = answer.get_future();
    node_->Update<T>(key, std::move(mutate), w, [&answer](StatusOr<T> delta) {
      answer.set_value(delta.ok() ? "ok" : Error(delta.status()));
    });
    return result.get();
  }

  // Writes n carts of one line each, at most 256 in flight.
  std::string LoadCarts(std::uint64_t n, const std::string& prefix) {
    using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;
    const auto start = std::chrono::steady_clock::now();
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t in_flight = 0, failed = 0;
    Status first_error;
    for (std::uint64_t i = 0; i < n; ++i) {
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return in_flight < 256; });
        ++in_flight;
      }
      char key[64];
      std::snprintf(key, sizeof key, "%s%07llu", prefix.c_str(),
                    static_cast<unsigned long long>(i));
      const std::string sku = "sku" + std::to_string(i % 97);
      node_->Update<Cart>(
          key,
          [sku, i](Cart& c, crdt::ReplicaId r) {
            return c.Update(sku, [&](crdt::CausalCounter& q) { return q.Increment(r, 1 + i % 5); });
          },
          WriteConsistency::kLocal,
          [&](StatusOr<Cart> d) {
            std::lock_guard lock(mu);
            if (!d.ok()) {
              if (failed++ == 0) first_error = d.status();
            }
            --in_flight;
            cv.notify_all();
          });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
    if (failed > 0) return Error(first_error);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    return "ok " + std::to_string(n) + " " + std::to_string(ms);
  }

  std::string Stats() {
    const NodeStats n = OnNode(clock_, [this] { return node_->stats(); });
    const TcpTransportStats t = transport_.tcp_stats();
    std::ostringstream out;
    out << "updates=" << n.updates << " deltas_sent=" << n.deltas_sent
        << " deltas_acked=" << n.deltas_acked << " deltas_applied=" << n.deltas_applied
        << " intervals_rejected=" << n.intervals_rejected << " ae_sessions=" << n.ae_sessions
        << " ae_repairs=" << n.ae_repairs << " ae_keys_repaired=" << n.ae_keys_repaired
        << " messages_rejected=" << n.messages_rejected
        << " entries_rejected=" << n.entries_rejected << " retirements=" << n.retirements
        << " members_forgotten=" << n.members_forgotten << " rejoined_as_new=" << n.rejoined_as_new
        << " members_suspected=" << n.members_suspected
        << " suspicions_refuted=" << n.suspicions_refuted << " prune_level=" << n.prune_level
        << " prune_proposals=" << n.prune_proposals << " prune_aborts=" << n.prune_aborts
        << " prune_levels_renamed=" << n.prune_levels_renamed
        << " prune_levels_stripped=" << n.prune_levels_stripped
        << " messages_other_level=" << n.messages_other_level
        << " entries_refused_pruning=" << n.entries_refused_pruning
        << " chunks_sent=" << n.chunks_sent << " chunks_received=" << n.chunks_received
        << " large_states_received=" << n.large_states_received
        << " states_too_large=" << n.states_too_large
        << " messages_oversized=" << n.messages_oversized << " store_reloads=" << n.store_reloads
        << " verify_passes=" << n.verify_passes << " digests_repaired=" << n.digests_repaired
        << " tree_leaves_repaired=" << n.tree_leaves_repaired
        << " write_timeouts=" << n.write_timeouts << " buffer_entries=" << n.buffer_entries
        << " rounds=" << n.rounds << " timestamps_rejected=" << n.timestamps_rejected
        << " cluster_clock_offset_ms=" << n.cluster_clock_offset_ms
        << " net_frames_sent=" << t.frames_sent << " net_frames_received=" << t.frames_received
        << " net_bytes_sent=" << t.bytes_sent << " net_bytes_received=" << t.bytes_received
        << " net_frames_dropped=" << t.frames_dropped
        << " net_peers_disconnected=" << t.peers_disconnected
        << " net_connections_accepted=" << t.connections_accepted
        << " net_connections_dialed=" << t.connections_dialed
        << " net_connections_refused=" << t.connections_refused
        << " net_connections_open=" << t.connections_open
        << " net_connections_established=" << t.connections_established
        << " net_dial_failures=" << t.dial_failures << " net_tls_failures=" << t.tls_failures
        << " net_hellos_rejected=" << t.hellos_rejected
        << " net_frames_oversized=" << t.frames_oversized
        << " net_frames_blocked=" << t.frames_blocked
        << " net_handshake_timeouts=" << t.handshake_timeouts
        << " net_frame_timeouts=" << t.frame_timeouts << " net_idle_timeouts=" << t.idle_timeouts
        << " net_write_timeouts=" << t.write_timeouts
        << " net_send_queue_peak_bytes=" << t.send_queue_peak_bytes;
    return out.str();
  }

  Flags flags_;
  storage::RocksStore& store_;
  std::shared_ptr<const codec::TypeRegistry> registry_;
  AsioClock clock_;
  TcpTransport transport_;
  std::unique_ptr<Node> node_;
};

int Run(Flags flags) {
  if (flags.insecure_loopback == !flags.tls_dir.empty()) {
    Complain("converge-node: give exactly one of --tls-dir DIR and --insecure-loopback");
    return 2;
  }
  flags.net.name = flags.name;
  flags.net.cluster = flags.cluster;
  flags.net.listen = flags.listen;
  flags.net.insecure_loopback = flags.insecure_loopback;
  if (!flags.tls_dir.empty()) {
    flags.net.ca_file = flags.tls_dir + "/ca.pem";
    flags.net.cert_file = flags.tls_dir + "/" + flags.name + ".pem";
    flags.net.key_file = flags.tls_dir + "/" + flags.name + ".key";
  }
  if (!flags.quiet) {
    flags.net.log = [name = flags.name](const std::string& line) {
      Complain("converge-node[" + name + "]: " + line);
    };
  }

  auto registry = std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  storage::RocksStoreOptions store_options;
  store_options.durability =
      flags.durability == "buffered" ? storage::Durability::kBuffered : storage::Durability::kSync;
  store_options.registry = registry;
  store_options.validate_writes = false;  // the node validates remote deltas itself
  StatusOr<std::unique_ptr<storage::RocksStore>> store =
      storage::RocksStore::Open(flags.data, store_options);
  if (!store.ok()) {
    Complain("converge-node: cannot open the store in " + flags.data + ": " +
             store.status().ToString());
    return 1;
  }

  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  std::thread io_thread([&io] { io.run(); });
  ShutdownRequest shutdown;
  asio::signal_set signals(io, SIGTERM, SIGINT);
  signals.async_wait([&shutdown](const boost::system::error_code& ec, int signal) {
    if (!ec) shutdown.Request(signal == SIGTERM ? "SIGTERM" : "SIGINT");
  });

  int exit_code = 0;
  {
    NodeProcess process(flags, **store, registry, io);
    if (Status s = process.Open(); !s.ok()) {
      Complain("converge-node: cannot start: " + s.ToString());
      exit_code = 1;
    } else {
      Say("ready");
      // Commands are read on their own thread, so that a signal can end the
      // process while it waits for input.
      auto reader_done = std::make_shared<std::atomic<bool>>(false);
      std::thread reader([&process, &shutdown, reader_done] {
        std::string line;
        bool quit = false;
        while (!quit && std::getline(std::cin, line)) {
          if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
          Say(process.Execute(line, &quit));
        }
        *reader_done = true;
        shutdown.Request(quit ? "quit" : "end of input");
      });
      const std::string why = shutdown.Wait();
      process.Leave();
      if (!*reader_done) {
        // Blocked reading stdin: the process ends without waiting for it.
        reader.detach();
        signals.cancel();
        work.reset();
        io.stop();
        io_thread.join();
        if (Status closed = (*store)->Close(); !closed.ok()) {
          Complain("converge-node: closing the store: " + closed.ToString());
          std::_Exit(1);
        }
        Complain("converge-node[" + flags.name + "]: left (" + why + ")");
        std::cout.flush();
        std::_Exit(0);
      }
      reader.join();
      Complain("converge-node[" + flags.name + "]: left (" + why + ")");
    }
    boost::system::error_code ignored;
    signals.cancel(ignored);
    work.reset();
    io.stop();
    io_thread.join();
  }
  if (Status s = (*store)->Close(); !s.ok()) {
    Complain("converge-node: closing the store: " + s.ToString());
    return 1;
  }
  return exit_code;
}

}  // namespace
}  // namespace converge::replication

int main(int argc, char** argv) {
  using converge::replication::Flags;
  std::signal(SIGPIPE, SIG_IGN);
  Flags flags;
  CLI::App app{"converge-node: one converge replica, driven by line commands on stdin"};
  app.add_option("--name", flags.name, "this node's name (its certificate's common name)")
      ->required();
  app.add_option("--listen", flags.listen, "HOST:PORT to listen on (port 0: any)")->required();
  app.add_option("--data", flags.data, "data directory (RocksDB)")->required();
  app.add_option("--seed", flags.seeds, "HOST:PORT of a node to join through (repeatable)");
  auto* tls = app.add_option("--tls-dir", flags.tls_dir,
                             "directory with ca.pem, NAME.pem, NAME.key (scripts/make-certs)");
  auto* insecure = app.add_flag("--insecure-loopback", flags.insecure_loopback,
                                "plaintext, loopback addresses only (tests and demos)");
  tls->excludes(insecure);
  insecure->excludes(tls);
  app.add_option("--cluster", flags.cluster, "cluster name (peers of another are refused)")
      ->capture_default_str();
  app.add_option("--gossip-interval-ms", flags.gossip_interval_ms, "gossip round period")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3'600'000}));
  app.add_option("--min-replicas", flags.min_replicas,
                 "replicas the cluster is deployed with: majority/all never count fewer (0: the "
                 "members known)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{100'000}));
  app.add_option("--durability", flags.durability, "store durability")
      ->capture_default_str()
      ->check(CLI::IsMember({"sync", "buffered"}));
  auto* tuning = "Tuning (tests)";
  app.add_flag("--prune", flags.prune,
               "propose pruning retired replica ids from version vectors (docs/replication.md; "
               "off: this node still follows its peers' pruning levels)")
      ->group(tuning);
  app.add_option("--members-per-message", flags.members_per_message,
                 "member entries a gossip message carries; with more other members the node "
                 "gossips bounded changes and probes members (docs/replication.md)")
      ->group(tuning)
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
  app.add_option("--suspect-after-ms", flags.suspect_after_ms)
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--dead-after-ms", flags.dead_after_ms)->group(tuning)->capture_default_str();
  app.add_option("--write-timeout-ms", flags.write_timeout_ms, "majority/all write wait")
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--fanout", flags.fanout)
      ->group(tuning)
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--max-frame-bytes", flags.net.max_frame_bytes)
      ->group(tuning)
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, std::size_t{0xffffffffULL}));
  app.add_option("--max-connections", flags.net.max_connections)
      ->group(tuning)
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  app.add_option("--max-send-queue-bytes", flags.net.max_send_queue_bytes)
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--handshake-timeout-ms", flags.net.handshake_timeout_ms)
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", flags.net.idle_timeout_ms)
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--frame-timeout-ms", flags.net.frame_read_timeout_ms)
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--send-timeout-ms", flags.net.write_timeout_ms, "one socket write")
      ->group(tuning)
      ->capture_default_str();
  app.add_option("--reconnect-max-ms", flags.net.reconnect_backoff_max_ms)
      ->group(tuning)
      ->capture_default_str();
  app.add_flag("--quiet", flags.quiet, "no transport diagnostics on stderr")->group(tuning);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return converge::replication::Run(std::move(flags));
}
