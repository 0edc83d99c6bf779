// Prometheus metrics of a replication node (docs/replication.md, "Metrics").
//
// NodeMetrics is a prometheus::Collectable: register it with a
// prometheus::Registry (the cart server serves that registry at /metrics)
// and every scrape calls `snapshot` and turns what it returns into metric
// families named converge_replication_*. Counters mirror the node's
// monotonic statistics, gauges its buffer, members and connections, a
// histogram its time to converge per update, and per-peer gauges (label
// `peer`) the lag and silence of each member.
//
//   auto metrics = std::make_shared<replication::NodeMetrics>([&] {
//     return RunOnNode([&] { return replication::TakeMetricsSnapshot(node, &transport); });
//   });
//   registry.Register(metrics);
//
// Thread safety: Collect may run on any thread; `snapshot` must be safe to
// call from the scraping thread (Node introspection is executor-only, so it
// usually posts to the node and waits). A snapshot that returns nullopt (the
// node is stopping) exports nothing.

#ifndef CONVERGE_REPLICATION_METRICS_H_
#define CONVERGE_REPLICATION_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "replication/node.h"
#include "replication/transport.h"

namespace converge::replication {

struct MetricsSnapshot {
  NodeStats node;
  std::vector<PeerStatus> peers;
  TransportStats transport;
};

// Executor only (Node::stats and Node::Peers are).
MetricsSnapshot TakeMetricsSnapshot(const Node& node, const Transport& transport);

class NodeMetrics final : public prometheus::Collectable {
 public:
  using SnapshotFn = std::function<std::optional<MetricsSnapshot>()>;
  explicit NodeMetrics(SnapshotFn snapshot) : snapshot_(std::move(snapshot)) {}

  std::vector<prometheus::MetricFamily> Collect() const override;

  // The families for one snapshot (what Collect returns).
  static std::vector<prometheus::MetricFamily> Families(const MetricsSnapshot& snapshot);

 private:
  SnapshotFn snapshot_;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_METRICS_H_
