// RunSwarm: see swarm.h for the contract and docs/simulation.md for the mixes.

#include "replication/sim/swarm.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>

namespace converge::replication::sim {
namespace {

constexpr std::uint64_t kHourMs = 3'600'000;

}  // namespace

SimulationOptions SwarmMix::OptionsFor(std::uint64_t seed) const {
  SimulationOptions o;
  o.seed = seed;
  o.nodes = 3 + static_cast<int>(seed % 5);   // 3..7
  o.fanout = 1 + static_cast<int>(seed % 3);  // 1..3
  o.loss = loss;
  o.duplication = dup;
  o.reorder = reorder;
  o.partitions = partitions;
  o.crashes = crashes;
  o.wipes = wipes;
  o.rollbacks = rollbacks;
  o.skew_ms = skew_ms;
  o.clock_jumps = clock_jumps;
  o.hlc_max_offset_ms = hlc_max_offset_ms;
  o.workload = workload;
  o.replacements = replacements;
  o.members_per_message = members_per_message;
  o.prune = prune;
  o.writes = 120;
  o.keys = 6;
  o.fault_window_ms = 12'000;
  o.max_rounds = 200;
  return o;
}

const std::vector<SwarmMix>& SwarmMixes() {
  static const std::vector<SwarmMix> mixes = {
      {"clean"},
      {"loss10", 0.10},
      {"loss30", 0.30},
      {"dup50", 0, 0.50},
      {"reorder", 0.05, 0.20, true},
      {"partitions", 0, 0, false, 3},
      {"partitions_lossy", 0.10, 0.10, true, 3},
      {"crashes", 0.05, 0, false, 0, 3},
      {"crashes_partitions", 0.05, 0.05, true, 2, 2},
      {"wiped", 0.05, 0, false, 1, 1, 2},
      {"rolled_back", 0.05, 0, true, 1, 1, 0, 2},
      {"everything", 0.30, 0.50, true, 3, 1, 1, 1},
      // TESTPLAN R12: clocks ±1 h apart and stepped back an hour twice,
      // within what nodes accept: last-writer-wins must follow causality all
      // the same.
      {"clock_skew", 0.05, 0, true, 1, 1, 0, 0, kHourMs, 2, 3 * kHourMs},
      // ... and clocks further apart than nodes accept: far-future writes are
      // refused until the others' clocks catch up, then converge.
      {"far_future", 0.05, 0, false, 0, 0, 0, 0, 6'000, 0, 1'000},
      // Clients that read one replica and write removes, sets and empties with
      // the context they read to another, under partitions and crashes.
      {"client_contexts", 0.05, 0.05, true, 2, 2, 0, 0, 0, 0, crdt::Hlc::kDefaultMaxOffsetMs,
       "cart-context"},
      // Members that come and go (issue 11): crashes, and nodes destroyed for
      // good and replaced under new names, the old ones forgotten by the
      // operator once dead; the settled cluster lists only its live nodes.
      {"churn", 0.05, 0, true, 1, 6, 0, 0, 0, 0, crdt::Hlc::kDefaultMaxOffsetMs, "mixed", 2},
      // The large-cluster membership (bounded member changes, probes,
      // suspicion and refutation) at swarm sizes: one member entry a
      // message, under loss, partitions, crashes and a replacement.
      {"swim", 0.10, 0.05, true, 2, 2, 0, 0, 0, 0, crdt::Hlc::kDefaultMaxOffsetMs, "mixed", 1, 1},
  };
  return mixes;
}

const SwarmMix* FindSwarmMix(std::string_view name) {
  for (const SwarmMix& mix : SwarmMixes()) {
    if (name == mix.name) return &mix;
  }
  return nullptr;
}

std::uint64_t SwarmMixSummary::RoundsPercentile(double p) const {
  if (rounds.empty()) return 0;
  const auto index = static_cast<std::size_t>(p * static_cast<double>(rounds.size() - 1) + 0.5);
  return rounds[std::min(index, rounds.size() - 1)];
}

std::uint64_t SwarmResult::runs() const {
  std::uint64_t n = 0;
  for (const SwarmMixSummary& m : mixes) n += m.seeds;
  return n;
}

SwarmResult RunSwarm(const SwarmOptions& options) {
  SwarmResult result;
  result.seed_base = options.seed_base;
  const auto fail = [&](std::string why) {
    SwarmFailure f;
    f.report.violations.push_back(std::move(why));
    result.failures.push_back(std::move(f));
    return result;
  };
  std::vector<const SwarmMix*> mixes;
  for (const std::string& name : options.mixes) {
    const SwarmMix* mix = FindSwarmMix(name);
    if (mix == nullptr) return fail("unknown swarm mix '" + name + "'");
    if (std::find(mixes.begin(), mixes.end(), mix) == mixes.end()) mixes.push_back(mix);
  }
  if (mixes.empty()) {
    for (const SwarmMix& mix : SwarmMixes()) mixes.push_back(&mix);
  }
  if (options.seeds_per_mix == 0 && options.budget_ms == 0) {
    return fail("a swarm needs a seed count or a time budget");
  }
  // In SwarmMixes() order whatever order they were named in.
  std::sort(mixes.begin(), mixes.end());
  for (const SwarmMix* mix : mixes) {
    SwarmMixSummary summary;
    summary.mix = mix->name;
    result.mixes.push_back(std::move(summary));
  }

  // Work item k is seed seed_base + k / mixes, mix k % mixes: every mix gets
  // the same seeds, in order, whenever the budget stops the swarm.
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed_ms = [&] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start)
                                          .count());
  };
  const std::uint64_t total = options.seeds_per_mix == 0 ? std::numeric_limits<std::uint64_t>::max()
                                                         : options.seeds_per_mix * mixes.size();
  std::atomic<std::uint64_t> next{0};
  std::mutex mu;  // guards result and the callbacks
  // Per mix, the seeds finished out of order, so that `seeds` only counts a
  // prefix: [seed_base, seed_base + seeds) all ran.
  std::vector<std::vector<bool>> finished(mixes.size());
  const auto worker = [&] {
    for (;;) {
      if (options.budget_ms != 0 && elapsed_ms() >= options.budget_ms) return;
      const std::uint64_t k = next.fetch_add(1);
      if (k >= total) return;
      const std::size_t m = static_cast<std::size_t>(k % mixes.size());
      const std::uint64_t offset = k / mixes.size();
      const std::uint64_t seed = options.seed_base + offset;
      const SwarmMix& mix = *mixes[m];
      SimulationOptions run = mix.OptionsFor(seed);
      run.prune = run.prune || options.prune;
      SimulationReport report = RunSimulation(run);

      const std::lock_guard lock(mu);
      SwarmMixSummary& s = result.mixes[m];
      std::vector<bool>& done = finished[m];
      if (done.size() <= offset) done.resize(offset + 1, false);
      done[offset] = true;
      while (s.seeds < done.size() && done[s.seeds]) ++s.seeds;
      s.faults += report.faults_injected;
      s.writes_acked += report.writes_acked;
      s.acked_writes_lost += report.acked_writes_lost;
      s.writes_lost_with_data += report.writes_lost_with_data;
      s.dots_reused += report.dots_reused;
      s.violations += report.violations.size();
      s.retirements += report.retirements;
      s.timestamps_rejected += report.timestamps_rejected;
      if (report.converged) {
        s.rounds.insert(std::upper_bound(s.rounds.begin(), s.rounds.end(), report.rounds),
                        report.rounds);
      }
      if (mix.HasEpisodes() && report.faults_injected == 0) ++s.runs_without_faults;
      if (options.on_run) options.on_run(mix.name, seed, report);
      if (!report.ok()) {
        ++s.failures;
        SwarmFailure f{mix.name, seed, std::move(report)};
        if (options.on_failure) options.on_failure(f);
        result.failures.push_back(std::move(f));
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, options.threads); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  // A run finished after the prefix stopped (the budget ended while an
  // earlier seed was still running elsewhere) is not counted in `seeds`, but
  // its failures are kept: they are real.
  std::sort(result.failures.begin(), result.failures.end(),
            [](const SwarmFailure& a, const SwarmFailure& b) {
              return std::tie(a.seed, a.mix) < std::tie(b.seed, b.mix);
            });
  result.elapsed_ms = elapsed_ms();
  return result;
}

std::string SummaryLine(const SwarmMixSummary& s, std::uint64_t seed_base) {
  std::ostringstream out;
  out << "swarm " << s.mix << ": seeds " << s.seeds;
  if (s.seeds > 0) out << " (" << seed_base << "-" << seed_base + s.seeds - 1 << ")";
  out << ", failures " << s.failures << ", faults " << s.faults << ", writes acknowledged "
      << s.writes_acked << ", lost " << s.acked_writes_lost << ", lost with their only copy "
      << s.writes_lost_with_data << ", dots reused " << s.dots_reused << ", violations "
      << s.violations << ", retirements " << s.retirements << ", far-future timestamps refused "
      << s.timestamps_rejected << ", rounds p50 " << s.RoundsPercentile(0.5) << " p99 "
      << s.RoundsPercentile(0.99) << " max " << (s.rounds.empty() ? 0 : s.rounds.back());
  return out.str();
}

}  // namespace converge::replication::sim
