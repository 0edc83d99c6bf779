// CausalContext: the set of dots a replica has seen.
//
// Represented as a version vector (every replica's dots 1..n, contiguous)
// plus a dot cloud for dots seen out of order. The context is kept compact:
// a cloud dot that becomes contiguous with its replica's vector entry is
// folded into it, so steady-state metadata is one entry per replica, not one
// per operation, and no tombstones are kept.
//
// Canonical form (an invariant of every public operation): vector entries are
// sorted by replica with counters > 0; cloud dots are sorted, unique, and for
// each cloud dot d, d.counter > vector[d.replica] + 1. Two contexts holding
// the same set of dots therefore have identical representations.

#ifndef CONVERGE_CRDT_CAUSAL_CONTEXT_H_
#define CONVERGE_CRDT_CAUSAL_CONTEXT_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <span>
#include <utility>
#include <vector>

#include "crdt/internal/inline_vector.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

class CausalContext {
 public:
  // Version vector entry: the replica's dots 1..counter have all been seen.
  struct Entry {
    ReplicaId replica;
    std::uint64_t counter = 0;
    friend constexpr bool operator==(const Entry&, const Entry&) = default;
  };

  CausalContext() = default;

  // Builds a context from parts in any order and form; the result is
  // canonical. Dots with counter 0 and entries with counter 0 are ignored.
  static CausalContext FromParts(std::span<const Entry> vector, std::span<const Dot> cloud) {
    CausalContext context;
    for (const Entry& e : vector) context.AddRange(e.replica, e.counter);
    for (const Dot& d : cloud) context.Insert(d);
    return context;
  }

  [[nodiscard]] bool empty() const { return vector_.empty() && cloud_.empty(); }

  [[nodiscard]] bool Contains(const Dot& dot) const {
    if (dot.counter == 0) return false;
    if (dot.counter <= VectorCounter(dot.replica)) return true;
    return std::binary_search(cloud_.begin(), cloud_.end(), dot);
  }

  // Highest counter of `replica` in the context (vector or cloud), 0 if none.
  [[nodiscard]] std::uint64_t Max(ReplicaId replica) const {
    std::uint64_t max = VectorCounter(replica);
    const auto it = std::upper_bound(cloud_.begin(), cloud_.end(),
                                     Dot{replica, std::numeric_limits<std::uint64_t>::max()});
    if (it != cloud_.begin() && (it - 1)->replica == replica)
      max = std::max(max, (it - 1)->counter);
    return max;
  }

  // The version-vector counter of `replica` (its contiguous prefix).
  [[nodiscard]] std::uint64_t VectorCounter(ReplicaId replica) const {
    const auto it = FindEntry(replica);
    return it != vector_.end() && it->replica == replica ? it->counter : 0;
  }

  // Generates the next dot of `replica`, records it, and returns it.
  // Precondition: the replica has issued fewer than 2^64-1 dots (a replica
  // issuing a billion dots a second would need 584 years).
  Dot NextDot(ReplicaId replica) {
    const std::uint64_t max = Max(replica);
    assert(max < std::numeric_limits<std::uint64_t>::max());
    const Dot dot{replica, max + 1};
    Insert(dot);
    return dot;
  }

  // Adds one dot and keeps the context compact.
  void Insert(const Dot& dot) {
    if (dot.counter == 0) return;
    auto it = FindEntry(dot.replica);
    const bool has_entry = it != vector_.end() && it->replica == dot.replica;
    const std::uint64_t have = has_entry ? it->counter : 0;
    if (dot.counter <= have) return;
    if (dot.counter == have + 1) {
      if (has_entry) {
        it->counter = dot.counter;
      } else {
        vector_.insert(static_cast<std::size_t>(it - vector_.begin()), Entry{dot.replica, 1});
      }
      AbsorbCloud(dot.replica);
      return;
    }
    const auto pos = std::lower_bound(cloud_.begin(), cloud_.end(), dot);
    if (pos != cloud_.end() && *pos == dot) return;
    cloud_.insert(static_cast<std::size_t>(pos - cloud_.begin()), dot);
  }

  // Adds the dots (replica, 1..counter).
  void AddRange(ReplicaId replica, std::uint64_t counter) {
    if (counter == 0) return;
    auto it = FindEntry(replica);
    if (it != vector_.end() && it->replica == replica) {
      if (it->counter >= counter) return;
      it->counter = counter;
    } else {
      vector_.insert(static_cast<std::size_t>(it - vector_.begin()), Entry{replica, counter});
    }
    AbsorbCloud(replica);
  }

  // Set union.
  void Join(const CausalContext& other) {
    if (other.vector_.empty()) {
      for (const Dot& d : other.cloud_) Insert(d);
      return;
    }
    if (other.vector_.size() == 1 && other.cloud_.size() <= 1) {
      AddRange(other.vector_.front().replica, other.vector_.front().counter);
      for (const Dot& d : other.cloud_) Insert(d);
      return;
    }
    // General case: merge the sorted vectors, union the clouds, compact.
    internal::InlineVector<Entry> merged;
    merged.reserve(vector_.size() + other.vector_.size());
    const Entry* a = vector_.begin();
    const Entry* b = other.vector_.begin();
    while (a != vector_.end() || b != other.vector_.end()) {
      if (b == other.vector_.end() || (a != vector_.end() && a->replica < b->replica)) {
        merged.push_back(*a++);
      } else if (a == vector_.end() || b->replica < a->replica) {
        merged.push_back(*b++);
      } else {
        merged.push_back(Entry{a->replica, std::max(a->counter, b->counter)});
        ++a;
        ++b;
      }
    }
    vector_ = std::move(merged);
    if (!other.cloud_.empty()) {
      internal::InlineVector<Dot> cloud;
      cloud.reserve(cloud_.size() + other.cloud_.size());
      std::set_union(cloud_.begin(), cloud_.end(), other.cloud_.begin(), other.cloud_.end(),
                     Appender{&cloud});
      cloud_ = std::move(cloud);
    }
    Compact();
  }

