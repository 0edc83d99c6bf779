// A deterministic world for whole clusters: virtual time, an event queue and
// a network that loses, duplicates, delays and reorders frames and cuts
// links, all driven by one seed. Nodes run on it unchanged through SimClock
// and SimTransport (docs/simulation.md).
//
// Everything happens on the caller's thread, one event at a time, in
// (time, insertion order); the same seed and the same calls give the same
// run, event for event.

#ifndef CONVERGE_REPLICATION_SIM_SIM_WORLD_H_
#define CONVERGE_REPLICATION_SIM_SIM_WORLD_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/transport.h"

namespace converge::replication::sim {

// Faults applied to every frame.
struct NetworkFaults {
  double loss = 0.0;         // probability a frame is dropped
  double duplication = 0.0;  // probability a frame is delivered twice
  std::uint64_t min_delay_ms = 1;
  std::uint64_t max_delay_ms = 5;  // > min: frames overtake each other (reordering)
};

class SimTransport;

class SimWorld {
 public:
  explicit SimWorld(std::uint64_t seed);
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;
  ~SimWorld();

  [[nodiscard]] std::uint64_t now_ms() const { return now_ms_; }
  std::mt19937_64& rng() { return rng_; }

  // Runs fn at virtual time `at` (not before now). Events of one time run in
  // the order they were scheduled. `alive` (optional): skipped once false.
  void ScheduleAt(std::uint64_t at, std::function<void()> fn,
                  std::shared_ptr<const bool> alive = nullptr);

  // Runs events until virtual time `until` (inclusive) or the queue empties.
  void RunUntil(std::uint64_t until);
  void RunFor(std::uint64_t duration_ms) { RunUntil(now_ms_ + duration_ms); }
  [[nodiscard]] std::uint64_t events_run() const { return events_run_; }

  // --- network
  void set_faults(const NetworkFaults& faults) { faults_ = faults; }
  [[nodiscard]] const NetworkFaults& faults() const { return faults_; }
  // Frames from `from` to `to` are dropped (one way).
  void Cut(const std::string& from, const std::string& to) { cut_.insert({from, to}); }
  void Restore(const std::string& from, const std::string& to) { cut_.erase({from, to}); }
  void RestoreAll() { cut_.clear(); }
  [[nodiscard]] bool IsCut(const std::string& from, const std::string& to) const {
    return cut_.contains({from, to});
  }
  [[nodiscard]] const std::set<std::pair<std::string, std::string>>& cuts() const { return cut_; }

  // Bytes each node has sent (frames accepted by the network).
  [[nodiscard]] std::uint64_t bytes_sent(const std::string& node) const;
  [[nodiscard]] std::uint64_t frames_delivered() const { return frames_delivered_; }
  [[nodiscard]] std::uint64_t frames_sent() const { return frames_sent_; }
  [[nodiscard]] std::uint64_t bytes_sent_total() const { return bytes_sent_total_; }
  // The largest frame any node sent.
  [[nodiscard]] std::uint64_t max_frame_sent() const { return max_frame_sent_; }
  // A running hash of every delivery (time, from, to, frame): two runs with
  // the same trace hash did exactly the same thing.
  [[nodiscard]] std::uint64_t trace_hash() const { return trace_hash_; }
  void MixTrace(std::uint64_t value);

 private:
  friend class SimTransport;
  struct Event {
    std::uint64_t at;
    std::uint64_t order;
    std::function<void()> fn;
    std::shared_ptr<const bool> alive;
    bool operator>(const Event& other) const {
      return at != other.at ? at > other.at : order > other.order;
    }
  };

  void Register(const std::string& name, SimTransport* transport);
  void Unregister(const std::string& name, SimTransport* transport);
  void Deliver(const std::string& from, const std::string& to, std::string frame);

  std::uint64_t now_ms_ = 0;
  std::uint64_t next_order_ = 0;
  std::uint64_t events_run_ = 0;
  std::mt19937_64 rng_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> queue_;
  NetworkFaults faults_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::map<std::string, SimTransport*> endpoints_;
  std::map<std::string, std::uint64_t> bytes_sent_;
  std::uint64_t frames_delivered_ = 0;
  std::uint64_t frames_sent_ = 0;
  std::uint64_t bytes_sent_total_ = 0;
  std::uint64_t max_frame_sent_ = 0;
  std::uint64_t trace_hash_ = 0x84222325cbf29ce4ULL;
};

// Virtual time for one node. Destroying it cancels its pending timers.
class SimClock final : public Clock {
 public:
  explicit SimClock(SimWorld& world, std::uint64_t wall_offset_ms = 1'700'000'000'000ULL)
      : world_(world), wall_offset_ms_(wall_offset_ms), alive_(std::make_shared<bool>(true)) {}
  ~SimClock() override { *alive_ = false; }

  std::uint64_t NowMs() const override { return world_.now_ms(); }
  std::uint64_t WallMs() const override { return world_.now_ms() + wall_offset_ms_; }
  // Skews this node's wall clock (clock-skew faults).
  void set_wall_offset_ms(std::uint64_t offset) { wall_offset_ms_ = offset; }
  TimerId Schedule(std::uint64_t delay_ms, std::function<void()> fn) override;
  void Cancel(TimerId id) override { cancelled_.insert(id); }
  void Post(std::function<void()> fn) override { Schedule(0, std::move(fn)); }

 private:
  SimWorld& world_;
  std::uint64_t wall_offset_ms_;
  std::shared_ptr<bool> alive_;
  TimerId next_id_ = 0;
  std::set<TimerId> cancelled_;
};

// One node's endpoint on the simulated network. Addresses are node names.
class SimTransport final : public Transport {
 public:
  SimTransport(SimWorld& world, std::string name,
               std::size_t max_frame_bytes = std::size_t{4} << 20);
  ~SimTransport() override;

  void Start(FrameHandler handler) override;
  void Send(const Endpoint& to, std::string frame) override;
  void Stop() override;
  void Block(const std::string& peer) override { blocked_.insert(peer); }
  void UnblockAll() override { blocked_.clear(); }
  TransportStats stats() const override { return stats_; }
  std::size_t max_frame_bytes() const override { return max_frame_bytes_; }

 private:
  friend class SimWorld;
  void Receive(const std::string& from, std::string frame);

  SimWorld& world_;
  std::string name_;
  std::size_t max_frame_bytes_;
  FrameHandler handler_;
  bool running_ = false;
  std::set<std::string> blocked_;
  TransportStats stats_;
  std::shared_ptr<bool> alive_;
};

}  // namespace converge::replication::sim

#endif  // CONVERGE_REPLICATION_SIM_SIM_WORLD_H_
