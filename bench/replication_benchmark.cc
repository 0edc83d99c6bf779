// Benchmarks of replication/: what digest anti-entropy costs, in bytes and
// messages, against the number of keys that differ between two replicas.
//
// bench/run builds and runs this binary and bench/report.py turns its JSON
// output into docs/benchmarks.md (FIGURES in bench/report.py read the
// counters set here by run name and counter name).
//
// Two real replication::Node objects on the deterministic simulated network
// (replication/sim/sim_world.h), each with a MemoryStore. Both hold the same
// `shared` cart keys (OrMap<std::string, CausalCounter>, key "cart:" + 12
// digits, one line each, the same canonical bytes on both); node "a" holds d
// keys more. The delta path is disabled (NodeOptions::delta_buffer_max_bytes
// = 1: every delta leaves the buffer at the next round, so a peer is always
// behind it), so only digest anti-entropy can repair the difference. The run
// counts, from the moment the two nodes can reach each other until their
// digest trees are equal, the anti-entropy bytes both sent
// (NodeStats::ae_bytes_sent, a + b) and the anti-entropy frames (frames sent
// while ae_bytes_sent grew; see CountingTransport), then checks that both
// stores hold the same states, byte for byte, for every key. Everything is
// virtual time and one seed: the same arguments give the same bytes.
//
// Run names:
//   ReplicationAe/differing:D           a holds D keys b has not
//   ReplicationAe/changed:D             both hold every key; a holds a newer
//                                       state (one more increment) of D of them
//   ReplicationAe/differing:100/tenth_keys
//                                       D = 100 with a tenth of the shared keys:
//                                       the cost follows D, not the key count
//   ReplicationAe/in_sync               D = 0: the sessions of two equal
//                                       replicas (root hash against root hash)
//
// Counters: ae_bytes, ae_messages, ae_sessions (both nodes, until equal),
// ae_bytes_per_differing_key, virtual_ms and rounds (simulated time from the
// first gossip to equal trees), keys (keys each node holds at the end),
// full_state_bytes (a's keys and encoded states summed: what sending its whole
// state would cost), shared_keys, differing_keys; in_sync: ae_bytes_per_session,
// ae_messages_per_session. The manual time of a run is the wall-clock time
// the simulation took to repair (it is single-threaded: that is CPU time).
//
// Flags (besides the usual --benchmark_* ones):
//   --quick             10,000 shared keys instead of 100,000
//   --ae_keys=N         the number of shared keys

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_common.h"
#include "crdt/causal_counter.h"
#include "crdt/codec/codec.h"
#include "crdt/codec/registry.h"
#include "crdt/or_map.h"
#include "crdt/replica_id.h"
#include "replication/node.h"
#include "replication/sim/sim_world.h"
#include "storage/memory_store.h"

