// PnCounter: a counter that goes up and down, as a pair of GCounters
// (increments and decrements). The value is their difference as a signed
// 64-bit integer.

#ifndef CONVERGE_CRDT_PN_COUNTER_H_
#define CONVERGE_CRDT_PN_COUNTER_H_

#include <cstdint>
#include <optional>
#include <ostream>

#include "crdt/checked.h"
#include "crdt/g_counter.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

class PnCounter {
 public:
  PnCounter() = default;
  static PnCounter FromParts(GCounter increments, GCounter decrements) {
    PnCounter counter;
    counter.p_ = std::move(increments);
    counter.n_ = std::move(decrements);
    return counter;
  }

  // Both throw CounterOverflow, changing nothing, if `replica`'s increment
  // (or decrement) total would pass 2^64-1.
  PnCounter Increment(ReplicaId replica, std::uint64_t n) {
    PnCounter delta;
    delta.p_ = p_.Increment(replica, n);
    return delta;
  }
  PnCounter Decrement(ReplicaId replica, std::uint64_t n) {
    PnCounter delta;
    delta.n_ = n_.Increment(replica, n);
    return delta;
  }

  // Increments minus decrements. Throws CounterOverflow when the result does
  // not fit int64 (the sums themselves are computed exactly in 128 bits).
  [[nodiscard]] std::int64_t Value() const {
    const std::optional<std::int64_t> value = TryValue();
    if (!value)
      throw CounterOverflow("PnCounter::Value: result does not fit a signed 64-bit value");
    return *value;
  }

  [[nodiscard]] std::optional<std::int64_t> TryValue() const {
    __extension__ using Int128 = __int128;
    Int128 value = 0;
    for (const auto& e : p_.entries()) value += e.count;
    for (const auto& e : n_.entries()) value -= e.count;
    if (value > INT64_MAX || value < INT64_MIN) return std::nullopt;
    return static_cast<std::int64_t>(value);
  }

  void Join(const PnCounter& other) {
    p_.Join(other.p_);
    n_.Join(other.n_);
  }

  [[nodiscard]] bool IsBottom() const { return p_.IsBottom() && n_.IsBottom(); }
  [[nodiscard]] const GCounter& increments() const { return p_; }
  [[nodiscard]] const GCounter& decrements() const { return n_; }

  friend bool operator==(const PnCounter&, const PnCounter&) = default;
  friend std::ostream& operator<<(std::ostream& os, const PnCounter& c) {
    return os << "PnCounter{+" << c.p_ << " -" << c.n_ << "}";
  }

 private:
  GCounter p_;
  GCounter n_;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_PN_COUNTER_H_
