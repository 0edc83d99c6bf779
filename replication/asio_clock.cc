// AsioClock: see asio_clock.h.

#include "replication/asio_clock.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

namespace converge::replication {

// Timers live here so that a handler can tell, under the mutex, whether its
// timer was cancelled or the clock shut down. Every operation on a timer
// object (async_wait, cancel) happens under the mutex: steady_timer is not
// safe for concurrent use, and Schedule/Cancel may come from any thread.
struct AsioClock::State {
  std::mutex mu;
  std::atomic<bool> shut_down{false};
  TimerId next_id = 0;
  std::map<TimerId, std::unique_ptr<asio::steady_timer>> timers;
};

AsioClock::AsioClock(asio::any_io_executor executor)
    : executor_(std::move(executor)), state_(std::make_shared<State>()) {}

AsioClock::~AsioClock() { Shutdown(); }

std::uint64_t AsioClock::NowMs() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t AsioClock::WallMs() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

Clock::TimerId AsioClock::Schedule(std::uint64_t delay_ms, std::function<void()> fn) {
  std::lock_guard lock(state_->mu);
  const TimerId id = ++state_->next_id;
  if (state_->shut_down) return id;
  auto timer = std::make_unique<asio::steady_timer>(executor_);
  timer->expires_after(std::chrono::milliseconds(delay_ms));
  timer->async_wait([state = state_, id, fn = std::move(fn)](boost::system::error_code ec) {
    if (ec) return;
    {
      std::lock_guard handler_lock(state->mu);
      if (state->shut_down) return;
      // Absent: cancelled after it had already expired.
      if (state->timers.erase(id) == 0) return;
    }
    fn();
  });
  state_->timers.emplace(id, std::move(timer));
  return id;
}

void AsioClock::Cancel(TimerId id) {
  std::lock_guard lock(state_->mu);
  const auto it = state_->timers.find(id);
  if (it == state_->timers.end()) return;
  it->second->cancel();
  state_->timers.erase(it);
}

void AsioClock::Post(std::function<void()> fn) {
  if (state_->shut_down) return;
  asio::post(executor_, [state = state_, fn = std::move(fn)] {
    if (!state->shut_down) fn();
  });
}

void AsioClock::Shutdown() {
  std::lock_guard lock(state_->mu);
  state_->shut_down = true;
  for (auto& [id, timer] : state_->timers) timer->cancel();
  state_->timers.clear();
}

}  // namespace converge::replication
