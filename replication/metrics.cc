#include "replication/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_type.h>

#include <limits>
#include <utility>

namespace converge::replication {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily Scalar(std::string name, std::string help, MetricType type, double value) {
  MetricFamily family{std::move(name), std::move(help), type, {}};
  ClientMetric metric;
  if (type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
  return family;
}

double D(std::uint64_t v) { return static_cast<double>(v); }

}  // namespace

MetricsSnapshot TakeMetricsSnapshot(const Node& node, const Transport& transport) {
  return MetricsSnapshot{node.stats(), node.Peers(), transport.stats()};
}

std::vector<MetricFamily> NodeMetrics::Collect() const {
  const std::optional<MetricsSnapshot> snapshot = snapshot_ ? snapshot_() : std::nullopt;
  if (!snapshot) return {};
  return Families(*snapshot);
}

std::vector<MetricFamily> NodeMetrics::Families(const MetricsSnapshot& s) {
  const NodeStats& n = s.node;
  const auto counter = MetricType::Counter;
  const auto gauge = MetricType::Gauge;
  std::vector<MetricFamily> out = {
      Scalar("converge_replication_updates_total", "Local updates committed", counter,
             D(n.updates)),
      Scalar("converge_replication_deltas_sent_total", "Delta-interval entries sent to peers",
             counter, D(n.deltas_sent)),
      Scalar("converge_replication_deltas_acked_total",
             "Delta-interval entries acknowledged by peers", counter, D(n.deltas_acked)),
      Scalar("converge_replication_deltas_applied_total",
             "Remote delta entries that changed the local state", counter, D(n.deltas_applied)),
      Scalar("converge_replication_intervals_rejected_total",
             "Delta intervals refused for a gap (repaired by anti-entropy)", counter,
             D(n.intervals_rejected)),
      Scalar("converge_replication_ae_sessions_total", "Anti-entropy sessions started", counter,
             D(n.ae_sessions)),
      Scalar("converge_replication_ae_repairs_total",
             "Anti-entropy sessions that moved at least one state", counter, D(n.ae_repairs)),
      Scalar("converge_replication_ae_keys_repaired_total",
             "States received by anti-entropy that changed the local state", counter,
             D(n.ae_keys_repaired)),
      Scalar("converge_replication_ae_bytes_sent_total", "Bytes of anti-entropy messages sent",
             counter, D(n.ae_bytes_sent)),
      Scalar("converge_replication_bytes_sent_total", "Bytes of protocol messages sent", counter,
             D(n.bytes_sent)),
      Scalar("converge_replication_bytes_received_total", "Bytes of protocol messages received",
             counter, D(n.bytes_received)),
      Scalar("converge_replication_messages_rejected_total",
             "Messages dropped as malformed, foreign or invalid", counter, D(n.messages_rejected)),
      Scalar("converge_replication_entries_rejected_total",
             "Remote deltas and states that do not decode or join: not held, not acknowledged",
             counter, D(n.entries_rejected)),
      Scalar("converge_replication_members_forgotten_total",
             "Members removed for good (by an operator, learned from a peer, or automatically)",
             counter, D(n.members_forgotten)),
      Scalar("converge_replication_members_suspected_total",
             "Members this node suspected after its probes went unanswered (clusters larger "
             "than members_per_message)",
             counter, D(n.members_suspected)),
      Scalar("converge_replication_suspicions_refuted_total",
             "Suspicions of this node (or declarations of its death) it refuted", counter,
             D(n.suspicions_refuted)),
      Scalar("converge_replication_chunks_sent_total",
             "Chunks of states larger than a message sent", counter, D(n.chunks_sent)),
      Scalar("converge_replication_chunks_received_total",
             "Chunks of states larger than a message received", counter, D(n.chunks_received)),
      Scalar("converge_replication_large_states_received_total",
             "States larger than a message pulled whole and joined", counter,
             D(n.large_states_received)),
      Scalar("converge_replication_states_too_large_total",
             "States refused for passing max_key_bytes or the replica-id limit (local writes and "
             "peers' states)",
             counter, D(n.states_too_large)),
      Scalar("converge_replication_messages_oversized_total",
             "Messages not sent because they would pass max_message_bytes (a bug)", counter,
             D(n.messages_oversized)),
      Scalar("converge_replication_store_reloads_total",
             "Digest tree and sequences read back after the store reopened from a disk error",
             counter, D(n.store_reloads)),
      Scalar("converge_replication_verify_passes_total",
             "Whole verifications of the digest index and tree against the stored states", counter,
             D(n.verify_passes)),
      Scalar("converge_replication_digests_repaired_total",
             "Digest index entries found wrong by verification and repaired", counter,
             D(n.digests_repaired)),
      Scalar("converge_replication_tree_leaves_repaired_total",
             "Digest tree leaves found wrong by verification and repaired", counter,
             D(n.tree_leaves_repaired)),
      Scalar("converge_replication_timestamps_rejected_total",
             "Last-writer-wins writes refused for a timestamp too far ahead", counter,
             D(n.timestamps_rejected)),
      Scalar("converge_replication_retirements_total",
             "New incarnations (fresh replica ids) started", counter, D(n.retirements)),
      Scalar("converge_replication_prune_level",
             "Pruning level of this node's states (retired replica ids renamed onto the archive "
             "id, level by level)",
             gauge, D(n.prune_level)),
      Scalar("converge_replication_prune_proposals_total",
             "Pruning levels this node proposed as coordinator", counter, D(n.prune_proposals)),
      Scalar("converge_replication_prune_aborts_total",
             "Pruning proposals given up (a member refused, held other figures, or did not answer)",
             counter, D(n.prune_aborts)),
      Scalar("converge_replication_prune_levels_renamed_total",
             "Pruning levels this node reached by renaming its states", counter,
             D(n.prune_levels_renamed)),
      Scalar("converge_replication_prune_levels_stripped_total",
             "Pruning levels this node reached by stripping (it had missed them: a restored copy, "
             "a forgotten member)",
             counter, D(n.prune_levels_stripped)),
      Scalar("converge_replication_messages_other_level_total",
             "Messages with states from a peer at another pruning level (taken in once levels "
             "agree)",
             counter, D(n.messages_other_level)),
      Scalar("converge_replication_entries_refused_pruning_total",
             "Remote entries refused while a pruning proposal was recorded", counter,
             D(n.entries_refused_pruning)),
      Scalar("converge_replication_write_timeouts_total",
             "majority/all writes that timed out waiting for confirmations", counter,
             D(n.write_timeouts)),
      Scalar("converge_replication_rounds_total", "Gossip rounds", counter, D(n.rounds)),
      Scalar("converge_replication_cluster_clock_offset_ms",
             "The cluster's wall clock (median of the live members' and ours) minus ours; far "
             "from 0, this node's clock is wrong",
             gauge, static_cast<double>(n.cluster_clock_offset_ms)),
      Scalar("converge_replication_buffer_entries", "Entries in the delta buffer", gauge,
             D(n.buffer_entries)),
      Scalar("converge_replication_buffer_bytes", "Bytes in the delta buffer", gauge,
             D(n.buffer_bytes)),
      Scalar("converge_transport_frames_sent_total", "Frames written to peers", counter,
             D(s.transport.frames_sent)),
      Scalar("converge_transport_frames_received_total", "Frames received from peers", counter,
             D(s.transport.frames_received)),
      Scalar("converge_transport_bytes_sent_total", "Bytes written to peers", counter,
             D(s.transport.bytes_sent)),
      Scalar("converge_transport_bytes_received_total", "Bytes received from peers", counter,
             D(s.transport.bytes_received)),
      Scalar("converge_transport_frames_dropped_total",
             "Frames dropped (queue full, unreachable, cut link)", counter,
             D(s.transport.frames_dropped)),
      Scalar("converge_transport_peers_disconnected_total",
             "Connections closed because the peer misbehaved or stalled", counter,
             D(s.transport.peers_disconnected)),
  };

  // Time to converge per local update (a Prometheus histogram: cumulative).
  MetricFamily latency{"converge_replication_converge_seconds",
                       "Time from a local update's commit until every live peer acknowledged it",
                       MetricType::Histogram,
                       {}};
  ClientMetric h;
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < n.replication_ms_buckets.size(); ++b) {
    cumulative += n.replication_ms_buckets[b];
    ClientMetric::Bucket bucket;
    bucket.cumulative_count = cumulative;
    bucket.upper_bound = b < kReplicationLatencyBoundsMs.size()
                             ? D(kReplicationLatencyBoundsMs[b]) / 1000.0
                             : std::numeric_limits<double>::infinity();
    h.histogram.bucket.push_back(bucket);
  }
  h.histogram.sample_count = n.replication_count;
  h.histogram.sample_sum = D(n.replication_ms_sum) / 1000.0;
  latency.metric.push_back(std::move(h));
  out.push_back(std::move(latency));

  // Per peer.
  MetricFamily lag{"converge_replication_peer_lag_entries",
                   "Delta-buffer entries this peer has not acknowledged",
                   gauge,
                   {}};
  MetricFamily silent{"converge_replication_peer_silence_seconds",
                      "Time since this peer was last heard from",
                      gauge,
                      {}};
  MetricFamily state{"converge_replication_peer_state",
                     "1 for the peer's current membership state (alive, suspect, dead, left)",
                     gauge,
                     {}};
  std::uint64_t alive = 0;
  for (const PeerStatus& p : s.peers) {
    ClientMetric m;
    m.label = {{"peer", p.name}};
    m.gauge.value = D(p.lag);
    lag.metric.push_back(m);
    m.gauge.value = D(p.last_heard_ms_ago) / 1000.0;
    silent.metric.push_back(m);
    m.label.push_back({"state", p.state});
    m.gauge.value = 1;
    state.metric.push_back(std::move(m));
    if (p.state == "alive") ++alive;
  }
  out.push_back(std::move(lag));
  out.push_back(std::move(silent));
  out.push_back(std::move(state));
  out.push_back(
      Scalar("converge_replication_members_alive", "Peers currently alive", gauge, D(alive)));
  return out;
}

}  // namespace converge::replication
