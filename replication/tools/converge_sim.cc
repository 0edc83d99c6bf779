// converge-sim: a seeded simulation of a whole converge cluster under a
// workload of random writes and faults, checked for convergence and for
// acknowledged writes lost (replication/sim/sim_cluster.h,
// docs/simulation.md).
//
//   converge-sim --nodes 5 --fanout 2 --seed 7 --loss 0.2 --dup 0.1 --reorder
//                --partitions 2 --crashes 1 --json
//
// Exit status: 0 when the nodes converged with no violation, 1 otherwise,
// 2 for bad flags. The same arguments always give the same run (trace_hash).

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "replication/sim/sim_cluster.h"

namespace {

using converge::replication::sim::SimulationOptions;
using converge::replication::sim::SimulationReport;

nlohmann::json ToJson(const SimulationOptions& o, const SimulationReport& r) {
  nlohmann::json j;
  j["converged"] = r.converged;
  j["rounds"] = r.rounds;
  j["convergence_ms"] = r.convergence_ms;
  j["violations"] = r.violations.size();
  j["violation_details"] = r.violations;
  j["acked_writes_lost"] = r.acked_writes_lost;
  j["writes_issued"] = r.writes_issued;
  j["writes_acked"] = r.writes_acked;
  j["writes_lost_with_data"] = r.writes_lost_with_data;
  j["dots_reused"] = r.dots_reused;
  j["faults_injected"] = r.faults_injected;
  j["partitions"] = r.partitions;
  j["crashes"] = r.crashes;
  j["wipes"] = r.wipes;
  j["rollbacks"] = r.rollbacks;
  j["retirements"] = r.retirements;
  j["clock_jumps"] = r.clock_jumps;
  j["timestamps_rejected"] = r.timestamps_rejected;
  j["keys"] = r.keys;
  j["bytes_per_node"] = r.bytes_per_node;
  j["frames_delivered"] = r.frames_delivered;
  j["ae_keys_repaired"] = r.ae_keys_repaired;
  j["intervals_rejected"] = r.intervals_rejected;
  j["events"] = r.events;
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
  j["trace_hash"] = hash;
  j["replay"] = r.replay;
  j["nodes"] = o.nodes;
  j["seed"] = o.seed;
  return j;
}

void PrintHuman(const SimulationOptions& o, const SimulationReport& r) {
  std::cout << "converge-sim: " << o.nodes << " nodes, fanout " << o.fanout << ", seed " << o.seed
            << ", workload " << o.workload << '\n'
            << "  faults injected: " << r.faults_injected << " (" << r.partitions << " partitions, "
            << r.crashes << " crashes, " << r.wipes << " wiped, " << r.rollbacks
            << " rolled back)\n"
            << "  writes: " << r.writes_issued << " made, " << r.writes_acked << " acknowledged, "
            << r.acked_writes_lost << " acknowledged lost, " << r.writes_lost_with_data
            << " lost with their only copy\n"
            << "  " << (r.converged ? "converged" : "DID NOT CONVERGE");
  if (r.converged) {
    std::cout << " " << r.rounds << " rounds (" << r.convergence_ms << " ms) after the last fault";
  }
  std::cout << "; " << r.keys << " keys, " << r.bytes_per_node << " bytes sent per node\n";
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(r.trace_hash));
  std::cout << "  trace " << hash << '\n';
  for (const std::string& v : r.violations) std::cout << "  VIOLATION: " << v << '\n';
  if (!r.ok()) std::cout << "  replay: " << r.replay << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  SimulationOptions o;
  bool json = false;
  CLI::App app{
      "converge-sim: simulate a converge cluster under faults, deterministically from a seed, "
      "and check that it converges without losing an acknowledged write"};
  app.add_option("--nodes", o.nodes, "replicas in the cluster")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--fanout", o.fanout, "peers each node gossips with per round")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--seed", o.seed, "the seed: same seed and flags, same run")
      ->capture_default_str();
  app.add_option("--loss", o.loss, "probability that a frame is lost")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.95));
  app.add_option("--dup", o.duplication, "probability that a frame is delivered twice")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--reorder", o.reorder, "random delays of 1-40 ms, so frames overtake each other");
  app.add_option("--partitions", o.partitions,
                 "partition episodes (splits, one-way cuts, link cuts; healed link by link)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--crashes", o.crashes, "crash and restart episodes (data kept)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--wipes", o.wipes, "crash and restart episodes with the data directory lost")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--rollbacks", o.rollbacks,
                 "crash and restart episodes with the data directory rolled back to an older copy")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--skew-ms", o.skew_ms, "each node's wall clock off by up to this much (±)")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{86'400'000}));
  app.add_option("--clock-jumps", o.clock_jumps, "wall clocks stepped back, at random times")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--jump-ms", o.jump_ms, "how far back a clock jump goes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{86'400'000}));
  app.add_option("--hlc-max-offset-ms", o.hlc_max_offset_ms,
                 "nodes refuse LWW timestamps further ahead of their clock than this")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{86'400'000}));
  std::string workloads;
  for (const auto& w : converge::replication::sim::Workloads()) {
    workloads += "\n  " + w.name + ": " + w.description;
  }
  app.add_option("--workload", o.workload, "what the writes do:" + workloads)
      ->capture_default_str()
      ->check([](const std::string& name) {
        for (const auto& w : converge::replication::sim::Workloads()) {
          if (w.name == name) return std::string();
        }
        return "unknown workload '" + name + "'";
      });
  app.add_option("--writes", o.writes, "writes during the fault window")
      ->capture_default_str()
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--keys", o.keys, "keys the writes go to")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_option("--majority-percent", o.majority_percent, "writes acknowledged by a majority")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  app.add_option("--all-percent", o.all_percent, "writes acknowledged by every replica")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  app.add_option("--gossip-interval-ms", o.gossip_interval_ms, "virtual time between rounds")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{60'000}));
  app.add_option("--window-ms", o.fault_window_ms, "virtual time in which writes and faults happen")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1'000}, std::uint64_t{3'600'000}));
  app.add_option("--max-rounds", o.max_rounds,
                 "rounds after the last fault within which the nodes must converge")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  app.add_flag("--json", json, "print one JSON object instead of the human report");
  try {
    app.parse(argc, argv);
    if (o.majority_percent + o.all_percent > 100) {
      throw CLI::ValidationError("--majority-percent + --all-percent must not exceed 100");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  const SimulationReport report = converge::replication::sim::RunSimulation(o);
  if (json) {
    std::cout << ToJson(o, report).dump() << '\n';
  } else {
    PrintHuman(o, report);
  }
  return report.ok() ? 0 : 1;
}
