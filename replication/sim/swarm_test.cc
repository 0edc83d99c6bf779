// The simulation swarm (label "simulation"): whole clusters under every
// fault mix of TESTPLAN R2, many seeds each. Every run must converge within
// its round bound after the last fault, with no violation and no
// acknowledged write lost. A failing seed prints its converge-sim replay
// command.
//
// CONVERGE_SWARM_SEEDS=N runs N seeds per mix instead of the default;
// CONVERGE_SWARM_FIRST_SEED shifts them. (The soak and the time-boxed
// random-seed swarm run converge-sim --swarm: replication/CMakeLists.txt.)
// Every seed that ever failed is replayed from regression_seeds.txt.

#include "replication/sim/swarm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "crdt/crdt.h"
#include "replication/sim/sim_cluster.h"

namespace converge::replication::sim {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::atoi(v);
}

class SwarmTest : public ::testing::TestWithParam<SwarmMix> {};

TEST_P(SwarmTest, EverySeedConvergesWithoutLosingAcknowledgedWrites) {
  const SwarmMix& mix = GetParam();
  const int seeds = EnvInt("CONVERGE_SWARM_SEEDS", 25);
  const std::uint64_t first = static_cast<std::uint64_t>(EnvInt("CONVERGE_SWARM_FIRST_SEED", 1));
  std::vector<std::uint64_t> rounds;
  std::uint64_t faults = 0, acked = 0, lost_with_data = 0, retirements = 0, refused = 0;
  for (std::uint64_t seed = first; seed < first + static_cast<std::uint64_t>(seeds); ++seed) {
    const SimulationOptions options = mix.OptionsFor(seed);
    const SimulationReport r = RunSimulation(options);
    ASSERT_TRUE(r.ok()) << "mix " << mix.name << " seed " << seed << ": "
                        << (r.violations.empty() ? "" : r.violations.front())
                        << "\n  replay: " << r.replay;
    EXPECT_EQ(r.acked_writes_lost, 0u) << r.replay;
    EXPECT_EQ(r.dots_reused, 0u) << r.replay;
    EXPECT_GT(r.writes_acked, 0u) << r.replay;
    rounds.push_back(r.rounds);
    faults += r.faults_injected;
    acked += r.writes_acked;
    lost_with_data += r.writes_lost_with_data;
    retirements += r.retirements;
    refused += r.timestamps_rejected;
    if (mix.HasEpisodes()) {
      EXPECT_GT(r.faults_injected, 0u) << "no fault was injected: " << r.replay;
    }
  }
  if (mix.skew_ms > mix.hlc_max_offset_ms) {
    EXPECT_GT(refused, 0u) << "clocks further apart than accepted, yet no timestamp was refused";
  }
  std::sort(rounds.begin(), rounds.end());
  // One line per mix, for docs/reliability.md.
  std::cout << "swarm " << mix.name << ": seeds " << seeds << ", faults " << faults
            << ", writes acknowledged " << acked << ", lost 0, lost with their only copy "
            << lost_with_data << ", retirements " << retirements
            << ", far-future timestamps refused " << refused << ", rounds p50 "
            << rounds[rounds.size() / 2] << " max " << rounds.back() << '\n';
}

INSTANTIATE_TEST_SUITE_P(Mixes, SwarmTest, ::testing::ValuesIn(SwarmMixes()),
                         [](const ::testing::TestParamInfo<SwarmMix>& param) {
                           return std::string(param.param.name);
                         });

// --- determinism ---------------------------------------------------------------

TEST(SimulationTest, SameSeedSameTrace) {
  SimulationOptions o = FindSwarmMix("everything")->OptionsFor(77);
  const SimulationReport a = RunSimulation(o);
  const SimulationReport b = RunSimulation(o);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.rounds, b.rounds);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.bytes_per_node, b.bytes_per_node);
  o.seed = 78;
  EXPECT_NE(RunSimulation(o).trace_hash, a.trace_hash);
}

