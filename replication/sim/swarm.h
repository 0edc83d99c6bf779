// The swarm: many simulations over every fault mix of TESTPLAN R2/R12/R23,
// each from its own seed (docs/simulation.md, "The swarm").
//
//   sim::SwarmOptions options;
//   options.seed_base = 1000;          // seeds 1000, 1001, ... in every mix
//   options.seeds_per_mix = 2000;      // or 0 and a time budget:
//   options.budget_ms = 180'000;
//   options.on_failure = [](const sim::SwarmFailure& f) { std::cout << f.report.replay; };
//   const sim::SwarmResult result = sim::RunSwarm(options);
//
// A run is fixed by its mix and seed (SwarmMix::OptionsFor), so any failure
// replays exactly from the converge-sim line in its report. With a time
// budget, seeds are taken in order, the same seed for every mix before the
// next, so the seeds reached are always a prefix [seed_base, seed_base + n)
// of each mix and a summary says how far each got.
//
// Thread safety: RunSwarm runs simulations on `threads` threads of its own
// (one simulation per thread); the callbacks are called one at a time.

#ifndef CONVERGE_REPLICATION_SIM_SWARM_H_
#define CONVERGE_REPLICATION_SIM_SWARM_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "replication/sim/sim_cluster.h"

namespace converge::replication::sim {

// One fault mix. Cluster shape varies with the seed: 3-7 nodes, fanout 1-3.
struct SwarmMix {
  const char* name;
  double loss = 0;
  double dup = 0;
  bool reorder = false;
  int partitions = 0;
  int crashes = 0;
  int wipes = 0;
  int rollbacks = 0;
  std::uint64_t skew_ms = 0;
  int clock_jumps = 0;
  std::uint64_t hlc_max_offset_ms = crdt::Hlc::kDefaultMaxOffsetMs;
  const char* workload = "mixed";
  int replacements = 0;
  // Below the node count: the large-cluster membership (SimulationOptions).
  std::size_t members_per_message = NodeOptions{}.members_per_message;
  bool prune = false;  // NodeOptions::prune_retired_ids

  // The simulation of this mix for `seed`.
  [[nodiscard]] SimulationOptions OptionsFor(std::uint64_t seed) const;
  // Whether any fault episode is scheduled (a run of such a mix must inject one).
  [[nodiscard]] bool HasEpisodes() const {
    return partitions > 0 || crashes > 0 || wipes > 0 || rollbacks > 0 || replacements > 0;
  }
};

// Every mix, in a fixed order.
const std::vector<SwarmMix>& SwarmMixes();
// The mix named `name`, or nullptr.
const SwarmMix* FindSwarmMix(std::string_view name);

// What a mix's runs added up to.
struct SwarmMixSummary {
  std::string mix;
  std::uint64_t seeds = 0;  // runs finished: seeds [seed_base, seed_base + seeds)
  std::uint64_t failures = 0;
  std::uint64_t faults = 0;
  std::uint64_t writes_acked = 0;
  std::uint64_t acked_writes_lost = 0;
  std::uint64_t writes_lost_with_data = 0;
  std::uint64_t dots_reused = 0;
  std::uint64_t violations = 0;
  std::uint64_t retirements = 0;
  std::uint64_t timestamps_rejected = 0;
  std::uint64_t runs_without_faults = 0;  // runs of a mix with episodes that injected none
  std::vector<std::uint64_t> rounds;      // rounds to converge, sorted, converged runs only

  [[nodiscard]] std::uint64_t RoundsPercentile(double p) const;
};

struct SwarmFailure {
  std::string mix;
  std::uint64_t seed = 0;
  SimulationReport report;  // report.replay replays it
};

struct SwarmOptions {
  std::uint64_t seed_base = 1;
  // Seeds per mix; 0: as many as the budget allows.
  std::uint64_t seeds_per_mix = 0;
  // Wall-clock budget; 0: none (then seeds_per_mix must be set). Runs in
  // flight when it ends are finished.
  std::uint64_t budget_ms = 0;
  int threads = 1;
  std::vector<std::string> mixes;  // names; empty: every mix
  bool prune = false;              // every run prunes retired replica ids (as SwarmMix::prune)
  std::function<void(const SwarmFailure&)> on_failure;
  // Called after each run (for progress).
  std::function<void(const std::string& mix, std::uint64_t seed, const SimulationReport&)> on_run;
};

struct SwarmResult {
  std::uint64_t seed_base = 0;
  std::uint64_t elapsed_ms = 0;
  std::vector<SwarmMixSummary> mixes;  // in SwarmMixes() order
  std::vector<SwarmFailure> failures;  // in (seed, mix) order

  [[nodiscard]] bool ok() const { return failures.empty(); }
  [[nodiscard]] std::uint64_t runs() const;
};

// Runs the swarm. Unknown mix names or neither a budget nor a seed count:
// an empty result with one failure naming the problem (seed 0).
SwarmResult RunSwarm(const SwarmOptions& options);

// "swarm clean: seeds 2000 (1000-2999), faults 0, writes acknowledged ...":
// one line per mix, the figures docs/reliability.md reports.
std::string SummaryLine(const SwarmMixSummary& summary, std::uint64_t seed_base);

}  // namespace converge::replication::sim

#endif  // CONVERGE_REPLICATION_SIM_SWARM_H_
