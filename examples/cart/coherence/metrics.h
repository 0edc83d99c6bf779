// The Prometheus metrics of the standing coherence service
// (coherence-check --watch SECONDS --metrics HOST:PORT; docs/coherence.md,
// "Metrics"). Gauges describe the last scan; counters and the histogram
// accumulate over scans.
//
// Thread safety: Observe runs on the scanning thread while the exposer's
// threads collect; prometheus-cpp metrics are safe for that.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_METRICS_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <memory>
#include <vector>

#include "examples/cart/coherence/report.h"

namespace converge::cart::coherence {

class CoherenceMetrics {
 public:
  explicit CoherenceMetrics(prometheus::Registry& registry);

  // Records one scan: its report, and how long each divergence that ended
  // in it had lasted. `wall_time_seconds` is the scan's end (Unix time).
  void Observe(const Report& report,
               const std::vector<std::chrono::steady_clock::duration>& resolved,
               double wall_time_seconds);

 private:
  prometheus::Counter& scans_;
  prometheus::Gauge& scan_seconds_;
  prometheus::Gauge& ms_per_1000_keys_;
  prometheus::Gauge& last_scan_;
  prometheus::Gauge& nodes_;
  prometheus::Gauge& nodes_unreachable_;
  prometheus::Gauge& keys_scanned_;
  prometheus::Gauge& behind_;
  prometheus::Gauge& concurrent_;
  prometheus::Gauge& unexplainable_;
  prometheus::Gauge& within_grace_;
  prometheus::Gauge& domain_;
  prometheus::Gauge& divergence_seconds_;
  prometheus::Histogram& resolved_seconds_;
  prometheus::Counter& repairs_ok_;
  prometheus::Counter& repairs_failed_;
  prometheus::Gauge& needs_person_;
  prometheus::Gauge& scan_incomplete_;
};

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_METRICS_H_
