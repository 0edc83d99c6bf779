#include "replication/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "crdt/crdt.h"
#include "replication/sim/sim_world.h"
#include "storage/memory_store.h"

namespace converge::replication {
namespace {

using StringSet = crdt::OrSet<std::string>;

struct TwoNodes {
  sim::SimWorld world{3};
  std::shared_ptr<const codec::TypeRegistry> registry =
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  std::vector<std::unique_ptr<storage::MemoryStore>> stores;
  std::vector<std::unique_ptr<sim::SimClock>> clocks;
  std::vector<std::unique_ptr<sim::SimTransport>> transports;
  std::vector<std::unique_ptr<Node>> nodes;

  TwoNodes() {
    for (int i = 0; i < 2; ++i) {
      const std::string name = "n" + std::to_string(i);
      stores.push_back(std::make_unique<storage::MemoryStore>(
          registry, crdt::ReplicaId{static_cast<std::uint64_t>(i) + 7}));
      clocks.push_back(std::make_unique<sim::SimClock>(world));
      transports.push_back(std::make_unique<sim::SimTransport>(world, name));
      NodeOptions o;
      o.name = name;
      o.address = name;
      o.seeds = {"n0"};
      o.gossip_interval_ms = 50;
      o.seed = static_cast<std::uint64_t>(i) + 1;
      nodes.push_back(
          std::make_unique<Node>(o, *stores.back(), *transports.back(), *clocks.back(), registry));
      EXPECT_TRUE(nodes.back()->Start().ok());
    }
  }
};

double Value(const std::vector<prometheus::MetricFamily>& families, const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) {
      const auto& m = f.metric.at(0);
      return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
    }
  }
  ADD_FAILURE() << "no family " << name;
  return -1;
}

TEST(NodeMetricsTest, ExportsCountersPeersAndTimeToConverge) {
  TwoNodes c;
  c.world.RunFor(500);
  for (int k = 0; k < 5; ++k) {
    c.nodes[0]->Update<StringSet>(
        "set:a", [k](StringSet& s, crdt::ReplicaId r) { return s.Add(r, "e" + std::to_string(k)); },
        WriteConsistency::kLocal, [](StatusOr<StringSet> d) { EXPECT_TRUE(d.ok()); });
  }
  c.world.RunFor(2'000);
  NodeMetrics metrics([&] {
    return std::optional<MetricsSnapshot>(TakeMetricsSnapshot(*c.nodes[0], *c.transports[0]));
  });
  const auto families = metrics.Collect();
  EXPECT_EQ(Value(families, "converge_replication_updates_total"), 5);
  EXPECT_GE(Value(families, "converge_replication_deltas_acked_total"), 5);
  EXPECT_EQ(Value(families, "converge_replication_members_alive"), 1);
  EXPECT_GT(Value(families, "converge_transport_bytes_sent_total"), 0);
  bool histogram = false, lag = false;
  for (const auto& f : families) {
    if (f.name == "converge_replication_converge_seconds") {
      histogram = true;
      const auto& h = f.metric.at(0).histogram;
      EXPECT_EQ(h.sample_count, 5u);  // every update reached the one peer
      EXPECT_EQ(h.bucket.back().cumulative_count, 5u);
      EXPECT_TRUE(std::isinf(h.bucket.back().upper_bound));
    }
    if (f.name == "converge_replication_peer_lag_entries") {
      lag = true;
      ASSERT_EQ(f.metric.size(), 1u);
      EXPECT_EQ(f.metric[0].label.at(0).value, "n1");
      EXPECT_EQ(f.metric[0].gauge.value, 0);
    }
  }
  EXPECT_TRUE(histogram);
  EXPECT_TRUE(lag);
  // The text format a scraper reads.
  const std::string text = prometheus::TextSerializer().Serialize(families);
  EXPECT_NE(text.find("converge_replication_converge_seconds_bucket{le=\"+Inf\"} 5"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("converge_replication_peer_state{peer=\"n1\",state=\"alive\"} 1"),
            std::string::npos)
      << text;
}

TEST(NodeMetricsTest, NothingWhileTheNodeIsGone) {
  NodeMetrics metrics([] { return std::optional<MetricsSnapshot>(); });
  EXPECT_TRUE(metrics.Collect().empty());
}

}  // namespace
}  // namespace converge::replication
