// Hybrid logical clock (Kulkarni et al., "Logical physical clocks", 2014).
//
// A timestamp is (physical milliseconds, logical counter). Timestamps issued
// by one Hlc strictly increase, stay close to physical time, and respect
// causality: a timestamp issued after observing a remote one is greater.
//
// Skew protection: a remote timestamp whose physical part is more than
// max_offset ahead of the local physical clock is rejected, not adopted, so a
// replica with a clock far in the future cannot drag everyone's clocks (and
// every last-writer-wins decision) with it.
//
// Not thread-safe: one Hlc per replica, used from that replica's executor.

#ifndef CONVERGE_CRDT_HLC_H_
#define CONVERGE_CRDT_HLC_H_

#include <chrono>
#include <compare>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <ostream>
#include <utility>

namespace converge::crdt {

struct HlcTimestamp {
  std::uint64_t physical_ms = 0;
  std::uint32_t logical = 0;

  friend constexpr auto operator<=>(const HlcTimestamp&, const HlcTimestamp&) = default;
  friend std::ostream& operator<<(std::ostream& os, const HlcTimestamp& t) {
    return os << t.physical_ms << "." << t.logical;
  }
};

class Hlc {
 public:
  // Milliseconds of physical time; injected so tests and the simulator can
  // drive time.
  using PhysicalClock = std::function<std::uint64_t()>;

  static constexpr std::uint64_t kDefaultMaxOffsetMs = 60'000;

  static std::uint64_t SystemMillis() {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  }

  explicit Hlc(PhysicalClock clock = &SystemMillis,
               std::uint64_t max_offset_ms = kDefaultMaxOffsetMs)
      : clock_(std::move(clock)), max_offset_ms_(max_offset_ms) {}

  // A timestamp for a local event, greater than every timestamp this clock
  // issued or observed before.
  HlcTimestamp Now() {
    Advance(clock_(), HlcTimestamp{});
    return last_;
  }

  // Observes a remote timestamp (on receiving a message). Returns the new
  // local time, greater than both the remote timestamp and every earlier
  // local one; or nullopt, changing nothing, when the remote timestamp is
  // more than max_offset ahead of the local physical clock.
  [[nodiscard]] std::optional<HlcTimestamp> Observe(HlcTimestamp remote) {
    return Observe(remote, 0);
  }

  // The same, judging "too far ahead" against the later of the local
  // physical clock and `reference_ms`: an estimate of the true time that the
  // caller trusts more than its own clock when its own is behind (a replica
  // uses the median of its peers' clocks, so that a replica whose clock was
  // stepped back does not refuse its peers' timestamps forever). A reference
  // behind the local clock changes nothing: the check never gets stricter.
  [[nodiscard]] std::optional<HlcTimestamp> Observe(HlcTimestamp remote,
                                                    std::uint64_t reference_ms) {
    const std::uint64_t physical = clock_();
    if (!Acceptable(remote, std::max(physical, reference_ms))) return std::nullopt;
    Advance(physical, remote);
    return last_;
  }

  // True when Observe would accept `remote` now.
  [[nodiscard]] bool Acceptable(HlcTimestamp remote) const { return Acceptable(remote, clock_()); }

  // Raises the clock to at least `high_water` (a persisted mark, after a
  // restart), so timestamps never go back even if the physical clock did.
  void Restore(HlcTimestamp high_water) { last_ = std::max(last_, high_water); }

  [[nodiscard]] HlcTimestamp Current() const { return last_; }
  [[nodiscard]] std::uint64_t max_offset_ms() const { return max_offset_ms_; }

 private:
  // The HLC update rule: the new physical part is the maximum of the old, the
  // remote one and physical time; the logical part orders events within one
  // physical millisecond.
  void Advance(std::uint64_t physical, HlcTimestamp remote) {
    const HlcTimestamp old = last_;
    const std::uint64_t l = std::max({old.physical_ms, remote.physical_ms, physical});
    std::uint64_t logical = 0;
    if (l == old.physical_ms && l == remote.physical_ms) {
      logical = std::uint64_t{std::max(old.logical, remote.logical)} + 1;
    } else if (l == old.physical_ms) {
      logical = std::uint64_t{old.logical} + 1;
    } else if (l == remote.physical_ms) {
      logical = std::uint64_t{remote.logical} + 1;
    }
    if (logical > std::numeric_limits<std::uint32_t>::max()) {
      // 2^32 events within one millisecond: move to the next millisecond
      // rather than wrap, keeping timestamps strictly increasing.
      last_ = HlcTimestamp{l + 1, 0};
    } else {
      last_ = HlcTimestamp{l, static_cast<std::uint32_t>(logical)};
    }
  }

  [[nodiscard]] bool Acceptable(HlcTimestamp remote, std::uint64_t now_ms) const {
    return remote.physical_ms <= now_ms || remote.physical_ms - now_ms <= max_offset_ms_;
  }

  PhysicalClock clock_;
  std::uint64_t max_offset_ms_;
  HlcTimestamp last_{};
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_HLC_H_
