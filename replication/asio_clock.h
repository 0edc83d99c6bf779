// AsioClock: the node's Clock on real time, over a Boost.Asio executor.
//
// Timers are steady_timers; NowMs reads std::chrono::steady_clock and WallMs
// std::chrono::system_clock. Every callback (Schedule, Post) runs on the
// executor given to the constructor — a strand, or the executor of an
// io_context that one thread runs — so the node sees one event at a time.
//
// Thread safety: every member is safe to call from any thread.
//
// Lifetime: Shutdown (and the destructor, which calls it) cancels pending
// timers and drops callbacks that have not started; call it on the executor
// or once the executor runs nothing else, so that no callback is running
// while it returns. The io_context must outlive the clock.

#ifndef CONVERGE_REPLICATION_ASIO_CLOCK_H_
#define CONVERGE_REPLICATION_ASIO_CLOCK_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "replication/asio.h"
#include "replication/clock.h"

namespace converge::replication {

class AsioClock final : public Clock {
 public:
  explicit AsioClock(asio::any_io_executor executor);
  ~AsioClock() override;

  [[nodiscard]] std::uint64_t NowMs() const override;
  [[nodiscard]] std::uint64_t WallMs() const override;
  TimerId Schedule(std::uint64_t delay_ms, std::function<void()> fn) override;
  void Cancel(TimerId id) override;
  void Post(std::function<void()> fn) override;

  // Cancels every timer and drops every callback not yet started; later
  // Schedule and Post calls are ignored.
  void Shutdown();

  [[nodiscard]] const asio::any_io_executor& executor() const { return executor_; }

 private:
  struct State;  // shared with pending handlers, which outlive the clock

  asio::any_io_executor executor_;
  std::shared_ptr<State> state_;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_ASIO_CLOCK_H_