// Issue 11: membership that scales. Beyond members_per_message other
// members a gossip message carries a bounded number of member changes, so
// what a node sends per round at rest does not grow with the cluster (the
// whole-list exchange every max(32, N/4) rounds included), and one write
// still reaches every node in about log N rounds.
TEST(SimulationTest, GossipAtRestCostsAboutTheSameAt32And128Nodes) {
  std::map<int, SimulationReport> runs;
  for (const int nodes : {32, 128}) {
    SimulationOptions o;
    o.nodes = nodes;
    o.fanout = 3;
    o.seed = 11;
    o.workload = "counter";
    o.writes = 1;
    o.keys = 1;
    o.majority_percent = 0;
    o.all_percent = 0;
    o.fault_window_ms = 2'000;
    runs[nodes] = RunSimulation(o);
    ASSERT_TRUE(runs[nodes].ok()) << runs[nodes].violations.front() << "\n" << runs[nodes].replay;
    EXPECT_EQ(runs[nodes].members_max, static_cast<std::uint64_t>(nodes));
  }
  const double small = static_cast<double>(runs[32].rest_bytes_per_node_round);
  const double large = static_cast<double>(runs[128].rest_bytes_per_node_round);
  EXPECT_GT(small, 0);
  EXPECT_LT(large, 1.5 * small) << "bytes a node sends per round at rest: " << small
                                << " with 32 nodes, " << large << " with 128";
  // log3(128) + ln(128)/2 = 6.8 rounds, and 2 more.
  EXPECT_LE(runs[128].rounds, 9u);
}

// Issue 11: metadata under churn. 5 nodes through 2,000 crashes and 20
// replacements (each a destroyed node and a new one under a new name, the
// old forgotten): once settled, no key's causal context names more than 10
// replica ids (pruning renames the retired ones onto the archive id), no
// frame passed 64 KiB, no node lists more than 10 members, nothing
// acknowledged is lost. The mean frame, against 20 crashes, is printed for
// docs/reliability.md (seed 6 gives 3 ids, 9.6 KB, 454 B against 162 B).
SimulationOptions ChurnRun(std::uint64_t seed, int crashes, int replacements) {
  SimulationOptions o;
  o.nodes = 5;
  o.workload = "cart";
  o.writes = 2'000;
  o.fault_window_ms = 300'000;
  o.crashes = crashes;
  o.replacements = replacements;
  o.seed = seed;
  o.prune = true;
  return o;
}

