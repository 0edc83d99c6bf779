#include "replication/node.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "crdt/crdt.h"
#include "replication/sim/sim_world.h"
#include "storage/memory_store.h"

namespace converge::replication {
namespace {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;

struct SimNode {
  std::unique_ptr<storage::MemoryStore> store;
  std::unique_ptr<sim::SimClock> clock;
  std::unique_ptr<sim::SimTransport> transport;
  std::unique_ptr<Node> node;
};

TEST(NodeTest, ThreeNodesConverge) {
  sim::SimWorld world(42);
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  std::vector<SimNode> nodes(3);
  for (int i = 0; i < 3; ++i) {
    const std::string name = "n" + std::to_string(i);
    auto& n = nodes[static_cast<std::size_t>(i)];
    n.store = std::make_unique<storage::MemoryStore>(
        registry, crdt::ReplicaId{static_cast<std::uint64_t>(i) + 100});
    n.clock = std::make_unique<sim::SimClock>(world);
    n.transport = std::make_unique<sim::SimTransport>(world, name);
    NodeOptions options;
    options.name = name;
    options.address = name;
    options.seeds = {"n0"};
    options.seed = static_cast<std::uint64_t>(i) + 1;
    n.node = std::make_unique<Node>(options, *n.store, *n.transport, *n.clock, registry);
    ASSERT_TRUE(n.node->Start().ok());
  }
  world.RunFor(1000);
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    nodes[static_cast<std::size_t>(i)].node->Update<Cart>(
        "cart:a",
        [i](Cart& c, crdt::ReplicaId r) {
          return c.Update("sku" + std::to_string(i),
                          [&](crdt::CausalCounter& q) { return q.Increment(r, 1); });
        },
        WriteConsistency::kLocal,
        [&](StatusOr<Cart> d) {
          EXPECT_TRUE(d.ok()) << d.status();
          ++done;
        });
  }
  world.RunFor(3000);
  EXPECT_EQ(done, 3);
  for (auto& n : nodes) {
    auto cart = n.node->Read<Cart>("cart:a");
    ASSERT_TRUE(cart.ok());
    EXPECT_EQ(cart->size(), 3u) << n.node->name();
    EXPECT_EQ(n.node->root_hash(), nodes[0].node->root_hash());
  }
}

}  // namespace
}  // namespace converge::replication
