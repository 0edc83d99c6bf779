// The Store contract, run against every implementation (typed test suite):
// MemoryStore and RocksStore (sync and buffered).

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/crdt.h"
#include "storage/memory_store.h"
#include "storage/rocks_store.h"
#include "storage/testing/test_util.h"
#include "storage/typed.h"

namespace converge::storage {
namespace {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;
using crdt::GCounter;
using crdt::ReplicaId;

std::shared_ptr<const codec::TypeRegistry> Builtins() {
  return std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
}

// Makes stores of one kind; a fixture owns at most one scratch directory.
class MemoryFactory {
 public:
  static constexpr bool kDurable = false;
  std::unique_ptr<Store> Open(std::shared_ptr<const codec::TypeRegistry> registry) {
    return std::make_unique<MemoryStore>(std::move(registry), ReplicaId{0x5eed});
  }
};

template <Durability kMode>
class RocksFactory {
 public:
  static constexpr bool kDurable = true;
  std::unique_ptr<Store> Open(std::shared_ptr<const codec::TypeRegistry> registry) {
    RocksStoreOptions options;
    options.registry = std::move(registry);
    options.durability = kMode;
    options.dot_lease_block = 8;
    auto store = RocksStore::Open(scratch_.Sub("db" + std::to_string(opened_++)), options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

 private:
  testing::ScratchDir scratch_{::testing::TempDir(), "store"};
  int opened_ = 0;
};

template <class Factory>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = factory_.Open(Builtins());
    ASSERT_NE(store_, nullptr);
  }

  Status WriteOne(const std::string& key, const std::string& delta) {
    WriteBatch batch;
    batch.Merge(key, delta);
    return store_->Write(batch);
  }

  // A GCounter delta: `replica` counted `n`.
  static std::string Count(std::uint64_t replica, std::uint64_t n) {
    GCounter c;
    return codec::Encode(c.Increment(ReplicaId{replica}, n));
  }

  std::uint64_t CounterValue(const std::string& key) {
    StatusOr<GCounter> c = Read<GCounter>(*store_, key);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->Value() : 0;
  }

  std::vector<std::string> ScanKeys(std::string_view begin, std::string_view end,
                                    std::size_t stop_after = SIZE_MAX) {
    std::vector<std::string> keys;
    const Status s = store_->Scan(begin, end, [&](std::string_view k, std::string_view) {
      keys.emplace_back(k);
      return keys.size() < stop_after;
    });
    EXPECT_TRUE(s.ok()) << s;
    return keys;
  }

  Factory factory_;
  std::unique_ptr<Store> store_;
};

using Factories = ::testing::Types<MemoryFactory, RocksFactory<Durability::kSync>,
                                   RocksFactory<Durability::kBuffered>>;
class FactoryNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, MemoryFactory>) return "Memory";
    if constexpr (std::is_same_v<T, RocksFactory<Durability::kSync>>) return "RocksSync";
    return "RocksBuffered";
  }
};
TYPED_TEST_SUITE(StoreTest, Factories, FactoryNames);