TEST(SimulationTest, ChurnKeepsVersionVectorsFramesAndMembersBounded) {
  for (const std::uint64_t seed : {5u}) {  // the slow soak runs more (ChurnSoak)
    const SimulationReport calm = RunSimulation(ChurnRun(seed, 20, 0));
    ASSERT_TRUE(calm.ok()) << calm.violations.front() << "\n" << calm.replay;
    const SimulationReport r = RunSimulation(ChurnRun(seed, 2'000, 20));
    ASSERT_TRUE(r.ok()) << r.violations.front() << "\n" << r.replay;
    EXPECT_TRUE(r.converged) << r.replay;
    EXPECT_EQ(r.acked_writes_lost, 0u) << r.replay;
    EXPECT_EQ(r.replacements, 20u);
    EXPECT_GT(r.retirements, 100u);
    EXPECT_LE(r.max_context_replicas, 10u) << r.replay;
    EXPECT_LE(r.max_gossip_frame_bytes, 64u << 10) << r.replay;
    EXPECT_LE(r.members_max, 10u) << r.replay;
    EXPECT_GE(r.prune_level, 1u);
    std::cout << "churn seed " << seed << ": " << r.retirements << " incarnations, contexts "
              << r.max_context_replicas << " ids, largest frame " << r.max_gossip_frame_bytes
              << " bytes, members " << r.members_max << ", mean frame " << r.bytes_per_frame
              << " bytes (20 crashes: " << calm.bytes_per_frame << ", contexts "
              << calm.max_context_replicas << " ids)\n";
  }
}

// The slow soak (ctest converge.simulation.churn_soak, label slow): ten
// times the churn, over ten times the window.
TEST(ChurnSoak, DISABLED_TenTimesTheChurn) {
  for (const std::uint64_t seed : {5u, 6u, 7u}) {
    SimulationOptions o = ChurnRun(seed, 20'000, 200);
    o.writes = 20'000;
    o.fault_window_ms = 3'000'000;
    const SimulationReport r = RunSimulation(o);
    ASSERT_TRUE(r.ok()) << r.violations.front() << "\n" << r.replay;
    EXPECT_EQ(r.acked_writes_lost, 0u) << r.replay;
    EXPECT_LE(r.max_context_replicas, 10u) << r.replay;
    EXPECT_LE(r.members_max, 10u) << r.replay;
    std::cout << "churn soak seed " << seed << ": " << r.retirements << " incarnations, "
              << r.replacements << " replacements, contexts " << r.max_context_replicas
              << " ids, largest frame " << r.max_gossip_frame_bytes << " bytes, members "
              << r.members_max << ", mean frame " << r.bytes_per_frame << " bytes, level "
              << r.prune_level << "\n";
  }
}

TEST(SimulationTest, ReplayCommandNamesEveryNonDefaultOption) {
  SimulationOptions o;
  o.nodes = 5;
  o.seed = 9;
  o.loss = 0.25;
  o.reorder = true;
  o.rollbacks = 2;
  EXPECT_EQ(ReplayCommand(o),
            "converge-sim --nodes 5 --fanout 2 --seed 9 --loss 0.25 --reorder --rollbacks 2");
  o.members_per_message = 1;
  EXPECT_EQ(ReplayCommand(o),
            "converge-sim --nodes 5 --fanout 2 --seed 9 --members-per-message 1 --loss 0.25 "
            "--reorder --rollbacks 2");
}

TEST(SimulationTest, WipedAndRolledBackNodesContinueUnderNewIncarnations) {
  SimulationOptions o = FindSwarmMix("rolled_back")->OptionsFor(5);
  o.rollbacks = 3;
  o.wipes = 1;
  const SimulationReport r = RunSimulation(o);
  ASSERT_TRUE(r.ok()) << r.replay;
  EXPECT_GT(r.rollbacks + r.wipes, 0u);
  // Every restart of a replica that had written moves to a new incarnation.
  EXPECT_GE(r.retirements, r.rollbacks);
  EXPECT_EQ(r.dots_reused, 0u);
}

// --- every seed the swarm ever found -------------------------------------------------

// One line of regression_seeds.txt: a converge-sim replay command, then
// "# mix: what it found".
struct RegressionSeed {
  std::string line;
  std::string name;  // for the test's name: line<N>_<mix>_<seed>
  std::string mix;
};

void PrintTo(const RegressionSeed& seed, std::ostream* os) { *os << seed.name; }

std::vector<RegressionSeed> LoadRegressionSeeds() {
  std::vector<RegressionSeed> seeds;
  std::ifstream in(CONVERGE_REGRESSION_SEEDS);
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    const std::size_t hash = text.find('#');
    std::string command = text.substr(0, hash);
    while (!command.empty() && std::isspace(static_cast<unsigned char>(command.back())))
      command.pop_back();
    if (command.empty()) continue;
    RegressionSeed seed;
    seed.line = command;
    if (hash != std::string::npos) {
      const std::string note = text.substr(hash + 1);
      const std::size_t colon = note.find(':');
      std::string mix = note.substr(0, colon);
      std::erase_if(
          mix, [](char c) { return !std::isalnum(static_cast<unsigned char>(c)) && c != '_'; });
      seed.mix = mix;
    }
    const StatusOr<SimulationOptions> options = ParseReplayCommand(command);
    seed.name = "line" + std::to_string(number) + "_" + (seed.mix.empty() ? "run" : seed.mix) +
                "_" + (options.ok() ? std::to_string(options->seed) : "unparsed");
    seeds.push_back(std::move(seed));
  }
  return seeds;
}

class RegressionSeedTest : public ::testing::TestWithParam<RegressionSeed> {};

// Each seed replays exactly what failed once; it must run clean now: it
// converges, loses nothing acknowledged and reuses no dot.
TEST_P(RegressionSeedTest, RunsClean) {
  const StatusOr<SimulationOptions> options = ParseReplayCommand(GetParam().line);
  ASSERT_TRUE(options.ok()) << options.status() << ": " << GetParam().line;
  const SimulationReport r = RunSimulation(*options);
  EXPECT_TRUE(r.ok()) << (r.violations.empty() ? "" : r.violations.front()) << "\n  " << r.replay;
  EXPECT_EQ(r.dots_reused, 0u);
  EXPECT_EQ(r.acked_writes_lost, 0u);
  EXPECT_EQ(r.replay, GetParam().line) << "the line does not replay itself";
}

INSTANTIATE_TEST_SUITE_P(Seeds, RegressionSeedTest, ::testing::ValuesIn(LoadRegressionSeeds()),
                         [](const ::testing::TestParamInfo<RegressionSeed>& param) {
                           return param.param.name;
                         });

TEST(RegressionSeedFileTest, HoldsTheSeedsOfEveryFailureClass) {
  const std::vector<RegressionSeed> seeds = LoadRegressionSeeds();
  ASSERT_GE(seeds.size(), 20u) << "cannot read " << CONVERGE_REGRESSION_SEEDS;
  for (const RegressionSeed& s : seeds) {
    EXPECT_TRUE(ParseReplayCommand(s.line).ok()) << s.line;
    EXPECT_NE(FindSwarmMix(s.mix), nullptr) << "no mix named after '#': " << s.line;
  }
}

TEST(SimulationTest, ParseReplayCommandInvertsReplayCommand) {
  for (const SwarmMix& mix : SwarmMixes()) {
    SimulationOptions o = mix.OptionsFor(4242);
    o.workload = "lww";
    o.all_percent = 33;
    const StatusOr<SimulationOptions> parsed = ParseReplayCommand(ReplayCommand(o));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(ReplayCommand(*parsed), ReplayCommand(o));
  }
  for (const char* bad :
       {"", "sim --seed 1", "converge-sim --seed", "converge-sim --seed x", "converge-sim --nope 1",
        "converge-sim --loss nan", "converge-sim --nodes 3.5"}) {
    EXPECT_FALSE(ParseReplayCommand(bad).ok()) << bad;
  }
}

// --- the oracle catches what it must --------------------------------------------

using StringSet = crdt::OrSet<std::string>;

// A write that claims to be acknowledged with a delta the node never wrote.
Write PhantomWrite(const std::string& key) {
  Write w;
  w.key = key;
  w.submit = [key](Node&, WriteConsistency, std::shared_ptr<Write::Record> record) {
    StringSet s;
    record->key = key;
    record->delta = codec::Encode(s.Add(crdt::ReplicaId{12345}, "never-written"));
    record->done = true;
  };
  return w;
}

TEST(SimulationOracleTest, FlagsAnAcknowledgedWriteThatNoNodeHolds) {
  SimulationOptions o;
  o.writes = 20;
  int made = 0;
  const SimulationReport r = RunSimulation(o, [&made](std::mt19937_64& rng, int keys) {
    if (made++ == 7) return PhantomWrite("set:0");
    return Workloads()[1].make(rng, keys);
  });
  EXPECT_TRUE(r.converged);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.acked_writes_lost, 1u);
}

TEST(SimulationOracleTest, FlagsAStateAboveEveryWriteMade) {
  SimulationOptions o;
  o.writes = 10;
  // Records a smaller delta than the one it makes: the converged state holds
  // an element no recorded write produced.
  const SimulationReport r = RunSimulation(o, [](std::mt19937_64&, int) {
    Write w = MakeWrite<StringSet>(
        "set:0", [](StringSet& s, crdt::ReplicaId self) { return s.Add(self, "x"); });
    auto inner = w.submit;
    w.submit = [inner](Node& node, WriteConsistency c, std::shared_ptr<Write::Record> record) {
      auto shadow = std::make_shared<Write::Record>();
      inner(node, c, shadow);
      record->key = "set:0";
      record->delta = codec::Encode(StringSet{});
      record->done = true;
    };
    return w;
  });
  EXPECT_FALSE(r.ok());
  ASSERT_FALSE(r.violations.empty());
  EXPECT_NE(r.violations.back().find("above the join"), std::string::npos) << r.violations.back();
}

TEST(SimulationOracleTest, FlagsADotIssuedTwice) {
  SimulationOptions o;
  o.writes = 4;
  const SimulationReport r = RunSimulation(o, [](std::mt19937_64&, int) {
    Write w = MakeWrite<StringSet>(
        "set:0", [](StringSet& s, crdt::ReplicaId self) { return s.Add(self, "x"); });
    auto inner = w.submit;
    w.submit = [inner](Node& node, WriteConsistency c, std::shared_ptr<Write::Record> record) {
      inner(node, c, record);
      record->new_dots = {{1, 1}};  // every write claims the same dot
    };
    return w;
  });
  EXPECT_FALSE(r.ok());
  EXPECT_GE(r.dots_reused, 1u);
}

}  // namespace
}  // namespace converge::replication::sim
