#include "storage/rocks_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "crdt/crdt.h"
#include "storage/typed.h"

namespace converge::storage {
namespace {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;

TEST(RocksStoreTest, UpdateReadReopen) {
  const std::string dir = ::testing::TempDir() + "/rocks_store_basic";
  std::filesystem::remove_all(dir);
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  RocksStoreOptions options;
  options.registry = registry;
  crdt::ReplicaId id;
  {
    auto store = RocksStore::Open(dir, options);
    ASSERT_TRUE(store.ok()) << store.status();
    id = (*store)->identity().replica;
    auto delta = Update<Cart>(**store, "cart:a", [](Cart& c, crdt::ReplicaId r) {
      return c.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(r, 2); });
    });
    ASSERT_TRUE(delta.ok()) << delta.status();
    ASSERT_TRUE((*store)->Close().ok());
  }
  auto store = RocksStore::Open(dir, options);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->identity().replica, id);
  auto cart = Read<Cart>(**store, "cart:a");
  ASSERT_TRUE(cart.ok());
  EXPECT_EQ(cart->Get("apple")->Value(), 2u);
}

}  // namespace
}  // namespace converge::storage
