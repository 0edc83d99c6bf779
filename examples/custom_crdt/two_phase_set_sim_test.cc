// The example TwoPhaseSet replicated by real converge nodes in the cluster
// simulator, under loss, partitions and crashes: the program of
// docs/simulation.md ("Your own CRDT types"), as a test.

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include "examples/custom_crdt/two_phase_set.h"
#include "examples/custom_crdt/two_phase_set_codec.h"
#include "replication/sim/sim_cluster.h"

namespace {

using namespace converge;
using Set = example::TwoPhaseSet<std::string>;

TEST(TwoPhaseSetSimulation, ConvergesUnderFaultsWithoutLosingAcknowledgedWrites) {
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  registry->Register<Set>();

  replication::sim::Workload workload = [](std::mt19937_64& rng, int keys) {
    const std::string key = "tp:" + std::to_string(rng() % static_cast<std::uint64_t>(keys));
    const std::string element = "e" + std::to_string(rng() % 10);
    if (rng() % 4 == 0) {
      return replication::sim::MakeWrite<Set>(
          key, [element](Set& s, crdt::ReplicaId) { return s.Remove(element); });
    }
    return replication::sim::MakeWrite<Set>(
        key, [element](Set& s, crdt::ReplicaId r) { return s.Add(r, element); });
  };

  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    replication::sim::SimulationOptions options;
    options.seed = seed;
    options.nodes = 5;
    options.loss = 0.2;
    options.partitions = 2;
    options.crashes = 1;
    options.writes = 100;
    options.fault_window_ms = 10'000;
    const auto report = replication::sim::RunSimulation(options, workload, registry);
    ASSERT_TRUE(report.ok()) << (report.violations.empty() ? "" : report.violations.front())
                             << "\n  " << report.replay;
    EXPECT_GT(report.writes_acked, 0u);
  }
}

}  // namespace
