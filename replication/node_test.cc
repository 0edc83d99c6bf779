#include "replication/node.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
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

// A store restored from a copy (here: one taken before any write) may hide
// dots its replica id already issued; the node must not trust it.
TEST(NodeTest, StoreRestoredFromACopyStartsANewIncarnation) {
  sim::SimWorld world(7);
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  storage::MemoryStore original(registry, crdt::ReplicaId{500});
  const storage::MemoryStore::Snapshot before_any_write = original.TakeSnapshot();
  NodeOptions options;
  options.name = "n0";
  options.address = "n0";
  {
    sim::SimClock clock(world);
    sim::SimTransport transport(world, "n0");
    Node fresh(options, original, transport, clock, registry);
    ASSERT_TRUE(fresh.Start().ok());
    EXPECT_EQ(fresh.replica(), crdt::ReplicaId{500}) << "a store this process created keeps its id";
    fresh.Stop();
  }
  storage::MemoryStore restored(registry, before_any_write);
  sim::SimClock clock(world);
  sim::SimTransport transport(world, "n0");
  Node node(options, restored, transport, clock, registry);
  ASSERT_TRUE(node.Start().ok());
  EXPECT_NE(node.replica(), crdt::ReplicaId{500});
  EXPECT_EQ(node.stats().retirements, 1u);
  EXPECT_EQ(restored.identity().incarnation, 2u);
}

// Writes waiting for confirmations hear of a stop instead of never.
TEST(NodeTest, StopAnswersWritesWaitingForConfirmations) {
  sim::SimWorld world(8);
  auto registry = std::make_shared<codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  storage::MemoryStore a_store(registry, crdt::ReplicaId{1}), b_store(registry, crdt::ReplicaId{2});
  sim::SimClock a_clock(world), b_clock(world);
  sim::SimTransport a_net(world, "a"), b_net(world, "b");
  NodeOptions a_options, b_options;
  a_options.name = a_options.address = "a";
  b_options.name = b_options.address = "b";
  b_options.seeds = {"a"};
  Node a(a_options, a_store, a_net, a_clock, registry);
  Node b(b_options, b_store, b_net, b_clock, registry);
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(b.Start().ok());
  world.RunFor(1'000);
  world.Cut("b", "a");  // b's acknowledgements never arrive
  std::optional<Status> outcome;
  a.Update<Cart>(
      "cart:x",
      [](Cart& c, crdt::ReplicaId r) {
        return c.Update("fig", [&](crdt::CausalCounter& q) { return q.Increment(r, 1); });
      },
      WriteConsistency::kAll, [&](StatusOr<Cart> d) { outcome = d.status(); });
  world.RunFor(500);
  EXPECT_FALSE(outcome.has_value());
  a.Stop();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->code(), StatusCode::kUnavailable) << *outcome;
  // Durable here all the same.
  EXPECT_EQ(a.Read<Cart>("cart:x")->size(), 1u);
}

}  // namespace
}  // namespace converge::replication