namespace converge::bench {
namespace {

using crdt::CausalCounter;
using crdt::ReplicaId;
using Cart = crdt::OrMap<std::string, CausalCounter>;
using replication::Node;
using replication::NodeOptions;
using replication::NodeStats;
using replication::sim::SimClock;
using replication::sim::SimTransport;
using replication::sim::SimWorld;

constexpr std::uint64_t kGossipIntervalMs = 100;
constexpr std::uint64_t kWorldSeed = 20'240'601;
// The replica that "wrote" every cart (neither node): states are joined into
// both nodes as they would arrive from a third replica.
constexpr ReplicaId kWriter{0x5eed'0000'0000'0001ULL};
// A run that has not converged after this much virtual time fails.
constexpr std::uint64_t kMaxVirtualMs = 600'000;

struct Config {
  bool quick = false;
  std::int64_t shared_keys = 0;
};

Config& GetConfig() {
  static Config config;
  return config;
}

std::shared_ptr<const codec::TypeRegistry> Registry() {
  static const auto registry =
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  return registry;
}

// The cart ids of bench/storage_benchmark.cc: a bijection of [0, 10^12) that
// spreads consecutive indexes over the id space.
std::uint64_t CartId(std::uint64_t index) {
  constexpr std::uint64_t kModulus = 1'000'000'000'000ULL;
  constexpr std::uint64_t kFactorHigh = 777'767;
  constexpr std::uint64_t kFactorLow = 777'773;
  const std::uint64_t high = (index * kFactorHigh) % kModulus * 1'000'000 % kModulus;
  return (high + index * kFactorLow + 123'456'789) % kModulus;
}

std::string CartKey(std::uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "cart:%012llu", static_cast<unsigned long long>(CartId(index)));
  return buf;
}

// The canonical state of cart `index` after `increments` increments of one
// line by kWriter (a fixed function of the index).
std::string CartState(std::uint64_t index, int increments) {
  char sku[16];
  std::snprintf(sku, sizeof sku, "sku-%06llu", static_cast<unsigned long long>(index % 10'000));
  Cart cart;
  for (int i = 0; i < increments; ++i) {
    (void)cart.Update(sku, [&](CausalCounter& q) { return q.Increment(kWriter, 1 + index % 5); });
  }
  return codec::Encode(cart);
}

// A transport that counts the anti-entropy frames its node sends: the node
// adds a frame's size to NodeStats::ae_bytes_sent just before it hands an
// anti-entropy frame to the transport, so a Send during which that counter
// has moved since the previous Send carries one. Everything runs on the
// simulation's one thread, the node's executor, where stats() may be read.
class CountingTransport final : public replication::Transport {
 public:
  CountingTransport(SimWorld& world, const std::string& name) : inner_(world, name) {}

  void set_node(const Node* node) { node_ = node; }
  [[nodiscard]] std::uint64_t ae_frames() const { return ae_frames_; }

  void Start(FrameHandler handler) override { inner_.Start(std::move(handler)); }
  void Send(const replication::Endpoint& to, std::string frame) override {
    if (node_ != nullptr) {
      const std::uint64_t ae = node_->stats().ae_bytes_sent;
      if (ae != last_ae_bytes_) ++ae_frames_;
      last_ae_bytes_ = ae;
    }
    inner_.Send(to, std::move(frame));
  }
  void Stop() override { inner_.Stop(); }
  void Block(const std::string& peer) override { inner_.Block(peer); }
  void UnblockAll() override { inner_.UnblockAll(); }
  [[nodiscard]] replication::TransportStats stats() const override { return inner_.stats(); }
  [[nodiscard]] std::size_t max_frame_bytes() const override { return inner_.max_frame_bytes(); }

 private:
  SimTransport inner_;
  const Node* node_ = nullptr;
  std::uint64_t last_ae_bytes_ = 0;
  std::uint64_t ae_frames_ = 0;
};

NodeOptions OptionsFor(const std::string& name, const std::string& peer) {
  NodeOptions o;
  o.name = name;
  o.address = name;
  if (!peer.empty()) o.seeds = {peer};
  o.gossip_interval_ms = kGossipIntervalMs;
  o.fanout = 1;
  o.suspect_after_ms = 60'000;  // nothing fails here; repairs may take long
  o.dead_after_ms = 120'000;
  o.ae_session_timeout_ms = 5'000;
  // The delta path off: any delta is dropped from the buffer at the next
  // round, so peers are repaired by digest anti-entropy alone.
  o.delta_buffer_max_bytes = 1;
  o.seed = replication::Hash64(name, kWorldSeed) | 1;
  return o;
}

// One node on the simulated network.
struct SimNode {
  SimNode(SimWorld& world, const std::string& name, const std::string& peer,
          std::unique_ptr<storage::MemoryStore> s)
      : store(std::move(s)), clock(world), transport(world, name) {
    node = std::make_unique<Node>(OptionsFor(name, peer), *store, transport, clock, Registry());
    transport.set_node(node.get());
    if (Status status = node->Start(); !status.ok()) {
      throw std::runtime_error(name + " could not start: " + status.ToString());
    }
  }
  ~SimNode() {
    if (node) node->Stop();
  }
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  std::unique_ptr<storage::MemoryStore> store;
  SimClock clock;
  CountingTransport transport;
  std::unique_ptr<Node> node;
};

// Joins states into a running node, as states from a peer (Node::Merge),
// running the world's events (at the current virtual time) as it goes.
void MergeAll(SimWorld& world, Node& node,
              const std::vector<std::pair<std::string, std::string>>& states) {
  std::size_t done = 0;
  std::string error;
  for (std::size_t i = 0; i < states.size(); ++i) {
    node.Merge(states[i].first, states[i].second, [&](StatusOr<bool> changed) {
      ++done;
      if (!changed.ok() && error.empty()) error = changed.status().ToString();
    });
    if (i % 1'000 == 999) world.RunUntil(world.now_ms());
  }
  world.RunUntil(world.now_ms());
  if (done != states.size() || !error.empty()) {
    throw std::runtime_error("loading the states failed: " +
                             (error.empty() ? std::string("merges did not run") : error));
  }
}

// The stores of the two nodes holding `shared` keys, built once per count
// (through running nodes, so that the digest index is the node's own) and
// copied for each run.
struct BaseStores {
  storage::MemoryStore::Snapshot a, b;
};

const BaseStores& Base(std::int64_t shared) {
  static std::map<std::int64_t, BaseStores> cache;
  const auto it = cache.find(shared);
  if (it != cache.end()) return it->second;
  std::vector<std::pair<std::string, std::string>> states;
  states.reserve(static_cast<std::size_t>(shared));
  for (std::int64_t i = 0; i < shared; ++i) {
    const auto index = static_cast<std::uint64_t>(i);
    states.emplace_back(CartKey(index), CartState(index, 1));
  }
  SimWorld world(kWorldSeed);
  BaseStores base;
  for (const char* name : {"a", "b"}) {
    // No seeds: the node knows no one while it is loaded.
    auto store = std::make_unique<storage::MemoryStore>(
        Registry(), ReplicaId{replication::Hash64(name, kWorldSeed + 1) | 1});
    SimNode n(world, name, "", std::move(store));
    MergeAll(world, *n.node, states);
    n.node->Stop();
    (name[0] == 'a' ? base.a : base.b) = n.store->TakeSnapshot();
    n.node.reset();
  }
  return cache.emplace(shared, std::move(base)).first->second;
}

struct RunResult {
  std::uint64_t ae_bytes = 0;
  std::uint64_t ae_messages = 0;
  std::uint64_t ae_sessions = 0;
  std::uint64_t virtual_ms = 0;
  std::uint64_t keys = 0;
  std::uint64_t full_state_bytes = 0;  // keys and states a holds, summed
  double wall_seconds = 0;
};

std::uint64_t CountKeys(storage::Store& store, std::map<std::string, std::string>* states) {
  std::uint64_t keys = 0;
  const Status s = store.Scan("", "", [&](std::string_view k, std::string_view v) {
    ++keys;
    if (states != nullptr) states->emplace(std::string(k), std::string(v));
    return true;
  });
  if (!s.ok()) throw std::runtime_error("scan failed: " + s.ToString());
  return keys;
}

// One repair: a holds the shared keys and `extra` (states joined into a
// only), b the shared keys. Runs until the digest trees are equal (or, with
// `rounds_in_sync`, for that many rounds once they are known to each other).
RunResult Repair(std::int64_t shared, const std::vector<std::pair<std::string, std::string>>& extra,
                 int rounds_in_sync = 0) {
  const BaseStores& base = Base(shared);
  SimWorld world(kWorldSeed);
  // Cut both ways while a is given its extra states: no frame passes, so no
  // member is known and no session starts before the measured part.
  world.Cut("a", "b");
  world.Cut("b", "a");
  SimNode a(world, "a", "b", std::make_unique<storage::MemoryStore>(Registry(), base.a, 1));
  SimNode b(world, "b", "a", std::make_unique<storage::MemoryStore>(Registry(), base.b, 2));
  MergeAll(world, *a.node, extra);
  world.RunFor(3 * kGossipIntervalMs);  // a round trims what the merges buffered
  const NodeStats a0 = a.node->stats(), b0 = b.node->stats();
  const std::uint64_t a0_frames = a.transport.ae_frames(), b0_frames = b.transport.ae_frames();
  if (a0.buffer_entries != 0 || a0.ae_sessions != 0) {
    throw std::runtime_error("the delta buffer was not emptied, or a session ran, before the link");
  }

  const auto started = std::chrono::steady_clock::now();
  const std::uint64_t from = world.now_ms();
  world.RestoreAll();
  if (rounds_in_sync > 0) {
    world.RunFor(static_cast<std::uint64_t>(rounds_in_sync) * kGossipIntervalMs);
  } else {
    while (a.node->root_hash() != b.node->root_hash()) {
      if (world.now_ms() - from > kMaxVirtualMs) {
        throw std::runtime_error("the nodes did not converge within " +
                                 std::to_string(kMaxVirtualMs / 1000) + " s of virtual time");
      }
      world.RunFor(1);
    }
  }
  RunResult r;
  r.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  r.virtual_ms = world.now_ms() - from;
  const NodeStats a1 = a.node->stats(), b1 = b.node->stats();
  r.ae_bytes = (a1.ae_bytes_sent - a0.ae_bytes_sent) + (b1.ae_bytes_sent - b0.ae_bytes_sent);
  r.ae_sessions = (a1.ae_sessions - a0.ae_sessions) + (b1.ae_sessions - b0.ae_sessions);
  r.ae_messages = (a.transport.ae_frames() - a0_frames) + (b.transport.ae_frames() - b0_frames);
  // Equal trees must mean equal stores, byte for byte.
  std::map<std::string, std::string> sa, sb;
  r.keys = CountKeys(*a.store, &sa);
  CountKeys(*b.store, &sb);
  if (sa != sb) throw std::runtime_error("equal digest trees but different states");
  for (const auto& [k, v] : sa) r.full_state_bytes += k.size() + v.size();
  return r;
}

void SetCounters(benchmark::State& state, const RunResult& r, std::int64_t shared,
                 std::int64_t differing) {
  state.counters["ae_bytes"] = static_cast<double>(r.ae_bytes);
  state.counters["ae_messages"] = static_cast<double>(r.ae_messages);
  state.counters["ae_sessions"] = static_cast<double>(r.ae_sessions);
  state.counters["virtual_ms"] = static_cast<double>(r.virtual_ms);
  state.counters["rounds"] = static_cast<double>(r.virtual_ms) / kGossipIntervalMs;
  state.counters["keys"] = static_cast<double>(r.keys);
  state.counters["full_state_bytes"] = static_cast<double>(r.full_state_bytes);
  state.counters["shared_keys"] = static_cast<double>(shared);
  state.counters["differing_keys"] = static_cast<double>(differing);
  if (differing > 0) {
    state.counters["ae_bytes_per_differing_key"] =
        static_cast<double>(r.ae_bytes) / static_cast<double>(differing);
  }
  state.counters["repair_ms"] = r.wall_seconds * 1e3;
}

// a holds `d` keys b has not (indexes after the shared ones).
void Differing(benchmark::State& state, std::int64_t shared, std::int64_t d) {
  std::vector<std::pair<std::string, std::string>> extra;
  for (std::int64_t i = 0; i < d; ++i) {
    const auto index = static_cast<std::uint64_t>(shared + i);
    extra.emplace_back(CartKey(index), CartState(index, 1));
  }
  RunResult r;
  for (auto _ : state) {
    try {
      r = Repair(shared, extra);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    state.SetIterationTime(r.wall_seconds);
  }
  if (r.keys != static_cast<std::uint64_t>(shared + d)) {
    state.SkipWithError("the nodes do not hold every key");
    return;
  }
  SetCounters(state, r, shared, d);
}

// a holds a newer state (a second increment) of `changed` of the shared keys.
void Changed(benchmark::State& state) {
  const std::int64_t shared = GetConfig().shared_keys;
  const std::int64_t d = state.range(0);
  std::vector<std::pair<std::string, std::string>> newer;
  // Spread over the shared keys (every k-th index).
  const std::int64_t step = std::max<std::int64_t>(1, shared / std::max<std::int64_t>(1, d));
  for (std::int64_t i = 0; i < d; ++i) {
    const auto index = static_cast<std::uint64_t>((i * step) % shared);
    newer.emplace_back(CartKey(index), CartState(index, 2));
  }
  RunResult r;
  for (auto _ : state) {
    try {
      r = Repair(shared, newer);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    state.SetIterationTime(r.wall_seconds);
  }
  SetCounters(state, r, shared, d);
}

// Two equal replicas: what their sessions cost.
void InSync(benchmark::State& state) {
  const std::int64_t shared = GetConfig().shared_keys;
  constexpr int kRounds = 50;
  RunResult r;
  for (auto _ : state) {
    try {
      r = Repair(shared, {}, kRounds);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
      return;
    }
    state.SetIterationTime(r.wall_seconds);
  }
  SetCounters(state, r, shared, 0);
  if (r.ae_sessions == 0) {
    state.SkipWithError("no session ran");
    return;
  }
  state.counters["ae_bytes_per_session"] =
      static_cast<double>(r.ae_bytes) / static_cast<double>(r.ae_sessions);
  state.counters["ae_messages_per_session"] =
      static_cast<double>(r.ae_messages) / static_cast<double>(r.ae_sessions);
}

void Register(const Config& config) {
  using benchmark::kMillisecond;
  const std::int64_t shared = config.shared_keys;
  benchmark::RegisterBenchmark("ReplicationAe/in_sync", InSync)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(kMillisecond);
  auto* differing = benchmark::RegisterBenchmark(
      "ReplicationAe", [shared](benchmark::State& s) { Differing(s, shared, s.range(0)); });
  differing->ArgName("differing")->Iterations(1)->UseManualTime()->Unit(kMillisecond);
  for (const std::int64_t d : {1, 10, 100, 1'000, 10'000}) differing->Arg(d);
  auto* changed = benchmark::RegisterBenchmark("ReplicationAe", Changed);
  changed->ArgName("changed")->Iterations(1)->UseManualTime()->Unit(kMillisecond);
  for (const std::int64_t d : {1, 10, 100, 1'000, 10'000}) changed->Arg(d);
  const std::int64_t tenth = std::max<std::int64_t>(1, shared / 10);
  benchmark::RegisterBenchmark("ReplicationAe/differing:100/tenth_keys",
                               [tenth](benchmark::State& s) { Differing(s, tenth, 100); })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(kMillisecond);
}

void AddContext(const Config& config) {
  AddBuildContext(config.quick);
  benchmark::AddCustomContext("ae_shared_keys", std::to_string(config.shared_keys));
  const NodeOptions defaults;
  std::uint64_t leaves = 1;
  for (int i = 0; i < defaults.tree_depth; ++i) leaves *= replication::HashTree::kFanout;
  benchmark::AddCustomContext("ae_tree_leaves", std::to_string(leaves));
  benchmark::AddCustomContext("ae_max_message_bytes", std::to_string(defaults.max_message_bytes));
  benchmark::AddCustomContext("ae_gossip_interval_ms", std::to_string(kGossipIntervalMs));
  benchmark::AddCustomContext("ae_state_bytes", std::to_string(CartState(0, 1).size()));
}

}  // namespace
}  // namespace converge::bench

int main(int argc, char** argv) {
  using converge::bench::TakeFlag;
  converge::bench::Config& config = converge::bench::GetConfig();
  std::string value;
  config.quick = TakeFlag(argc, argv, "--quick");
  config.shared_keys = config.quick ? 10'000 : 100'000;
  if (TakeFlag(argc, argv, "--ae_keys", &value)) config.shared_keys = std::stoll(value);
  converge::bench::AddContext(config);
  converge::bench::Register(config);
  return converge::bench::RunRegistered(argc, argv);
}
