// RocksStore beyond the common Store contract (store_test.cc): identity and
// incarnations across reopen, leases after a crash, corrupted metadata, and
// a scan over a few hundred thousand keys.

#include "storage/rocks_store.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/crdt.h"
#include "storage/testing/test_util.h"
#include "storage/typed.h"

namespace converge::storage {
namespace {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;
using crdt::ReplicaId;

class RocksStoreTest : public ::testing::Test {
 protected:
  RocksStoreOptions Options(Durability durability = Durability::kSync,
                            std::string boot_id = "boot-1") {
    RocksStoreOptions options;
    options.registry = registry_;
    options.durability = durability;
    options.boot_id = std::move(boot_id);
    options.dot_lease_block = 8;
    return options;
  }

  std::unique_ptr<RocksStore> Open(const RocksStoreOptions& options) {
    auto store = RocksStore::Open(dir_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static StatusOr<Cart> AddApple(Store& store, std::uint64_t n = 1) {
    return Update<Cart>(store, "cart", [&](Cart& c, ReplicaId r) {
      return c.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(r, n); });
    });
  }

  // Writes a raw record into the meta column family, as a damaged disk or
  // a foreign tool would.
  void PutMetaRaw(const std::string& key, const std::string& value) {
    rocksdb::DBOptions db_options;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"meta", {}}, {"aux", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(db_options, dir_, families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions write;
    write.sync = true;
    EXPECT_TRUE(value.empty() ? db->Delete(write, handles[1], key).ok()
                              : db->Put(write, handles[1], key, value).ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    ASSERT_TRUE(db->Close().ok());
  }

  std::shared_ptr<const codec::TypeRegistry> registry_ =
      std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  testing::ScratchDir scratch_{::testing::TempDir(), "rocks"};
  std::string dir_ = scratch_.Sub("db");
};

TEST_F(RocksStoreTest, NewDirectoryMintsAnIdentityThatACleanReopenKeeps) {
  Identity first;
  {
    auto store = Open(Options());
    ASSERT_NE(store, nullptr);
    first = store->identity();
    EXPECT_NE(first.replica.value(), 0u);
    EXPECT_EQ(first.incarnation, 1u);
    EXPECT_FALSE(first.recovered_from_crash);
    EXPECT_TRUE(first.created);
    ASSERT_TRUE(AddApple(*store, 2).ok());
    ASSERT_TRUE(store->Close().ok());
  }
  // Clean: kept under any boot and any durability.
  for (const auto& [durability, boot] :
       {std::pair{Durability::kSync, "boot-1"}, std::pair{Durability::kBuffered, "boot-2"},
        std::pair{Durability::kBuffered, "boot-3"}}) {
    auto store = Open(Options(durability, boot));
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->identity().replica, first.replica);
    EXPECT_EQ(store->identity().incarnation, 1u);
    EXPECT_FALSE(store->identity().recovered_from_crash);
    EXPECT_FALSE(store->identity().created) << "an earlier process used this directory";
    StatusOr<Cart> cart = Read<Cart>(*store, "cart");
    ASSERT_TRUE(cart.ok());
    EXPECT_EQ(cart->Get("apple")->Value(), 2u);
    ASSERT_TRUE(store->Close().ok());
  }
  // A second directory is another replica.
  auto other = RocksStore::Open(scratch_.Sub("other"), Options());
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->identity().replica, first.replica);
}

TEST_F(RocksStoreTest, CrashKeepsTheIdentityUnlessBufferedWritesMayBeGone) {
  const auto crash_under = [&](Durability durability, const std::string& boot) {
    auto store = Open(Options(durability, boot));
    EXPECT_TRUE(AddApple(*store).ok());
    return store->identity();  // dropped without Close: a crash
  };
  const Identity a = crash_under(Durability::kSync, "boot-1");
  // Sync, crashed, rebooted: everything acknowledged was synced.
  const Identity b = crash_under(Durability::kSync, "boot-2");
  EXPECT_EQ(b.replica, a.replica);
  EXPECT_TRUE(b.recovered_from_crash);
  // Buffered, crashed, same boot: the page cache kept the log.
  const Identity c = crash_under(Durability::kBuffered, "boot-2");
  EXPECT_EQ(c.replica, a.replica);
  const Identity d = crash_under(Durability::kBuffered, "boot-2");
  EXPECT_EQ(d.replica, a.replica);
  EXPECT_EQ(d.incarnation, 1u);
  // Buffered, crashed, another boot: writes may be lost, new incarnation.
  auto store = Open(Options(Durability::kSync, "boot-3"));
  const Identity e = store->identity();
  EXPECT_NE(e.replica, a.replica);
  EXPECT_EQ(e.incarnation, 2u);
  EXPECT_TRUE(e.recovered_from_crash);
  EXPECT_EQ(store->dot_lease_end(), 0u);
  // The data survives the change of identity; new dots are the new id's.
  StatusOr<Cart> delta = AddApple(*store);
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->context().Max(e.replica), 1u);
  StatusOr<Cart> cart = Read<Cart>(*store, "cart");
  ASSERT_TRUE(cart.ok());
  EXPECT_EQ(cart->Get("apple")->Value(), 5u);
  ASSERT_TRUE(store->Close().ok());
  // And the new incarnation is kept from then on.
  store = Open(Options(Durability::kSync, "boot-4"));
  EXPECT_EQ(store->identity().replica, e.replica);
  EXPECT_EQ(store->identity().incarnation, 2u);
}

TEST_F(RocksStoreTest, DotLeaseIsSyncedBeforeUseAndSurvivesACrash) {
  std::uint64_t highest = 0;
  ReplicaId self;
  {
    auto store = Open(Options(Durability::kBuffered));
    self = store->identity().replica;
    for (int i = 0; i < 50; ++i) {
      StatusOr<Cart> delta = AddApple(*store);
      ASSERT_TRUE(delta.ok());
      highest = delta->context().Max(self);
      ASSERT_GE(store->dot_lease_end(), highest);
    }
    EXPECT_EQ(highest, 50u);
    EXPECT_LE(store->dot_lease_end(), highest + 8) << "leases come in blocks of 8";
  }  // crash
  auto store = Open(Options(Durability::kBuffered));
  EXPECT_EQ(store->identity().replica, self);
  EXPECT_GE(store->dot_lease_end(), highest) << "lease covers every counter issued";
  StatusOr<Cart> delta = AddApple(*store);
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->context().Max(self), highest + 1) << "no dot issued twice";
}

