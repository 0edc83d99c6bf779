// TESTPLAN R10: power loss. FaultFs (storage/testing/fault_fs.h) keeps only
// what was synced; each round cuts the power after a seeded random number
// of file-system operations, drops the unsynced data, and reopens the store
// as after a reboot (a new boot id).
//   - sync: every acknowledged write survives;
//   - buffered: acknowledged writes may be lost, but the store then comes
//     back under a new incarnation, so no dot is ever acknowledged twice;
//   - both: synced metadata (identity, dot lease, HLC high water) never goes
//     back.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>

#include "storage/rocks_store.h"
#include "storage/testing/cart_workload.h"
#include "storage/testing/fault_fs.h"
#include "storage/testing/ledger.h"
#include "storage/testing/test_util.h"

namespace converge::storage {
namespace {

using testing::FaultFs;
using testing::Ledger;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The file-system model itself.
TEST(FaultFsTest, PowerLossKeepsOnlyWhatWasSynced) {
  testing::ScratchDir scratch(::testing::TempDir(), "faultfs");
  auto fs = std::make_shared<FaultFs>();
  const rocksdb::FileOptions fo;
  const rocksdb::IOOptions io;
  const std::string dir = scratch.path();
  std::unique_ptr<rocksdb::FSDirectory> d;
  ASSERT_TRUE(fs->NewDirectory(dir, io, &d, nullptr).ok());

  const auto write = [&](const std::string& name, const std::string& bytes, bool sync) {
    std::unique_ptr<rocksdb::FSWritableFile> f;
    ASSERT_TRUE(fs->NewWritableFile(dir + "/" + name, fo, &f, nullptr).ok());
    ASSERT_TRUE(f->Append(bytes, io, nullptr).ok());
    if (sync) {
      ASSERT_TRUE(f->Sync(io, nullptr).ok());
    }
    ASSERT_TRUE(f->Append("-unsynced", io, nullptr).ok());
    ASSERT_TRUE(f->Close(io, nullptr).ok());
  };
  write("synced", "kept", true);
  write("unsynced", "dropped", false);
  ASSERT_TRUE(d->Fsync(io, nullptr).ok());    // both entries durable
  write("new-after-dir-sync", "gone", true);  // data synced, entry not
  ASSERT_TRUE(
      fs->RenameFile(dir + "/synced", dir + "/renamed", io, nullptr).ok());  // not dir-synced

  std::string error;
  ASSERT_TRUE(fs->SimulatePowerLoss(&error)) << error;
  EXPECT_EQ(ReadAll(dir + "/synced"), "kept") << "the unsynced rename was undone";
  EXPECT_FALSE(std::filesystem::exists(dir + "/renamed"));
  EXPECT_EQ(ReadAll(dir + "/unsynced"), "");
  EXPECT_FALSE(std::filesystem::exists(dir + "/new-after-dir-sync"));
  const FaultFs::Stats stats = fs->stats();
  EXPECT_EQ(stats.power_losses, 1u);
  EXPECT_EQ(stats.files_removed, 1u);
  EXPECT_EQ(stats.renames_reverted, 1u);

  // A cut disk refuses writes; a fault fails the next call only.
  std::unique_ptr<rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs->NewWritableFile(dir + "/f", fo, &f, nullptr).ok());
  fs->InjectFault(FaultFs::FaultTarget::kWrite, FaultFs::FaultKind::kNoSpace, 1);
  const rocksdb::IOStatus full = f->Append("x", io, nullptr);
  EXPECT_TRUE(full.IsNoSpace()) << full.ToString();
  EXPECT_TRUE(f->Append("x", io, nullptr).ok());
  fs->CutPowerAfter(1);
  EXPECT_TRUE(f->Append("y", io, nullptr).ok());
  EXPECT_FALSE(f->Append("z", io, nullptr).ok());
  EXPECT_FALSE(fs->powered());
  EXPECT_TRUE(f->Close(io, nullptr).ok());
  ASSERT_TRUE(fs->SimulatePowerLoss(&error)) << error;
  EXPECT_FALSE(std::filesystem::exists(dir + "/f"));
}

struct Figures {
  int power_losses = 0;
  int failed_opens = 0;
  int incarnations = 1;
  std::uint64_t acked = 0;
};

class PowerLossTest : public ::testing::TestWithParam<Durability> {};

TEST_P(PowerLossTest, SyncedDataAndMetadataSurviveAndNoDotIsReused) {
  const Durability durability = GetParam();
  const bool sync = durability == Durability::kSync;
  const std::uint64_t seed = testing::FaultSeed();
  const int rounds = testing::FaultRounds(25);
  std::cout << "R10 power loss (" << DurabilityName(durability) << "): seed " << seed
            << " (replay with CONVERGE_FAULT_SEED=" << seed << "), " << rounds << " power losses\n";
  RecordProperty("seed", std::to_string(seed));
  std::mt19937_64 rng(seed);
  testing::ScratchDir scratch(::testing::TempDir(), "power");
  const std::string dir = scratch.Sub("db");
  auto fs = std::make_shared<FaultFs>();
  auto env = FaultFs::NewEnv(fs);
  RocksStoreOptions options;
  options.registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  options.durability = durability;
  options.env = env.get();
  options.dot_lease_block = 16;
  options.write_buffer_bytes = std::size_t{256} << 10;  // flushes and SST files in play

  Ledger ledger;
  Figures figures;
  Identity last_identity;
  std::uint64_t lease_relied_on = 0;   // highest lease EnsureDotLease returned ok for
  crdt::HlcTimestamp hlc_relied_on{};  // same for the HLC high water
  std::uint64_t hlc_physical = 1'700'000'000'000;

  for (int round = 0; round <= rounds; ++round) {
    options.boot_id = "boot-" + std::to_string(round);
    const bool last_round = round == rounds;
    // One round in five loses power while opening (recovery, new WAL,
    // MANIFEST and OPTIONS files); the others while writing.
    const bool cut_during_open = !last_round && rng() % 5 == 0;
    if (cut_during_open) fs->CutPowerAfter(1 + rng() % 40);
    auto opened = RocksStore::Open(dir, options);
    if (!opened.ok()) {
      ASSERT_TRUE(cut_during_open) << opened.status();
      ++figures.failed_opens;
    } else {
      RocksStore& store = **opened;
      const Identity id = store.identity();
      // (Until one open succeeded, a power loss may undo the creation of
      // the directory itself: then this is a new replica.)
      if (last_identity.incarnation > 0) {
        EXPECT_TRUE(id.recovered_from_crash);
        if (id.replica == last_identity.replica) {
          EXPECT_TRUE(sync) << "buffered + power loss must start a new incarnation";
          EXPECT_GE(store.dot_lease_end(), lease_relied_on) << "the dot lease went back";
        } else {
          EXPECT_FALSE(sync) << "sync mode lost its identity";
          // +1, or more when an open that failed had already made its new
          // incarnation durable.
          EXPECT_GT(id.incarnation, last_identity.incarnation);
          ++figures.incarnations;
          lease_relied_on = 0;
        }
        EXPECT_GE(store.hlc_high_water(), hlc_relied_on) << "the HLC high water went back";
      }
      last_identity = id;
      if (last_round) {
        const Ledger::Report report = ledger.Check(store);
        figures.acked = ledger.acked_writes();
        const FaultFs::Stats stats = fs->stats();
        std::cout << "R10 " << DurabilityName(durability) << ": power losses "
                  << figures.power_losses << " (" << figures.failed_opens
                  << " while opening), incarnations " << figures.incarnations << ", bytes dropped "
                  << stats.bytes_dropped << ", files removed " << stats.files_removed
                  << ", renames undone " << stats.renames_reverted << ", "
                  << report.Summary().substr(0, report.Summary().find('\n')) << "\n";
        RecordProperty("power_losses", figures.power_losses);
        RecordProperty("acknowledged", static_cast<int>(figures.acked));
        RecordProperty("lost", static_cast<int>(report.lost));
        RecordProperty("dots_reused", static_cast<int>(report.dots_reused));
        EXPECT_EQ(report.dots_reused, 0u) << report.Summary();
        EXPECT_EQ(report.lease_behind, 0u) << report.Summary();
        if (sync) {
          EXPECT_TRUE(report.ok()) << report.Summary();
          EXPECT_EQ(figures.incarnations, 1);
        } else {
          // Each power loss after buffered writes lost some of them.
          EXPECT_GT(figures.incarnations, rounds / 2);
        }
        EXPECT_GT(figures.acked, static_cast<std::uint64_t>(rounds) * 3);
        ASSERT_TRUE(store.Close().ok());
        break;
      }
      fs->CutPowerAfter(1 + rng() % 300);
      testing::CartWorkload workload(rng(), 6, 4);
      for (int step = 0; step < 5000; ++step) {
        if (step % 16 == 0) {
          const crdt::HlcTimestamp t{hlc_physical += 3'000, 0};
          if (store.EnsureHlcLease(t).ok()) hlc_relied_on = store.hlc_high_water();
        }
        if (!workload.Step(store, [&](const std::string& line) { ledger.AddLine(line); }).ok()) {
          break;  // the power is gone
        }
        lease_relied_on = std::max(lease_relied_on, store.dot_lease_end());
      }
      EXPECT_FALSE(fs->powered()) << "the cut did not come";
    }
    if (opened.ok()) opened->reset();  // the crash: dropped without Close
    std::string error;
    ASSERT_TRUE(fs->SimulatePowerLoss(&error)) << error;
    ++figures.power_losses;
  }
}

INSTANTIATE_TEST_SUITE_P(Durability, PowerLossTest,
                         ::testing::Values(Durability::kSync, Durability::kBuffered),
                         [](const ::testing::TestParamInfo<Durability>& param) {
                           return std::string(DurabilityName(param.param));
                         });

}  // namespace
}  // namespace converge::storage
