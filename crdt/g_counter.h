// GCounter: a grow-only counter. Each replica increments its own entry; Join
// takes the maximum per replica; the value is the sum of the entries.

#ifndef CONVERGE_CRDT_G_COUNTER_H_
#define CONVERGE_CRDT_G_COUNTER_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <span>

#include "crdt/checked.h"
#include "crdt/internal/inline_vector.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

class GCounter {
 public:
  struct Entry {
    ReplicaId replica;
    std::uint64_t count = 0;
    friend constexpr bool operator==(const Entry&, const Entry&) = default;
  };

  GCounter() = default;

  // Builds a counter from entries in any order; for a replica listed twice
  // the larger count wins, zero counts are dropped.
  static GCounter FromEntries(std::span<const Entry> entries) {
    GCounter counter;
    for (const Entry& e : entries) counter.Raise(e.replica, e.count);
    return counter;
  }

  // Adds n to `replica`'s entry and returns the delta (that one entry).
  // Throws CounterOverflow, changing nothing, if the entry would pass 2^64-1.
  // n == 0 changes nothing and returns the bottom delta.
  GCounter Increment(ReplicaId replica, std::uint64_t n) {
    GCounter delta;
    if (n == 0) return delta;
    Entry* e = Find(replica);
    const std::uint64_t now =
        internal::CheckedAdd(e == nullptr ? 0 : e->count, n, "GCounter::Increment");
    if (e != nullptr) {
      e->count = now;
    } else {
      Raise(replica, now);
    }
    delta.entries_.push_back(Entry{replica, now});
    return delta;
  }

  // The sum of all entries. Throws CounterOverflow if it exceeds 2^64-1; the
  // outcome depends only on the state, so every replica holding the same
  // state reports the same.
  [[nodiscard]] std::uint64_t Value() const {
    const std::optional<std::uint64_t> value = TryValue();
    if (!value) throw CounterOverflow("GCounter::Value: the sum of the entries exceeds 2^64-1");
    return *value;
  }

  // Value() without throwing: nullopt when it would overflow.
  [[nodiscard]] std::optional<std::uint64_t> TryValue() const {
    std::uint64_t sum = 0;
    for (const Entry& e : entries_) {
      if (__builtin_add_overflow(sum, e.count, &sum)) return std::nullopt;
    }
    return sum;
  }

  // `replica`'s entry, 0 if none.
  [[nodiscard]] std::uint64_t CountOf(ReplicaId replica) const {
    const Entry* e = Find(replica);
    return e == nullptr ? 0 : e->count;
  }

  void Join(const GCounter& other) {
    for (const Entry& e : other.entries_) Raise(e.replica, e.count);
  }

  [[nodiscard]] bool IsBottom() const { return entries_.empty(); }

  // Entries sorted by replica, all counts > 0.
  [[nodiscard]] std::span<const Entry> entries() const { return entries_.span(); }

  friend bool operator==(const GCounter&, const GCounter&) = default;

  friend std::ostream& operator<<(std::ostream& os, const GCounter& c) {
    os << "GCounter{";
    for (const Entry& e : c.entries_) os << e.replica << ":" << e.count << " ";
    return os << "}";
  }

 private:
  Entry* Find(ReplicaId replica) {
    Entry* it = LowerBound(replica);
    return it != entries_.end() && it->replica == replica ? it : nullptr;
  }
  const Entry* Find(ReplicaId replica) const { return const_cast<GCounter*>(this)->Find(replica); }

  Entry* LowerBound(ReplicaId replica) {
    return std::lower_bound(entries_.begin(), entries_.end(), replica,
                            [](const Entry& e, ReplicaId r) { return e.replica < r; });
  }

  // entries_[replica] = max(entries_[replica], count).
  void Raise(ReplicaId replica, std::uint64_t count) {
    if (count == 0) return;
    Entry* it = LowerBound(replica);
    if (it != entries_.end() && it->replica == replica) {
      it->count = std::max(it->count, count);
    } else {
      entries_.insert(static_cast<std::size_t>(it - entries_.begin()), Entry{replica, count});
    }
  }

  internal::InlineVector<Entry> entries_;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_G_COUNTER_H_
