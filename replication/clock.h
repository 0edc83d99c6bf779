// Clock: time and timers for a Node, on the node's executor.
//
// The node never reads system time or arms timers itself: it asks its Clock,
// so the same node code runs on real time (AsioClock, replication/asio_clock.h)
// and on the simulator's virtual time (sim/), where a seed fixes everything.
//
// Contract: callbacks passed to Schedule and Post run on the node's executor,
// one at a time, never inside the call that registered them.

#ifndef CONVERGE_REPLICATION_CLOCK_H_
#define CONVERGE_REPLICATION_CLOCK_H_

#include <cstdint>
#include <functional>

namespace converge::replication {

class Clock {
 public:
  using TimerId = std::uint64_t;

  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  // Monotonic milliseconds (for timeouts and rounds).
  [[nodiscard]] virtual std::uint64_t NowMs() const = 0;
  // Wall-clock milliseconds since the Unix epoch (the HLC's physical time).
  [[nodiscard]] virtual std::uint64_t WallMs() const = 0;

  // Runs fn once, delay_ms from now. Returns an id for Cancel.
  virtual TimerId Schedule(std::uint64_t delay_ms, std::function<void()> fn) = 0;
  // Cancels a timer that has not run; no effect otherwise.
  virtual void Cancel(TimerId id) = 0;
  // Runs fn on the executor as soon as possible (thread-safe: the way other
  // threads hand work to the node).
  virtual void Post(std::function<void()> fn) = 0;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_CLOCK_H_
