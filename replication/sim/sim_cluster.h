// A whole cluster in the deterministic simulator, with a workload of random
// writes and a schedule of faults, checked against an oracle
// (docs/simulation.md). converge-sim is a command line over RunSimulation;
// the swarm tests run it for hundreds of seeds.
//
//   sim::SimulationOptions options;
//   options.nodes = 5;
//   options.seed = 42;
//   options.loss = 0.1;
//   options.partitions = 2;
//   const sim::SimulationReport report = sim::RunSimulation(options);
//   if (!report.ok()) std::cerr << report.replay << '\n';
//
// The oracle. Every write's delta is recorded when the node's mutator makes
// it, and whether the node acknowledged it. After the last fault the run
// waits (in gossip rounds) until every node holds the same canonical bytes
// for every key, then checks, per key, in the CRDT's own lattice order:
//   - every acknowledged delta is below the final state (nothing
//     acknowledged was lost — an observed remove that came later still
//     leaves the delta below the state, so removes need no special case);
//   - the final state is below the join of every delta ever made (nothing
//     was invented);
//   - no dot was issued twice in a key (dot safety across restarts).
// A write may be lost only with the data it lived in: when a node's data
// directory is wiped or rolled back, the writes that no other store (and not
// the restored copy) holds at that moment are excused, and counted apart.
//
// Same options, same workload: same run, event for event (trace_hash).
// Not thread-safe; one simulation per thread.

#ifndef CONVERGE_REPLICATION_SIM_SIM_CLUSTER_H_
#define CONVERGE_REPLICATION_SIM_SIM_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/codec/registry.h"
#include "crdt/hlc.h"
#include "replication/node.h"

namespace converge::replication::sim {

struct SimulationOptions {
  int nodes = 3;
  int fanout = 2;
  // NodeOptions::members_per_message: below the node count, the cluster runs
  // the large-cluster membership (bounded changes, probes) at any size.
  std::size_t members_per_message = NodeOptions{}.members_per_message;
  std::uint64_t seed = 1;
  // Network faults, for every frame of the whole run.
  double loss = 0.0;         // probability a frame is dropped
  double duplication = 0.0;  // probability a frame is delivered twice
  bool reorder = false;      // delays of 1-40 ms, so frames overtake each other
  bool prune = false;        // NodeOptions::prune_retired_ids
  // Fault episodes, at random times in the fault window.
  int partitions = 0;  // symmetric splits, one-way cuts or random link cuts,
                       // healed link by link in random order
  int crashes = 0;     // a node crashes and restarts with its data
  int wipes = 0;       // ... restarts with its data directory lost
  int rollbacks = 0;   // ... restarts with its data directory rolled back
  // A node destroyed for good (its data gone) and a new one started in its
  // place under a new name; the operator forgets the old one (Node::Forget
  // on a live node, once it is dead).
  int replacements = 0;
  // Clocks: each node's wall clock is off by up to ±skew_ms, and
  // `clock_jumps` times a node's wall clock jumps back by jump_ms. Nodes
  // refuse last-writer-wins timestamps more than hlc_max_offset_ms ahead of
  // their own clock (until their clock catches up).
  std::uint64_t skew_ms = 0;
  int clock_jumps = 0;
  std::uint64_t jump_ms = 3'600'000;
  std::uint64_t hlc_max_offset_ms = crdt::Hlc::kDefaultMaxOffsetMs;
  // The workload: `writes` writes at random times in the fault window, to
  // random live nodes, over `keys` keys. Consistency: local, with
  // `majority_percent` % majority and `all_percent` % all writes.
  std::string workload = "mixed";  // a name from Workloads(), or a custom one
  int writes = 200;
  int keys = 8;
  int majority_percent = 20;
  int all_percent = 10;
  std::uint64_t gossip_interval_ms = 100;
  std::uint64_t fault_window_ms = 20'000;
  // Gossip rounds after the last fault within which the nodes must converge.
  int max_rounds = 300;
  // Where to write the run's timeline (starts, crashes, restarts, cuts,
  // heals, clock steps, writes and their answers, and what differs when it
  // did not converge); not part of the run (ReplayCommand leaves it out).
  std::ostream* trace = nullptr;
};

struct SimulationReport {
  bool converged = false;
  // Gossip rounds from the last fault (heal, restart) until every node held
  // the same canonical bytes for every key.
  std::uint64_t rounds = 0;
  std::uint64_t convergence_ms = 0;
  std::vector<std::string> violations;      // empty when the run is correct
  std::uint64_t writes_issued = 0;          // mutators that ran (deltas made)
  std::uint64_t writes_acked = 0;           // acknowledged to the client
  std::uint64_t acked_writes_lost = 0;      // acknowledged, not excused, missing
  std::uint64_t writes_lost_with_data = 0;  // excused: their only copies were wiped
  std::uint64_t dots_reused = 0;
  std::uint64_t faults_injected = 0;  // partitions + crashes + wipes + rollbacks done
  std::uint64_t partitions = 0, crashes = 0, wipes = 0, rollbacks = 0, replacements = 0;
  std::uint64_t retirements = 0;  // new incarnations, summed over nodes
  std::uint64_t clock_jumps = 0;
  std::uint64_t timestamps_rejected = 0;  // far-future LWW writes refused (for a while)
  std::uint64_t keys = 0;                 // keys in the converged state
  std::uint64_t bytes_per_node = 0;
  // Bytes a node sends per round once the cluster is at rest (the second
  // half of the settling period: converged, no faults, no writes).
  std::uint64_t rest_bytes_per_node_round = 0;
  std::uint64_t frames_delivered = 0;
  // Frames sent (delivered, lost, or to a node that was down) and their
  // mean size: what the metadata in them costs, whatever the faults do to
  // delivery (bytes_per_node / frames_delivered also grows when frames go
  // to nodes that are down).
  std::uint64_t frames_sent = 0;
  std::uint64_t bytes_per_frame = 0;
  // Pruning of retired replica ids: the highest level any node reached.
  std::uint64_t prune_level = 0;
  std::uint64_t ae_keys_repaired = 0;
  std::uint64_t intervals_rejected = 0;
  // Metadata, for long lives: the largest frame any node sent; once settled,
  // the most replica ids in any key's causal context (or counter), and the
  // most members any node lists (itself included).
  std::uint64_t max_gossip_frame_bytes = 0;
  std::uint64_t max_context_replicas = 0;
  std::uint64_t members_max = 0;
  std::uint64_t trace_hash = 0;
  std::uint64_t events = 0;
  std::string replay;  // the converge-sim command that replays this run

