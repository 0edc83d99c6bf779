// TESTPLAN R8: SIGKILL under write load, restart; every acknowledged write
// is present and no dot is acknowledged twice.
//
// converge_storage_crash_writer updates random carts in a RocksStore and
// reports each acknowledged update on stdout. The test kills it with
// SIGKILL at a random moment (seeded; the seed is printed), starts it again
// on the same directory, CONVERGE_FAULT_ROUNDS times (30 by default), then
// opens the directory itself and checks the Ledger of every run.

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <random>
#include <set>
#include <string>

#include "storage/memory_store.h"
#include "storage/rocks_store.h"
#include "storage/testing/cart_workload.h"
#include "storage/testing/child_process.h"
#include "storage/testing/ledger.h"
#include "storage/testing/test_util.h"

namespace converge::storage {
namespace {

using testing::ChildResult;
using testing::Ledger;
using testing::RunChild;
using testing::ScratchDir;

struct CrashFigures {
  int kills = 0;
  int runs = 0;
  int ids_seen = 0;
  std::uint64_t acked = 0;
};

class CrashTest : public ::testing::TestWithParam<Durability> {};

TEST_P(CrashTest, SigkillKeepsAcknowledgedWritesAndNeverReusesDots) {
  const Durability durability = GetParam();
  const std::uint64_t seed = testing::FaultSeed();
  const int rounds = testing::FaultRounds(30);
  std::cout << "R8 crash test (" << DurabilityName(durability) << "): seed " << seed
            << " (replay with CONVERGE_FAULT_SEED=" << seed << "), " << rounds << " kills\n";
  RecordProperty("seed", std::to_string(seed));
  ScratchDir scratch(::testing::TempDir(), "crash");
  const std::string dir = scratch.Sub("db");
  std::mt19937_64 rng(seed);

  Ledger ledger;
  CrashFigures figures;
  std::set<std::string> identities;
  const auto run = [&](std::optional<std::chrono::microseconds> kill_after,
                       std::uint64_t ops) -> ChildResult {
    std::vector<std::string> argv = {CONVERGE_CRASH_WRITER,
                                     "--dir",
                                     dir,
                                     "--durability",
                                     std::string(DurabilityName(durability)),
                                     "--seed",
                                     std::to_string(rng()),
                                     "--keys",
                                     "6",
                                     "--items",
                                     "4",
                                     "--ops",
                                     std::to_string(ops)};
    ChildResult r = RunChild(argv, kill_after, std::chrono::seconds(60));
    ++figures.runs;
    for (const std::string& line : r.lines) {
      EXPECT_TRUE(ledger.AddLine(line)) << "bad line from the writer: " << line;
      if (line.rfind("# id ", 0) == 0) {
        // "# id <replica> incarnation <n> ..." : the identity part.
        identities.insert(line.substr(0, line.find(" crashed")));
      }
      if (line.rfind("# open failed", 0) == 0 || line.rfind("# fail", 0) == 0) {
        ADD_FAILURE() << "writer reported: " << line;
      }
    }
    return r;
  };

  // Kill moments spread over opening (a few ms) and steady writing.
  std::uniform_int_distribution<int> moment_us(2'000, 250'000);
  for (int round = 0; round < rounds; ++round) {
    const ChildResult r = run(std::chrono::microseconds(moment_us(rng)), 0);
    ASSERT_TRUE(r.error.empty()) << r.error;
    if (r.killed) {
      ++figures.kills;
    } else {
      ADD_FAILURE() << "writer ended by itself: exit " << r.exit_code << " signal " << r.signal;
    }
  }
  // A last run that ends cleanly.
  const ChildResult last = run(std::nullopt, 50);
  EXPECT_EQ(last.exit_code, 0);

  RocksStoreOptions options;
  options.registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  options.durability = durability;
  auto store = RocksStore::Open(dir, options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->identity().recovered_from_crash) << "the last run closed cleanly";
  const Ledger::Report report = ledger.Check(**store);
  figures.acked = ledger.acked_writes();
  std::cout << "R8 " << DurabilityName(durability) << ": runs " << figures.runs << ", kills "
            << figures.kills << ", " << report.Summary() << "\n";
  RecordProperty("kills", figures.kills);
  RecordProperty("acknowledged", static_cast<int>(figures.acked));
  RecordProperty("lost", static_cast<int>(report.lost));
  RecordProperty("dots_reused", static_cast<int>(report.dots_reused));
  EXPECT_TRUE(report.ok()) << report.Summary();
  // No reboot happened: the replica id never changed.
  EXPECT_EQ(identities.size(), 1u);
  EXPECT_EQ(report.replicas.size(), 1u);
  // The test means something only if the writer got work done.
  EXPECT_GT(figures.acked, static_cast<std::uint64_t>(rounds) * 5);
  EXPECT_GT(report.acked_removes, 0u);
  ASSERT_TRUE((*store)->Close().ok());
}

INSTANTIATE_TEST_SUITE_P(Durability, CrashTest,
                         ::testing::Values(Durability::kSync, Durability::kBuffered),
                         [](const ::testing::TestParamInfo<Durability>& param) {
                           return std::string(DurabilityName(param.param));
                         });

// The checker itself: it must flag a lost write and a reused dot.
TEST(LedgerTest, FlagsLostWritesAndReusedDots) {
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  MemoryStore store(registry, crdt::ReplicaId{7});
  Ledger ledger;
  testing::CartWorkload workload(1, 2, 2, /*remove_percent=*/0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(workload.Step(store, [&](const std::string& l) { ledger.AddLine(l); }).ok());
  }
  EXPECT_TRUE(ledger.Check(store).ok()) << ledger.Check(store).Summary();

  // An acknowledged increment the store never saw: lost.
  Ledger lost = ledger;
  ASSERT_TRUE(lost.AddLine("inc cart:0 item0 7 999 3"));
  EXPECT_EQ(lost.Check(store).lost, 1u);

  // The same dot acknowledged for a second write: reused.
  Ledger reused = ledger;
  ASSERT_TRUE(reused.AddLine("inc cart:0 item0 7 1 5"));
  EXPECT_EQ(reused.Check(store).dots_reused, 1u);

  // A removed increment is not lost when a remove that covers it was tried.
  Ledger removed = ledger;
  const StatusOr<testing::Cart> cart = Read<testing::Cart>(store, "cart:0");
  ASSERT_TRUE(cart.ok());
  std::vector<crdt::Dot> dots;
  for (const auto& it : cart->store().Find("item0")->items()) dots.push_back(it.dot);
  ASSERT_TRUE(removed.AddLine(Ledger::FormatTryRemove("cart:0", "item0", dots)));
  ASSERT_TRUE(Update<testing::Cart>(store, "cart:0", [](testing::Cart& c, crdt::ReplicaId) {
                return c.Remove("item0");
              }).ok());
  EXPECT_TRUE(removed.Check(store).ok()) << removed.Check(store).Summary();
  // ... but without the try line the missing amounts are lost writes.
  EXPECT_GT(ledger.Check(store).lost, 0u);

  EXPECT_FALSE(ledger.AddLine("inc cart:0 item0 x 1 5"));
  EXPECT_TRUE(ledger.AddLine("# comment"));
}

}  // namespace
}  // namespace converge::storage
