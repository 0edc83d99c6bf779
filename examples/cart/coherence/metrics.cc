#include "examples/cart/coherence/metrics.h"

#include <algorithm>

namespace converge::cart::coherence {

namespace {

prometheus::Gauge& Gauge(prometheus::Registry& r, const char* name, const char* help,
                         const prometheus::Labels& labels = {}) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

prometheus::Counter& Counter(prometheus::Registry& r, const char* name, const char* help,
                             const prometheus::Labels& labels = {}) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

CoherenceMetrics::CoherenceMetrics(prometheus::Registry& r)
    : scans_(Counter(r, "converge_coherence_scans_total", "Coherence scans completed")),
      scan_seconds_(
          Gauge(r, "converge_coherence_scan_duration_seconds", "Wall time of the last scan")),
      ms_per_1000_keys_(Gauge(r, "converge_coherence_scan_ms_per_1000_keys",
                              "Scan time per 1,000 keys in the last scan")),
      last_scan_(Gauge(r, "converge_coherence_last_scan_timestamp_seconds",
                       "Unix time the last scan ended")),
      nodes_(Gauge(r, "converge_coherence_nodes", "Nodes taking part in the last scan")),
      nodes_unreachable_(Gauge(r, "converge_coherence_nodes_unreachable",
                               "Nodes that did not answer in the last scan")),
      keys_scanned_(Gauge(r, "converge_coherence_keys_scanned", "Keys in the last scan")),
      behind_(Gauge(r, "converge_coherence_keys_divergent",
                    "Keys differing past the grace period, by reason", {{"reason", "behind"}})),
      concurrent_(Gauge(r, "converge_coherence_keys_divergent",
                        "Keys differing past the grace period, by reason",
                        {{"reason", "concurrent"}})),
      unexplainable_(Gauge(r, "converge_coherence_keys_divergent",
                           "Keys differing past the grace period, by reason",
                           {{"reason", "unexplainable"}})),
      within_grace_(Gauge(r, "converge_coherence_keys_within_grace",
                          "Keys differing, not yet for the grace period")),
      domain_(Gauge(r, "converge_coherence_keys_domain_violations",
                    "Keys whose state breaks the cart rules")),
      divergence_seconds_(Gauge(r, "converge_coherence_key_divergence_seconds",
                                "Longest time a key has been seen differing (max over keys)")),
      resolved_seconds_(
          prometheus::BuildHistogram()
              .Name("converge_coherence_divergence_resolved_seconds")
              .Help("How long a key had been seen differing when it was seen equal again")
              .Register(r)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60,
                                                               300, 1800})),
      repairs_ok_(Counter(r, "converge_coherence_repairs_total", "Joins pushed by --repair",
                          {{"result", "ok"}})),
      repairs_failed_(Counter(r, "converge_coherence_repairs_total", "Joins pushed by --repair",
                              {{"result", "failed"}})),
      needs_person_(Gauge(r, "converge_coherence_needs_person",
                          "1 when the last scan found something in the data that needs a person")),
      scan_incomplete_(Gauge(r, "converge_coherence_scan_incomplete",
                             "1 when the last scan could not read every node")) {}

void CoherenceMetrics::Observe(const Report& report,
                               const std::vector<std::chrono::steady_clock::duration>& resolved,
                               double wall_time_seconds) {
  scans_.Increment();
  scan_seconds_.Set(report.figures.scan_seconds);
  ms_per_1000_keys_.Set(report.figures.ms_per_1000_keys);
  last_scan_.Set(wall_time_seconds);
  nodes_.Set(static_cast<double>(report.nodes.size()));
  nodes_unreachable_.Set(
      static_cast<double>(std::count_if(report.nodes.begin(), report.nodes.end(),
                                        [](const NodeSummary& n) { return !n.reachable; })));
  keys_scanned_.Set(static_cast<double>(report.keys_scanned));
  behind_.Set(static_cast<double>(CountDivergent(report, KeyClass::kBehind)));
  concurrent_.Set(static_cast<double>(CountDivergent(report, KeyClass::kConcurrent)));
  unexplainable_.Set(static_cast<double>(CountDivergent(report, KeyClass::kUnexplainable)));
  within_grace_.Set(static_cast<double>(report.keys_within_grace));
  domain_.Set(static_cast<double>(report.domain.size()));
  divergence_seconds_.Set(report.figures.max_divergence_seconds);
  for (const auto d : resolved) {
    resolved_seconds_.Observe(std::chrono::duration<double>(d).count());
  }
  const std::uint64_t failed = report.repairs_failed;
  repairs_ok_.Increment(static_cast<double>(report.repairs_attempted - failed));
  repairs_failed_.Increment(static_cast<double>(failed));
  needs_person_.Set(NeedsPersonReasons(report).empty() ? 0 : 1);
  scan_incomplete_.Set(ScanErrors(report).empty() ? 0 : 1);
}

}  // namespace converge::cart::coherence
