#include "replication/sim/sim_world.h"

#include "crdt/replica_id.h"
#include "replication/hash_tree.h"

namespace converge::replication::sim {

SimWorld::SimWorld(std::uint64_t seed) : rng_(seed) {}
SimWorld::~SimWorld() = default;

void SimWorld::ScheduleAt(std::uint64_t at, std::function<void()> fn,
                          std::shared_ptr<const bool> alive) {
  queue_.push(Event{std::max(at, now_ms_), next_order_++, std::move(fn), std::move(alive)});
}

void SimWorld::RunUntil(std::uint64_t until) {
  while (!queue_.empty() && queue_.top().at <= until) {
    Event event = queue_.top();
    queue_.pop();
    now_ms_ = event.at;
    if (event.alive && !*event.alive) continue;
    ++events_run_;
    event.fn();
  }
  now_ms_ = std::max(now_ms_, until);
}

void SimWorld::MixTrace(std::uint64_t value) {
  trace_hash_ = crdt::internal::Mix64(trace_hash_ ^ value);
}

std::uint64_t SimWorld::bytes_sent(const std::string& node) const {
  const auto it = bytes_sent_.find(node);
  return it == bytes_sent_.end() ? 0 : it->second;
}

void SimWorld::Register(const std::string& name, SimTransport* transport) {
  endpoints_[name] = transport;
}

void SimWorld::Unregister(const std::string& name, SimTransport* transport) {
  const auto it = endpoints_.find(name);
  if (it != endpoints_.end() && it->second == transport) endpoints_.erase(it);
}

void SimWorld::Deliver(const std::string& from, const std::string& to, std::string frame) {
  bytes_sent_[from] += frame.size();
  ++frames_sent_;
  bytes_sent_total_ += frame.size();
  max_frame_sent_ = std::max<std::uint64_t>(max_frame_sent_, frame.size());
  if (IsCut(from, to)) return;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  if (coin(rng_) < faults_.loss) return;
  const int copies = coin(rng_) < faults_.duplication ? 2 : 1;
  for (int c = 0; c < copies; ++c) {
    const std::uint64_t delay = std::uniform_int_distribution<std::uint64_t>(
        faults_.min_delay_ms, std::max(faults_.min_delay_ms, faults_.max_delay_ms))(rng_);
    ScheduleAt(now_ms_ + delay, [this, from, to, frame] {
      // The link may have been cut, or the receiver crashed, meanwhile.
      if (IsCut(from, to)) return;
      const auto it = endpoints_.find(to);
      if (it == endpoints_.end()) return;
      ++frames_delivered_;
      MixTrace(now_ms_);
      MixTrace(Hash64(from) ^ (Hash64(to) << 1) ^ Hash64(frame));
      it->second->Receive(from, frame);
    });
  }
}

Clock::TimerId SimClock::Schedule(std::uint64_t delay_ms, std::function<void()> fn) {
  const TimerId id = ++next_id_;
  world_.ScheduleAt(
      world_.now_ms() + delay_ms,
      [this, id, fn = std::move(fn)] {
        if (cancelled_.erase(id) > 0) return;
        fn();
      },
      alive_);
  return id;
}

SimTransport::SimTransport(SimWorld& world, std::string name, std::size_t max_frame_bytes)
    : world_(world),
      name_(std::move(name)),
      max_frame_bytes_(max_frame_bytes),
      alive_(std::make_shared<bool>(true)) {}

SimTransport::~SimTransport() {
  *alive_ = false;
  world_.Unregister(name_, this);
}

void SimTransport::Start(FrameHandler handler) {
  handler_ = std::move(handler);
  running_ = true;
  world_.Register(name_, this);
}

void SimTransport::Stop() {
  running_ = false;
  world_.Unregister(name_, this);
}

void SimTransport::Send(const Endpoint& to, std::string frame) {
  const std::string& target = to.name.empty() ? to.address : to.name;
  if (!running_ || frame.size() > max_frame_bytes_ || blocked_.contains(target)) {
    ++stats_.frames_dropped;
    return;
  }
  ++stats_.frames_sent;
  stats_.bytes_sent += frame.size();
  world_.Deliver(name_, target, std::move(frame));
}

void SimTransport::Receive(const std::string& from, std::string frame) {
  if (!running_ || blocked_.contains(from)) return;
  ++stats_.frames_received;
  stats_.bytes_received += frame.size();
  // Handlers run as their own event, like a posted completion.
  world_.ScheduleAt(
      world_.now_ms(),
      [this, from, frame = std::move(frame)]() mutable {
        if (running_) handler_(from, std::move(frame));
      },
      alive_);
}

}  // namespace converge::replication::sim