  // True when every dot of `other` is in this context.
  [[nodiscard]] bool Includes(const CausalContext& other) const {
    // In canonical form the dot (r, vector[r] + 1) is never in the cloud, so
    // a vector entry of `other` beyond ours is never covered.
    for (const Entry& e : other.vector_) {
      if (VectorCounter(e.replica) < e.counter) return false;
    }
    return std::all_of(other.cloud_.begin(), other.cloud_.end(),
                       [this](const Dot& d) { return Contains(d); });
  }

  // The dots of this context that `other` does not hold. Costs O(those dots
  // + other's entries for our replicas + both clouds): a vector entry of ours
  // is walked only beyond other's vector counter for the same replica.
  [[nodiscard]] CausalContext Minus(const CausalContext& other) const {
    CausalContext out;
    for (const Entry& e : vector_) {
      for (std::uint64_t c = other.VectorCounter(e.replica) + 1; c <= e.counter && c != 0; ++c) {
        const Dot d{e.replica, c};
        if (!other.Contains(d)) out.Insert(d);
      }
    }
    for (const Dot& d : cloud_) {
      if (!other.Contains(d)) out.Insert(d);
    }
    return out;
  }

  // Number of dots in the context, saturating at the maximum of uint64.
  [[nodiscard]] std::uint64_t DotCount() const {
    std::uint64_t total = cloud_.size();
    for (const Entry& e : vector_) {
      if (__builtin_add_overflow(total, e.counter, &total)) {
        return std::numeric_limits<std::uint64_t>::max();
      }
    }
    return total;
  }

  // Calls f(dot) for every dot in the context. Use only after checking
  // DotCount(): a vector entry of n stands for n dots.
  template <class F>
  void ForEachDot(F&& f) const {
    for (const Entry& e : vector_) {
      for (std::uint64_t c = 1; c <= e.counter; ++c) f(Dot{e.replica, c});
    }
    for (const Dot& d : cloud_) f(d);
  }

  [[nodiscard]] std::span<const Entry> vector() const { return vector_.span(); }
  [[nodiscard]] std::span<const Dot> cloud() const { return cloud_.span(); }

  [[nodiscard]] std::size_t heap_bytes() const {
    return vector_.heap_bytes() + cloud_.heap_bytes();
  }

  friend bool operator==(const CausalContext&, const CausalContext&) = default;

  friend std::ostream& operator<<(std::ostream& os, const CausalContext& c) {
    os << "{vv:[";
    for (const Entry& e : c.vector_) os << e.replica << ":" << e.counter << " ";
    os << "] cloud:[";
    for (const Dot& d : c.cloud_) os << d << " ";
    return os << "]}";
  }

 private:
  struct Appender {
    internal::InlineVector<Dot>* out;
    using difference_type = std::ptrdiff_t;
    Appender& operator=(const Dot& d) {
      out->push_back(d);
      return *this;
    }
    Appender& operator*() { return *this; }
    Appender& operator++() { return *this; }
    Appender operator++(int) { return *this; }
  };

  Entry* FindEntry(ReplicaId replica) {
    return std::lower_bound(vector_.begin(), vector_.end(), replica,
                            [](const Entry& e, ReplicaId r) { return e.replica < r; });
  }
  const Entry* FindEntry(ReplicaId replica) const {
    return std::lower_bound(vector_.begin(), vector_.end(), replica,
                            [](const Entry& e, ReplicaId r) { return e.replica < r; });
  }

  // Folds cloud dots of `replica` that are now covered by or contiguous with
  // its vector entry into the entry.
  void AbsorbCloud(ReplicaId replica) {
    if (cloud_.empty()) return;
    Entry* entry = FindEntry(replica);
    auto first = std::lower_bound(cloud_.begin(), cloud_.end(), Dot{replica, 0});
    auto last = first;
    while (last != cloud_.end() && last->replica == replica &&
           last->counter <= entry->counter + 1) {
      entry->counter = std::max(entry->counter, last->counter);
      ++last;
    }
    cloud_.erase(static_cast<std::size_t>(first - cloud_.begin()),
                 static_cast<std::size_t>(last - first));
  }

  // Restores the canonical form after a bulk union.
  void Compact() {
    internal::InlineVector<Dot> kept;
    for (const Dot& d : cloud_) {
      Entry* it = FindEntry(d.replica);
      const bool has_entry = it != vector_.end() && it->replica == d.replica;
      const std::uint64_t have = has_entry ? it->counter : 0;
      if (d.counter <= have) continue;
      if (d.counter == have + 1) {
        if (has_entry) {
          it->counter = d.counter;
        } else {
          vector_.insert(static_cast<std::size_t>(it - vector_.begin()), Entry{d.replica, 1});
        }
        continue;
      }
      kept.push_back(d);
    }
    cloud_ = std::move(kept);
  }

  internal::InlineVector<Entry> vector_;
  internal::InlineVector<Dot> cloud_;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_CAUSAL_CONTEXT_H_