  [[nodiscard]] bool ok() const { return converged && violations.empty(); }
};

// One write of a workload, ready to be submitted to a node. Made by
// MakeWrite, which records the delta and the dots the mutator issued.
struct Write {
  struct Record {
    std::string key;
    std::string delta;  // encoded; empty until the mutator ran, or a no-op
    // Dots the mutator issued in the key: (replica, counter).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> new_dots;
    bool done = false;
    Status status;
    // The node's pruning level when the mutator ran: the naming of `delta`
    // and `new_dots` (docs/replication.md, "Pruning retired replica ids").
    std::uint64_t level = 0;
    // Called once the node answered (the simulation checks, at that moment,
    // that a majority/all write is held by as many stores as it claims).
    std::function<void()> on_done;
    // Optional, set by the workload: a check of the converged state of the
    // key for this (acknowledged) write, beyond "its delta is below the
    // state" — a violation's description, or nullopt. (The LWW workload
    // checks causality: a write that observed the winner must have won.)
    std::function<std::optional<std::string>(const std::optional<std::string>& state)> check;
    // Optional, like `check`, given also every write to the key that ran
    // (their deltas): e.g. "my dot is dead only if a write that saw it
    // removed it".
    std::function<std::optional<std::string>(const std::optional<std::string>& state,
                                             const std::vector<const Record*>& key_writes)>
        check_history;
  };
  std::string key;
  // Optional: a client's read before the write, at another replica (one that
  // is up, chosen by the simulation; the write's own when no other is up).
  // The write then acts on what the read saw (client causal contexts).
  std::function<void(Node& reader)> read;
  std::function<void(Node& node, WriteConsistency consistency, std::shared_ptr<Record> record)>
      submit;
};

// A write of CRDT type T (registered in the registry the run uses):
// mutate(T& state, crdt::ReplicaId self) -> T delta, as for Node::Update.
template <class T, class F>
Write MakeWrite(std::string key, F mutate) {
  Write write;
  write.key = key;
  write.submit = [key = std::move(key), mutate = std::move(mutate)](
                     Node& node, WriteConsistency consistency,
                     std::shared_ptr<Write::Record> record) {
    record->key = key;
    node.Update<T>(
        key,
        [mutate, record, &node](T& state, crdt::ReplicaId self) {
          record->level = node.stats().prune_level;
          std::uint64_t before = 0;
          if constexpr (crdt::CausalCrdt<T>) before = state.context().Max(self);
          T delta = mutate(state, self);
          if (!delta.IsBottom()) record->delta = codec::Encode(delta);
          if constexpr (crdt::CausalCrdt<T>) {
            delta.context().ForEachDot([&](const crdt::Dot& dot) {
              if (dot.replica == self && dot.counter > before)
                record->new_dots.emplace_back(dot.replica.value(), dot.counter);
            });
          }
          return delta;
        },
        consistency,
        [record](StatusOr<T> result) {
          record->done = true;
          record->status = result.status();
          if (record->on_done) record->on_done();
        });
  };
  return write;
}

// Makes the next write; `rng` is the run's (use nothing else, to stay
// deterministic). `keys` is SimulationOptions::keys.
using Workload = std::function<Write(std::mt19937_64& rng, int keys)>;

struct NamedWorkload {
  std::string name;
  std::string description;
  Workload make;
};

// The built-in workloads: "cart" (OrMap<string, CausalCounter>: add, set,
// remove and clear lines), "cart-context" (carts whose removes, sets and
// empties act on what a client read at another replica),
// "set" (OrSet<string> adds and removes),
// "counter" (GCounter and PnCounter), "lww" (LwwRegister<string> stamped by
// the node's hybrid clock) and "mixed" (all of them).
const std::vector<NamedWorkload>& Workloads();

// Runs one simulation. `workload` empty: the built-in one named by
// options.workload. `registry` must know every type the workload writes
// (null: TypeRegistry::WithBuiltins()).
SimulationReport RunSimulation(const SimulationOptions& options, Workload workload = {},
                               std::shared_ptr<const codec::TypeRegistry> registry = nullptr);

// The converge-sim command line that runs `options` again.
std::string ReplayCommand(const SimulationOptions& options);

// The options of a replay command (the inverse of ReplayCommand): "converge-sim"
// followed by the flags ReplayCommand writes, in any order. Anything else
// is an InvalidArgument naming it. Regression seeds are kept as such lines.
StatusOr<SimulationOptions> ParseReplayCommand(std::string_view line);

}  // namespace converge::replication::sim

#endif  // CONVERGE_REPLICATION_SIM_SIM_CLUSTER_H_