TYPED_TEST(StoreTest, WriteJoinsDeltasAndGetReturnsTheState) {
  StatusOr<std::optional<std::string>> missing = this->store_->Get("nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(this->WriteOne("c", this->Count(1, 3)).ok());
  ASSERT_TRUE(this->WriteOne("c", this->Count(2, 4)).ok());
  ASSERT_TRUE(this->WriteOne("c", this->Count(1, 3)).ok());  // idempotent
  EXPECT_EQ(this->CounterValue("c"), 7u);

  GCounter expected;
  expected.Increment(ReplicaId{1}, 3);
  expected.Increment(ReplicaId{2}, 4);
  StatusOr<std::optional<std::string>> bytes = this->store_->Get("c");
  ASSERT_TRUE(bytes.ok() && bytes->has_value());
  EXPECT_EQ(**bytes, codec::Encode(expected)) << "the state is the canonical join";
}

TYPED_TEST(StoreTest, ScanVisitsHalfOpenRangesInByteOrder) {
  for (const char* key : {"b", "a", "d", "c", "c\x01", "e"}) {
    ASSERT_TRUE(this->WriteOne(key, this->Count(1, 1)).ok());
  }
  using V = std::vector<std::string>;
  EXPECT_EQ(this->ScanKeys("", ""), (V{"a", "b", "c", "c\x01", "d", "e"}));
  EXPECT_EQ(this->ScanKeys("b", "d"), (V{"b", "c", "c\x01"}));
  EXPECT_EQ(this->ScanKeys("bb", ""), (V{"c", "c\x01", "d", "e"}));
  EXPECT_EQ(this->ScanKeys("c", "c"), V{});
  EXPECT_EQ(this->ScanKeys("f", ""), V{});
  EXPECT_EQ(this->ScanKeys("", "", 2), (V{"a", "b"})) << "fn returning false stops the scan";

  // The callback may call back into the store.
  int reads = 0;
  ASSERT_TRUE(this->store_
                  ->Scan("", "",
                         [&](std::string_view k, std::string_view state) {
                           StatusOr<std::optional<std::string>> again =
                               this->store_->Get(std::string(k));
                           EXPECT_TRUE(again.ok() && again->has_value() && **again == state);
                           ++reads;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(reads, 6);
}

TYPED_TEST(StoreTest, BatchIsAtomic) {
  WriteBatch good;
  good.Merge("x", this->Count(1, 1));
  good.Merge("y", this->Count(1, 2));
  good.PutAux("index:x", "1");
  ASSERT_TRUE(this->store_->Write(good).ok());
  EXPECT_EQ(this->CounterValue("x"), 1u);
  EXPECT_EQ(this->CounterValue("y"), 2u);

  WriteBatch bad;
  bad.Merge("x", this->Count(1, 5));
  bad.Merge("z", "not an encoded state");
  bad.PutAux("index:z", "1");
  const Status s = this->store_->Write(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("delta for key z"), std::string::npos) << s;
  EXPECT_EQ(this->CounterValue("x"), 1u) << "the valid first delta was not written either";
  StatusOr<std::optional<std::string>> z = this->store_->Get("z");
  ASSERT_TRUE(z.ok());
  EXPECT_FALSE(z->has_value());
  StatusOr<std::optional<std::string>> aux = this->store_->GetAux("index:z");
  ASSERT_TRUE(aux.ok());
  EXPECT_FALSE(aux->has_value()) << "aux writes are part of the batch";
}

TYPED_TEST(StoreTest, AuxKeySpaceIsPlainAndSeparate) {
  WriteBatch batch;
  batch.Merge("k", this->Count(1, 1));
  batch.PutAux("a1", "one");
  batch.PutAux("a2", "two");
  batch.PutAux("a3", "three");
  ASSERT_TRUE(this->store_->Write(batch).ok());
  WriteBatch update;
  update.PutAux("a1", "uno");  // a put replaces, no join
  update.DeleteAux("a3");
  ASSERT_TRUE(this->store_->Write(update).ok());

  StatusOr<std::optional<std::string>> a1 = this->store_->GetAux("a1");
  ASSERT_TRUE(a1.ok() && a1->has_value());
  EXPECT_EQ(**a1, "uno");
  std::vector<std::string> seen;
  ASSERT_TRUE(this->store_
                  ->ScanAux("", "",
                            [&](std::string_view k, std::string_view v) {
                              seen.push_back(std::string(k) + "=" + std::string(v));
                              return true;
                            })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"a1=uno", "a2=two"}));
  EXPECT_EQ(this->ScanKeys("", ""), std::vector<std::string>{"k"}) << "aux keys are not states";
  StatusOr<std::optional<std::string>> not_state = this->store_->Get("a1");
  ASSERT_TRUE(not_state.ok());
  EXPECT_FALSE(not_state->has_value());
}

TYPED_TEST(StoreTest, RejectsUndecodableAndUnregisteredDeltas) {
  const Status garbage = this->WriteOne("k", std::string("\x00\x01\x02garbage", 10));
  EXPECT_FALSE(garbage.ok());
  EXPECT_NE(garbage.message().find("delta for key k"), std::string::npos) << garbage;

  const Status empty = this->WriteOne("k", "");
  EXPECT_FALSE(empty.ok());

  // A registry that knows only GCounter refuses a PnCounter.
  auto only_counters = std::make_shared<codec::TypeRegistry>();
  only_counters->Register<GCounter>();
  std::unique_ptr<Store> narrow = this->factory_.Open(only_counters);
  ASSERT_NE(narrow, nullptr);
  crdt::PnCounter pn;
  WriteBatch batch;
  batch.Merge("p", codec::Encode(pn.Increment(ReplicaId{1}, 1)));
  const Status unregistered = narrow->Write(batch);
  EXPECT_EQ(unregistered.code(), StatusCode::kInvalidArgument) << unregistered;
  EXPECT_NE(unregistered.message().find("unregistered type"), std::string::npos) << unregistered;
  StatusOr<std::optional<std::string>> p = narrow->Get("p");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_value());
  ASSERT_TRUE(narrow->Close().ok());
}

TYPED_TEST(StoreTest, DeltaOfAnotherTypeLeavesTheKeyReadable) {
  ASSERT_TRUE(this->WriteOne("k", this->Count(1, 4)).ok());
  crdt::PnCounter pn;
  // MemoryStore refuses it; RocksStore's blind write takes it and the merge
  // operator drops it. Either way the key keeps its state.
  (void)this->WriteOne("k", codec::Encode(pn.Increment(ReplicaId{1}, 9)));
  ASSERT_TRUE(this->WriteOne("k", this->Count(2, 1)).ok());
  EXPECT_EQ(this->CounterValue("k"), 5u);
  if (auto* rocks = dynamic_cast<RocksStore*>(this->store_.get())) {
    ASSERT_TRUE(rocks->CompactAll().ok());
    EXPECT_EQ(this->CounterValue("k"), 5u) << "after compaction too";
  }
}

TYPED_TEST(StoreTest, UpdateIssuesDotsUnderTheLease) {
  const ReplicaId self = this->store_->identity().replica;
  EXPECT_EQ(this->store_->identity().incarnation, 1u);
  for (std::uint64_t i = 1; i <= 20; ++i) {
    StatusOr<Cart> delta = Update<Cart>(*this->store_, "cart", [&](Cart& c, ReplicaId r) {
      EXPECT_EQ(r, self);
      return c.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(r, 1); });
    });
    ASSERT_TRUE(delta.ok()) << delta.status();
    EXPECT_EQ(delta->context().Max(self), i) << "per-key counters: next = highest + 1";
    EXPECT_GE(this->store_->dot_lease_end(), i);
  }
  // A bottom delta writes nothing.
  StatusOr<Cart> none =
      Update<Cart>(*this->store_, "other", [](Cart& c, ReplicaId) { return c.Remove("absent"); });
  ASSERT_TRUE(none.ok());
  StatusOr<std::optional<std::string>> other = this->store_->Get("other");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  StatusOr<Cart> cart = Read<Cart>(*this->store_, "cart");
  ASSERT_TRUE(cart.ok());
  EXPECT_EQ(cart->Get("apple")->Value(), 20u);
}

