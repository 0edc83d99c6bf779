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
//
//   converge-sim --swarm --budget-s 180 [--seed-base B] [--mix NAME]...
//
// runs every fault mix of the swarm (replication/sim/swarm.h) on fresh seeds
// until the budget is spent (or --seeds-per-mix are done), prints the replay
// line of every failing run and one summary line per mix. Exit 1 if any run
// failed.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "replication/sim/sim_cluster.h"
#include "replication/sim/swarm.h"

namespace {

using converge::replication::sim::SimulationOptions;
using converge::replication::sim::SimulationReport;
namespace sim = converge::replication::sim;

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
  j["replacements"] = r.replacements;
  j["max_gossip_frame_bytes"] = r.max_gossip_frame_bytes;
  j["max_context_replicas"] = r.max_context_replicas;
  j["members_max"] = r.members_max;
  j["retirements"] = r.retirements;
  j["clock_jumps"] = r.clock_jumps;
  j["timestamps_rejected"] = r.timestamps_rejected;
  j["keys"] = r.keys;
  j["bytes_per_node"] = r.bytes_per_node;
  j["rest_bytes_per_node_round"] = r.rest_bytes_per_node_round;
  j["frames_delivered"] = r.frames_delivered;
  j["frames_sent"] = r.frames_sent;
  j["bytes_per_frame"] = r.bytes_per_frame;
  j["prune_level"] = r.prune_level;
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

struct SwarmFlags {
  bool swarm = false;
  double budget_s = 0;
  std::uint64_t seeds_per_mix = 0;
  std::uint64_t seed_base = 0;
  std::vector<std::string> mixes;
  int threads = 0;
  bool prune = false;
};

int RunSwarm(const SwarmFlags& flags, bool json) {
  sim::SwarmOptions options;
  options.seed_base = flags.seed_base;
  if (options.seed_base == 0) {
    // Fresh seeds every time, in a range a person can type back in.
    std::random_device device;
    options.seed_base = 1 + (((std::uint64_t{device()} << 32) | device()) % 1'000'000'000);
  }
  options.seeds_per_mix = flags.seeds_per_mix;
  options.budget_ms = static_cast<std::uint64_t>(flags.budget_s * 1000.0);
  options.threads = flags.threads > 0
                        ? flags.threads
                        : static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  options.mixes = flags.mixes;
  options.prune = flags.prune;
  if (!json) {
    std::cout << "converge-sim --swarm: seed base " << options.seed_base << ", ";
    if (options.seeds_per_mix > 0) std::cout << options.seeds_per_mix << " seeds per mix, ";
    if (options.budget_ms > 0) std::cout << "budget " << flags.budget_s << " s, ";
    std::cout << options.threads << " threads" << (options.prune ? ", pruning on" : "")
              << std::endl;
    options.on_failure = [](const sim::SwarmFailure& f) {
      std::cout << "FAILED mix " << f.mix << " seed " << f.seed << ": "
                << (f.report.violations.empty() ? "" : f.report.violations.front())
                << "\n  replay: " << f.report.replay << std::endl;
    };
  }
  const sim::SwarmResult result = sim::RunSwarm(options);
  if (result.mixes.empty()) {  // refused before running anything
    std::cerr << "converge-sim: " << result.failures.front().report.violations.front() << '\n';
    return 2;
  }
  std::uint64_t min_seeds = std::numeric_limits<std::uint64_t>::max();
  for (const sim::SwarmMixSummary& m : result.mixes) min_seeds = std::min(min_seeds, m.seeds);
  if (json) {
    nlohmann::json j;
    j["seed_base"] = result.seed_base;
    j["runs"] = result.runs();
    j["elapsed_ms"] = result.elapsed_ms;
    j["failures"] = result.failures.size();
    nlohmann::json failures = nlohmann::json::array();
    for (const sim::SwarmFailure& f : result.failures) {
      failures.push_back({{"mix", f.mix},
                          {"seed", f.seed},
                          {"violations", f.report.violations},
                          {"replay", f.report.replay}});
    }
    j["failure_details"] = failures;
    nlohmann::json mixes = nlohmann::json::array();
    for (const sim::SwarmMixSummary& m : result.mixes) {
      mixes.push_back({{"mix", m.mix},
                       {"seeds", m.seeds},
                       {"failures", m.failures},
                       {"faults", m.faults},
                       {"writes_acked", m.writes_acked},
                       {"acked_writes_lost", m.acked_writes_lost},
                       {"writes_lost_with_data", m.writes_lost_with_data},
                       {"dots_reused", m.dots_reused},
                       {"violations", m.violations},
                       {"retirements", m.retirements},
                       {"timestamps_rejected", m.timestamps_rejected},
                       {"runs_without_faults", m.runs_without_faults},
                       {"rounds_p50", m.RoundsPercentile(0.5)},
                       {"rounds_p99", m.RoundsPercentile(0.99)},
                       {"rounds_max", m.rounds.empty() ? 0 : m.rounds.back()}});
    }
    j["mixes"] = mixes;
    std::cout << j.dump() << '\n';
  } else {
    for (const sim::SwarmMixSummary& m : result.mixes) {
      std::cout << sim::SummaryLine(m, result.seed_base) << '\n';
    }
    std::cout << "converge-sim --swarm: " << result.runs() << " runs in "
              << static_cast<double>(result.elapsed_ms) / 1000.0 << " s, " << result.failures.size()
              << " failed; seed base " << result.seed_base << " (rerun: converge-sim --swarm "
              << "--seed-base " << result.seed_base << " --seeds-per-mix " << min_seeds << ")\n";
  }
  return result.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  SimulationOptions o;
  bool json = false;
  SwarmFlags swarm;
  CLI::App app{
      "converge-sim: simulate a converge cluster under faults, deterministically from a seed, "
      "and check that it converges without losing an acknowledged write"};
  app.add_option("--nodes", o.nodes, "replicas in the cluster")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--fanout", o.fanout, "peers each node gossips with per round")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--members-per-message", o.members_per_message,
                 "member entries a gossip message carries; a cluster with more other members "
                 "runs the large-cluster membership (bounded changes, probes)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  app.add_option("--seed", o.seed, "the seed: same seed and flags, same run")
      ->capture_default_str();
  app.add_option("--loss", o.loss, "probability that a frame is lost")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.95));
  app.add_option("--dup", o.duplication, "probability that a frame is delivered twice")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--reorder", o.reorder, "random delays of 1-40 ms, so frames overtake each other");
  app.add_flag("--prune", o.prune,
               "nodes prune retired replica ids from version vectors (NodeOptions::"
               "prune_retired_ids; docs/replication.md); with --swarm: in every run");
  app.add_option("--partitions", o.partitions,
                 "partition episodes (splits, one-way cuts, link cuts; healed link by link)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--crashes", o.crashes, "crash and restart episodes (data kept)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100'000));
  app.add_option("--wipes", o.wipes, "crash and restart episodes with the data directory lost")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--rollbacks", o.rollbacks,
                 "crash and restart episodes with the data directory rolled back to an older copy")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--replacements", o.replacements,
                 "nodes destroyed for good, each replaced by a new node under a new name (the "
                 "operator forgets the old one once it is dead)")
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
  bool trace = false;
  app.add_flag("--trace", trace,
               "print the run's timeline on stderr: starts, crashes, restarts, cuts, heals, clock "
               "steps, writes and their answers");
  // The swarm: many runs of the fixed fault mixes instead of one run.
  app.add_flag("--swarm", swarm.swarm,
               "run every swarm fault mix on fresh seeds (docs/simulation.md); the cluster and "
               "fault flags above do not apply");
  app.add_option("--budget-s", swarm.budget_s, "with --swarm: stop starting runs after this long")
      ->check(CLI::Range(0.001, 30.0 * 86'400));
  app.add_option("--seeds-per-mix", swarm.seeds_per_mix, "with --swarm: at most this many seeds")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
  app.add_option("--seed-base", swarm.seed_base,
                 "with --swarm: the first seed of every mix (default: a random one, printed)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 62));
  std::string mix_names;
  for (const sim::SwarmMix& m : sim::SwarmMixes()) mix_names += std::string(" ") + m.name;
  app.add_option("--mix", swarm.mixes, "with --swarm: only this mix (repeatable):" + mix_names)
      ->check([](const std::string& name) {
        return sim::FindSwarmMix(name) != nullptr ? std::string()
                                                  : "unknown swarm mix '" + name + "'";
      });
  app.add_option("--threads", swarm.threads, "with --swarm: parallel runs (default: one per core)")
      ->check(CLI::Range(1, 256));
  try {
    app.parse(argc, argv);
    if (o.majority_percent + o.all_percent > 100) {
      throw CLI::ValidationError("--majority-percent + --all-percent must not exceed 100");
    }
    static constexpr const char* kSwarmOnly[] = {"--budget-s", "--seeds-per-mix", "--seed-base",
                                                 "--mix", "--threads"};
    static constexpr const char* kRunOnly[] = {"--nodes",
                                               "--fanout",
                                               "--members-per-message",
                                               "--seed",
                                               "--loss",
                                               "--dup",
                                               "--reorder",
                                               "--partitions",
                                               "--crashes",
                                               "--wipes",
                                               "--rollbacks",
                                               "--replacements",
                                               "--skew-ms",
                                               "--clock-jumps",
                                               "--jump-ms",
                                               "--hlc-max-offset-ms",
                                               "--workload",
                                               "--writes",
                                               "--keys",
                                               "--majority-percent",
                                               "--all-percent",
                                               "--gossip-interval-ms",
                                               "--window-ms",
                                               "--max-rounds"};
    if (swarm.swarm) {
      for (const char* flag : kRunOnly) {
        if (app.count(flag) > 0) {
          throw CLI::ValidationError(std::string(flag) +
                                     " does not apply to --swarm (each mix fixes it)");
        }
      }
      if (swarm.budget_s == 0 && swarm.seeds_per_mix == 0) {
        throw CLI::ValidationError("--swarm needs --budget-s or --seeds-per-mix");
      }
    } else {
      for (const char* flag : kSwarmOnly) {
        if (app.count(flag) > 0) throw CLI::ValidationError(std::string(flag) + " needs --swarm");
      }
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (swarm.swarm) {
    if (trace) {
      std::cerr << "converge-sim: --trace applies to one run (replay a failing seed with it)\n";
      return 2;
    }
    swarm.prune = o.prune;
    return RunSwarm(swarm, json);
  }
  if (trace) o.trace = &std::cerr;
  const SimulationReport report = converge::replication::sim::RunSimulation(o);
  if (json) {
    std::cout << ToJson(o, report).dump() << '\n';
  } else {
    PrintHuman(o, report);
  }
  return report.ok() ? 0 : 1;
}
