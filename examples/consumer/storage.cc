// A downstream project keeping a cart in a RocksDB-backed replica store.

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "crdt/crdt.h"
#include "storage/rocks_store.h"
#include "storage/typed.h"

using Cart = converge::crdt::OrMap<std::string, converge::crdt::CausalCounter>;

int main() {
  const auto dir = std::filesystem::temp_directory_path() / "converge-consumer-store";
  std::filesystem::remove_all(dir);
  converge::storage::RocksStoreOptions options;
  options.registry = std::make_shared<converge::codec::TypeRegistry>(
      converge::codec::TypeRegistry::WithBuiltins());
  auto store = converge::storage::RocksStore::Open(dir.string(), options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  auto delta = converge::storage::Update<Cart>(
      **store, "cart:alice", [](Cart& cart, converge::crdt::ReplicaId self) {
        return cart.Update("apple",
                           [&](converge::crdt::CausalCounter& q) { return q.Increment(self, 3); });
      });
  auto cart = converge::storage::Read<Cart>(**store, "cart:alice");
  const bool ok = delta.ok() && cart.ok() && cart->Get("apple") && cart->Get("apple")->Value() == 3;
  if (!ok || !(*store)->Close().ok()) {
    std::fprintf(stderr, "consumer storage: unexpected result\n");
    return 1;
  }
  std::filesystem::remove_all(dir);
  std::printf("consumer storage: ok, apple x3 persisted\n");
  return 0;
}
