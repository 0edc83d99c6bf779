// CausalCounter: a non-negative counter that can be reset by an observed
// remove, so it can live inside an OrMap (the cart's quantity).
//
// Every increment is its own dot carrying the amount. A reset (or the OrMap
// removing the key) removes exactly the increments it has observed; an
// increment made concurrently elsewhere survives, with its own amount only.
// That precision is why increments are not folded into one dot per replica:
// folding would let a concurrent increment resurrect the amount a remove had
// observed. Metadata is one dot per increment since the line was last reset
// or Set; Set() folds everything observed into a single dot.

#ifndef CONVERGE_CRDT_CAUSAL_COUNTER_H_
#define CONVERGE_CRDT_CAUSAL_COUNTER_H_

#include <cstdint>
#include <optional>
#include <ostream>

#include "crdt/causal_context.h"
#include "crdt/checked.h"
#include "crdt/dot_store.h"
#include "crdt/internal/causal.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

class CausalCounter : public internal::Causal<DotFun<std::uint64_t>> {
 public:
  CausalCounter() = default;
  static CausalCounter FromParts(DotFun<std::uint64_t> store, CausalContext context) {
    return {std::move(store), std::move(context)};
  }

  // Adds n > 0 (n == 0 is a no-op returning the bottom delta). Throws
  // CounterOverflow, changing nothing, if the value here would pass 2^64-1.
  CausalCounter Increment(ReplicaId replica, std::uint64_t n) {
    CausalCounter delta;
    if (n == 0) return delta;
    internal::CheckedAdd(Value(), n, "CausalCounter::Increment");
    AddDot(replica, n, delta);
    return delta;
  }

  // Removes every increment observed here (value 0 here).
  CausalCounter Reset() {
    auto delta = RemovalOf<CausalCounter>(store_);
    store_.clear();
    return delta;
  }

  // Makes the value here exactly n: removes every increment observed here
  // and, when n > 0, adds one dot carrying n. Increments concurrent with the
  // Set are added on top when they meet it.
  CausalCounter Set(ReplicaId replica, std::uint64_t n) {
    auto delta = RemovalOf<CausalCounter>(store_);
    store_.clear();
    AddDot(replica, n, delta);
    return delta;
  }

  // Set and Reset as `seen` observed the counter (its LiveDots() as a client
  // read it, at any replica; inside an OrMap, the map's DotsOf(key)): they
  // remove exactly the increments `seen` holds, also those not received
  // here yet; increments `seen` did not observe are kept and add to n.
  // Throws CounterOverflow, changing nothing, if that sum would pass 2^64-1.
  CausalCounter Set(ReplicaId replica, std::uint64_t n, const CausalContext& seen) {
    std::uint64_t kept = n;
    for (const auto& item : store_.items()) {
      if (!seen.Contains(item.dot))
        kept = internal::CheckedAdd(kept, item.value, "CausalCounter::Set");
    }
    auto delta = RemoveSeen<CausalCounter>(seen);
    AddDot(replica, n, delta);
    return delta;
  }
  CausalCounter Reset(const CausalContext& seen) { return RemoveSeen<CausalCounter>(seen); }

  // The sum of the live increments. Throws CounterOverflow when it exceeds
  // 2^64-1 (possible only through concurrent increments); every replica
  // holding the same state reports the same.
  [[nodiscard]] std::uint64_t Value() const {
    const std::optional<std::uint64_t> value = TryValue();
    if (!value) throw CounterOverflow("CausalCounter::Value: the sum exceeds 2^64-1");
    return *value;
  }
  [[nodiscard]] std::optional<std::uint64_t> TryValue() const {
    std::uint64_t sum = 0;
    for (const auto& item : store_.items()) {
      if (__builtin_add_overflow(sum, item.value, &sum)) return std::nullopt;
    }
    return sum;
  }

  void Join(const CausalCounter& other) { JoinCausal(other); }

  friend std::ostream& operator<<(std::ostream& os, const CausalCounter& c) {
    os << "CausalCounter{";
    for (const auto& item : c.store_.items()) os << item.dot << "=" << item.value << " ";
    return os << c.context_ << "}";
  }

 private:
  using Causal::Causal;

  // Adds one increment of n (none when n is 0) here and to `delta`.
  void AddDot(ReplicaId replica, std::uint64_t n, CausalCounter& delta) {
    if (n == 0) return;
    const Dot dot = context_.NextDot(replica);
    store_.Insert(dot, n);
    delta.store_ = DotFun<std::uint64_t>(dot, n);
    delta.context_.Insert(dot);
  }
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_CAUSAL_COUNTER_H_