TEST_F(RocksStoreTest, HlcHighWaterSurvivesACrash) {
  const crdt::HlcTimestamp t{1'800'000'000'000, 7};
  {
    auto store = Open(Options());
    ASSERT_TRUE(store->EnsureHlcLease(t).ok());
    EXPECT_GE(store->hlc_high_water(), t);
  }
  auto store = Open(Options());
  EXPECT_GE(store->hlc_high_water(), t);
  crdt::Hlc clock([] { return std::uint64_t{1'000}; });  // a clock far behind
  clock.Restore(store->hlc_high_water());
  EXPECT_GT(clock.Now(), t) << "a restarted replica's clock never goes back";
}

TEST_F(RocksStoreTest, RetirementIsPersisted) {
  Identity retired;
  {
    auto store = Open(Options());
    ASSERT_TRUE(AddApple(*store).ok());
    ASSERT_TRUE(store->Retire().ok());
    retired = store->identity();
  }  // even without Close: the meta write was synced
  auto store = Open(Options(Durability::kSync, "boot-9"));
  EXPECT_EQ(store->identity().replica, retired.replica);
  EXPECT_EQ(store->identity().incarnation, 2u);
}

// A directory restored twice from the same backup (TESTPLAN R9; the swarm's
// rolled_back seed 1140): each restored copy is a new process that must
// retire to an id of its own — two processes under one id would issue the
// same dots.
TEST_F(RocksStoreTest, CopiesRestoredFromOneBackupRetireToDifferentIds) {
  Identity original;
  {
    auto store = Open(Options());
    ASSERT_TRUE(AddApple(*store).ok());
    original = store->identity();
    ASSERT_TRUE(store->Close().ok());
  }
  const std::string backup = scratch_.Sub("backup");
  std::filesystem::copy(dir_, backup, std::filesystem::copy_options::recursive);
  std::set<std::uint64_t> ids = {original.replica.value()};
  for (int restore = 0; restore < 3; ++restore) {
    std::filesystem::remove_all(dir_);
    std::filesystem::copy(backup, dir_, std::filesystem::copy_options::recursive);
    auto store = Open(Options());
    ASSERT_NE(store, nullptr);
    EXPECT_FALSE(store->identity().created) << "a restored copy is not new";
    EXPECT_EQ(store->identity().replica, original.replica);
    ASSERT_TRUE(store->Retire().ok());
    EXPECT_TRUE(ids.insert(store->identity().replica.value()).second)
        << "restore " << restore << " retired to an id already used";
    ASSERT_TRUE(AddApple(*store).ok());
    ASSERT_TRUE(store->Close().ok());
  }
}

TEST_F(RocksStoreTest, CorruptedMetadataIsReportedAsCorruption) {
  {
    auto store = Open(Options());
    ASSERT_TRUE(store->Close().ok());
  }
  PutMetaRaw("dot_lease_end", "not eight bytes");
  auto bad_lease = RocksStore::Open(dir_, Options());
  ASSERT_FALSE(bad_lease.ok());
  EXPECT_EQ(bad_lease.status().code(), StatusCode::kCorruption) << bad_lease.status();

  PutMetaRaw("dot_lease_end", std::string(8, '\0'));
  PutMetaRaw("format", "converge-store-999");
  auto bad_format = RocksStore::Open(dir_, Options());
  ASSERT_FALSE(bad_format.ok());
  EXPECT_EQ(bad_format.status().code(), StatusCode::kCorruption) << bad_format.status();

  PutMetaRaw("format", "converge-store-1");
  PutMetaRaw("incarnation", "");  // deleted
  auto missing = RocksStore::Open(dir_, Options());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kCorruption) << missing.status();

  PutMetaRaw("incarnation", std::string("\x01\0\0\0\0\0\0\0", 8));
  PutMetaRaw("replica_id", "");  // a set-up store without its id
  auto no_id = RocksStore::Open(dir_, Options());
  ASSERT_FALSE(no_id.ok());
  EXPECT_EQ(no_id.status().code(), StatusCode::kCorruption) << no_id.status();
}

TEST_F(RocksStoreTest, ScansHundredsOfThousandsOfKeys) {
  constexpr int kKeys = 200'000;
  RocksStoreOptions options = Options(Durability::kBuffered);
  options.validate_writes = false;                    // freshly encoded below
  options.write_buffer_bytes = std::size_t{4} << 20;  // several flushes: SST + memtable
  options.block_cache_bytes = std::size_t{1} << 20;   // far smaller than the data
  auto store = Open(options);
  crdt::GCounter counter;
  const std::string delta = codec::Encode(counter.Increment(ReplicaId{1}, 1));
  char key[16];
  for (int i = 0; i < kKeys;) {
    WriteBatch batch;
    for (int j = 0; j < 1000; ++j, ++i) {
      std::snprintf(key, sizeof key, "k%08d", i);
      batch.Merge(key, delta);
    }
    ASSERT_TRUE(store->Write(batch).ok());
  }
  std::snprintf(key, sizeof key, "k%08d", 123'456);
  ASSERT_TRUE(store
                  ->Write([&] {
                    WriteBatch b;
                    b.Merge(key, codec::Encode(crdt::GCounter().Increment(ReplicaId{2}, 5)));
                    return b;
                  }())
                  .ok());

  int seen = 0;
  std::string previous;
  bool ordered = true;
  std::uint64_t total = 0;
  ASSERT_TRUE(store
                  ->Scan("", "",
                         [&](std::string_view k, std::string_view state) {
                           ordered = ordered && std::string(k) > previous;
                           previous = std::string(k);
                           StatusOr<crdt::GCounter> c = codec::Decode<crdt::GCounter>(state);
                           if (c.ok()) total += c->Value();
                           ++seen;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(seen, kKeys);
  EXPECT_TRUE(ordered);
  EXPECT_EQ(total, std::uint64_t{kKeys} + 5);

  int in_range = 0;
  ASSERT_TRUE(store
                  ->Scan("k00100000", "k00100500",
                         [&](std::string_view, std::string_view) {
                           ++in_range;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(in_range, 500);
  ASSERT_TRUE(store->CompactAll().ok());
  EXPECT_GT(store->ApproximateDiskBytes(), 0u);
  ASSERT_TRUE(store->Close().ok());
}

// A corrupt stored state must stay confined to its key: merging onto it and
// compacting keeps the database writable for every other key.
TEST_F(RocksStoreTest, CorruptStateDoesNotStopTheDatabase) {
  auto store = Open(Options());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(AddApple(*store).ok());
  ASSERT_TRUE(store->OverwriteRaw("cart", "planted corruption").ok());
  WriteBatch batch;
  crdt::GCounter counter;
  batch.Merge("cart", codec::Encode(Cart{}.Update("pear", [](crdt::CausalCounter& q) {
                return q.Increment(ReplicaId{9}, 1);
              })));
  batch.Merge("other", codec::Encode(counter.Increment(ReplicaId{1}, 5)));
  ASSERT_TRUE(store->Write(batch).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  StatusOr<std::optional<std::string>> raw = store->ReadRaw("cart");
  ASSERT_TRUE(raw.ok() && raw->has_value()) << raw.status();
  EXPECT_EQ(**raw, "planted corruption");
  EXPECT_FALSE(Read<Cart>(*store, "cart").ok());
  WriteBatch more;
  more.Merge("other", codec::Encode(counter.Increment(ReplicaId{1}, 1)));
  ASSERT_TRUE(store->Write(more).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  StatusOr<crdt::GCounter> other = Read<crdt::GCounter>(*store, "other");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->Value(), 6u);
}

}  // namespace
}  // namespace converge::storage