TYPED_TEST(StoreTest, LeasesOnlyGrow) {
  ASSERT_TRUE(this->store_->EnsureDotLease(10).ok());
  const std::uint64_t lease = this->store_->dot_lease_end();
  EXPECT_GE(lease, 10u);
  ASSERT_TRUE(this->store_->EnsureDotLease(3).ok());
  EXPECT_EQ(this->store_->dot_lease_end(), lease);

  const crdt::HlcTimestamp t{1'700'000'000'000, 5};
  ASSERT_TRUE(this->store_->EnsureHlcLease(t).ok());
  const crdt::HlcTimestamp high = this->store_->hlc_high_water();
  EXPECT_GE(high, t);
  ASSERT_TRUE(this->store_->EnsureHlcLease({1'600'000'000'000, 0}).ok());
  EXPECT_EQ(this->store_->hlc_high_water(), high);
}

TYPED_TEST(StoreTest, RetireStartsANewIncarnation) {
  const Identity before = this->store_->identity();
  ASSERT_TRUE(this->store_->EnsureDotLease(100).ok());
  ASSERT_TRUE(this->store_->Retire().ok());
  const Identity after = this->store_->identity();
  EXPECT_NE(after.replica, before.replica);
  EXPECT_EQ(after.incarnation, before.incarnation + 1);
  EXPECT_EQ(this->store_->dot_lease_end(), 0u) << "the new id has issued nothing";
  StatusOr<Cart> delta = Update<Cart>(*this->store_, "c", [](Cart& c, ReplicaId r) {
    return c.Update("x", [&](crdt::CausalCounter& q) { return q.Increment(r, 1); });
  });
  ASSERT_TRUE(delta.ok());
  EXPECT_EQ(delta->context().Max(after.replica), 1u);
}

TYPED_TEST(StoreTest, RawReadAndOverwriteBypassTheJoin) {
  ASSERT_TRUE(this->WriteOne("k", this->Count(1, 2)).ok());
  StatusOr<std::optional<std::string>> raw = this->store_->ReadRaw("k");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ(**raw, this->Count(1, 2));

  ASSERT_TRUE(this->store_->OverwriteRaw("k", this->Count(3, 1)).ok());
  EXPECT_EQ(this->CounterValue("k"), 1u) << "replaced, not joined";

  ASSERT_TRUE(this->store_->OverwriteRaw("bad", "planted corruption").ok());
  raw = this->store_->ReadRaw("bad");
  ASSERT_TRUE(raw.ok() && raw->has_value());
  EXPECT_EQ(**raw, "planted corruption");
  StatusOr<GCounter> decoded = Read<GCounter>(*this->store_, "bad");
  EXPECT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("state of key bad"), std::string::npos)
      << decoded.status();
}

TYPED_TEST(StoreTest, CloseThenUseFailsCleanly) {
  ASSERT_TRUE(this->WriteOne("k", this->Count(1, 1)).ok());
  ASSERT_TRUE(this->store_->Close().ok());
  const auto closed = [](const Status& s) { return s.code() == StatusCode::kFailedPrecondition; };
  EXPECT_TRUE(closed(this->WriteOne("k", this->Count(1, 2))));
  EXPECT_TRUE(closed(this->store_->Get("k").status()));
  EXPECT_TRUE(closed(this->store_->GetAux("k").status()));
  EXPECT_TRUE(closed(this->store_->Scan("", "", [](auto, auto) { return true; })));
  EXPECT_TRUE(closed(this->store_->ScanAux("", "", [](auto, auto) { return true; })));
  EXPECT_TRUE(closed(this->store_->EnsureDotLease(1'000'000)));
  EXPECT_TRUE(closed(this->store_->EnsureHlcLease({1'900'000'000'000, 0})));
  EXPECT_TRUE(closed(this->store_->Retire()));
  EXPECT_TRUE(closed(this->store_->ReadRaw("k").status()));
  EXPECT_TRUE(closed(this->store_->OverwriteRaw("k", "x")));
  EXPECT_TRUE(closed(this->store_->Close()));
  EXPECT_EQ(this->store_->identity().incarnation, 1u) << "identity stays readable";
}

TYPED_TEST(StoreTest, ConcurrentWritersAreAllApplied) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 150;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        WriteBatch batch;
        // Each thread counts as its own replica in a shared key, and in a
        // key of its own; i+1 so that every write is an inflation.
        batch.Merge("shared", this->Count(static_cast<std::uint64_t>(t) + 1,
                                          static_cast<std::uint64_t>(i) + 1));
        batch.Merge("own" + std::to_string(t), this->Count(1, static_cast<std::uint64_t>(i) + 1));
        if (!this->store_->Write(batch).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(this->CounterValue("shared"), std::uint64_t{kThreads} * kWrites);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(this->CounterValue("own" + std::to_string(t)), std::uint64_t{kWrites});
  }
}

// The simulator's model of a directory restored from a copy (TESTPLAN R9):
// two stores restored from one snapshot are two processes, and retire to
// different ids, as RocksStore's do (CopiesRestoredFromOneBackupRetireTo-
// DifferentIds). Before the id seed, both derived their next id from the
// snapshot alone, and the swarm's rolled_back seed 1140 reissued a dot.
TEST(MemoryStoreTest, StoresRestoredFromOneSnapshotRetireToDifferentIds) {
  MemoryStore original(Builtins(), ReplicaId{0x5eed});
  ASSERT_TRUE(original.Retire().ok());
  const MemoryStore::Snapshot copy = original.TakeSnapshot();
  MemoryStore first(Builtins(), copy, /*id_seed=*/1);
  MemoryStore second(Builtins(), copy, /*id_seed=*/2);
  EXPECT_FALSE(first.identity().created);
  ASSERT_TRUE(first.Retire().ok());
  ASSERT_TRUE(second.Retire().ok());
  EXPECT_NE(first.identity().replica, second.identity().replica);
  EXPECT_NE(first.identity().replica, copy.identity.replica);
  ASSERT_TRUE(original.Retire().ok());
  EXPECT_NE(first.identity().replica, original.identity().replica);
  EXPECT_NE(second.identity().replica, original.identity().replica);
}

}  // namespace
}  // namespace converge::storage
