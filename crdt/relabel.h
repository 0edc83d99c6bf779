// Pruning retired replica ids: the relabelling that keeps version vectors
// bounded however many incarnations wrote a key (docs/replication.md,
// "Pruning retired replica ids").
//
// A retired id never issues another dot. Once every member holds the same
// highest dot of it in a key (a fence the replication layer establishes),
// its dots can be renamed onto one shared id, kArchiveReplica, that no
// replica ever issues from: in each key, the retired ids are appended, in an
// order every member agrees on, after the archive's own dots —
//
//   (r_i, c)  ->  (kArchiveReplica, base_i + c),   1 <= c <= max_i,
//   base_0 = the archive's highest counter in the key,
//   base_{i+1} = base_i + max_i.
//
// The map depends only on the highest counters, which are the same at every
// member, so every member renames every key the same way: it is one-to-one
// and the same everywhere, hence it commutes with join — what was removed
// stays removed, nothing is counted twice. A contiguous run of a retired id
// becomes a contiguous run of the archive, so the context keeps one entry
// for all of them. Counters (GCounter, PnCounter) fold the retired ids'
// entries into the archive's: the archive's count grows by their sum.
//
// A delta of the key (a buffered one not yet acknowledged) is renamed with
// the plan of the key's state (a delta is below the state, so the state's
// highest counters cover it); a counter delta only loses the retired
// entries (the state it joins into carries the folded sum).
//
// Stripping, instead of renaming, drops the retired ids' dots and entries:
// for a replica that missed the fence and holds nothing the members lack
// (see the replication layer). Restoring undoes a renaming (the map is
// one-to-one): for checkers that compare states with what was written
// before (the simulator's oracle).

#ifndef CONVERGE_CRDT_RELABEL_H_
#define CONVERGE_CRDT_RELABEL_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/checked.h"
#include "crdt/concepts.h"
#include "crdt/dot_store.h"
#include "crdt/g_counter.h"
#include "crdt/internal/causal.h"
#include "crdt/pn_counter.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

// The id the dots of pruned replica ids are renamed onto. Never issued:
// storage never mints it (storage/rocks_store.cc).
inline constexpr ReplicaId kArchiveReplica{0xa5c41fe0a5c41fe0ULL};

enum class RelabelMode { kRename, kStrip, kRestore };

// How one key's retired ids are renamed.
struct RelabelPlan {
  struct Step {
    ReplicaId retired;
    std::uint64_t base = 0;    // (retired, c) -> (archive, base + c)
    std::uint64_t max = 0;     // its highest counter (causal) or its count
    std::uint64_t second = 0;  // PnCounter: its decrements' count
  };
  std::vector<Step> steps;  // sorted by retired id
  RelabelMode mode = RelabelMode::kRename;

  [[nodiscard]] const Step* Find(ReplicaId r) const {
    const auto it = std::lower_bound(steps.begin(), steps.end(), r,
                                     [](const Step& s, ReplicaId id) { return s.retired < id; });
    return it != steps.end() && it->retired == r ? &*it : nullptr;
  }

  // The renamed dot; nullopt when the dot goes (stripped, or beyond the
  // retired id's highest counter at the fence: never renamed onto the
  // archive's next range).
  [[nodiscard]] std::optional<Dot> Map(const Dot& d) const {
    if (mode == RelabelMode::kRestore) {
      if (d.replica != kArchiveReplica) return d;
      for (const Step& s : steps) {
        if (d.counter > s.base && d.counter - s.base <= s.max) {
          return Dot{s.retired, d.counter - s.base};
        }
      }
      return d;
    }
    const Step* s = Find(d.replica);
    if (s == nullptr) return d;
    if (mode == RelabelMode::kStrip || d.counter > s->max) return std::nullopt;
    return Dot{kArchiveReplica, s->base + d.counter};
  }
};

namespace internal {

inline CausalContext RelabelContext(const CausalContext& c, const RelabelPlan& plan) {
  CausalContext out;
  if (plan.mode == RelabelMode::kRestore) {  // dot by dot: checkers only
    c.ForEachDot([&](const Dot& d) { out.Insert(*plan.Map(d)); });
    return out;
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // archive runs (first, last)
  for (const CausalContext::Entry& e : c.vector()) {
    const RelabelPlan::Step* s = plan.Find(e.replica);
    if (s == nullptr) {
      out.AddRange(e.replica, e.counter);
    } else if (plan.mode == RelabelMode::kRename) {
      const std::uint64_t last = std::min(e.counter, s->max);
      if (last > 0) ranges.emplace_back(s->base + 1, s->base + last);
    }
  }
  for (const Dot& d : c.cloud()) {
    if (const std::optional<Dot> m = plan.Map(d)) out.Insert(*m);
  }
  // Ranges from 1 join the archive's vector entry whole; the others (a run
  // after a hole) go dot by dot, in order, so that each extends the entry
  // once the hole closes.
  std::sort(ranges.begin(), ranges.end());
  for (const auto& [first, last] : ranges) {
    if (out.VectorCounter(kArchiveReplica) + 1 >= first) {
      out.AddRange(kArchiveReplica, last);
    } else {
      for (std::uint64_t k = first; k <= last; ++k) out.Insert(Dot{kArchiveReplica, k});
    }
  }
  return out;
}

inline DotSet RelabelStore(const DotSet& s, const RelabelPlan& plan) {
  DotSet out;
  for (const Dot& d : s.dots()) {
    if (const std::optional<Dot> m = plan.Map(d)) out.Insert(*m);
  }
  return out;
}

template <class V>
DotFun<V> RelabelStore(const DotFun<V>& s, const RelabelPlan& plan) {
  DotFun<V> out;
  for (const auto& item : s.items()) {
    if (const std::optional<Dot> m = plan.Map(item.dot)) out.Insert(*m, item.value);
  }
  return out;
}

template <class K, class S>
DotMap<K, S> RelabelStore(const DotMap<K, S>& s, const RelabelPlan& plan) {
  DotMap<K, S> out;
  out.reserve(s.size());
  for (const auto& entry : s.entries()) {
    S store = RelabelStore(entry.store, plan);
    if (!store.empty()) out.Insert(entry.key, std::move(store));
  }
  return out;
}

inline void CollectReplicas(const CausalContext& c, std::vector<ReplicaId>& out) {
  for (const CausalContext::Entry& e : c.vector()) out.push_back(e.replica);
  for (const Dot& d : c.cloud()) out.push_back(d.replica);
}

inline GCounter RelabelCounter(const GCounter& g, const RelabelPlan& plan, bool state,
                               bool second) {
  std::vector<GCounter::Entry> kept;
  if (plan.mode == RelabelMode::kRestore) {
    std::uint64_t folded = 0;
    for (const RelabelPlan::Step& s : plan.steps) {
      const std::uint64_t count = second ? s.second : s.max;
      if (count > 0) kept.push_back(GCounter::Entry{s.retired, count});
      folded += count;
    }
    for (const GCounter::Entry& e : g.entries()) {
      if (e.replica != kArchiveReplica) {
        kept.push_back(e);
      } else if (e.count > folded) {
        kept.push_back(GCounter::Entry{e.replica, e.count - folded});
      }
    }
    return GCounter::FromEntries(kept);
  }
  std::uint64_t folded = 0;
  for (const GCounter::Entry& e : g.entries()) {
    const RelabelPlan::Step* s = plan.Find(e.replica);
    if (s == nullptr) {
      kept.push_back(e);
    } else if (state && plan.mode == RelabelMode::kRename) {
      // The plan's count is the same at every member; a state's own entry
      // equals it (the fence), and the sum stays below the counter's value.
      folded += second ? s->second : s->max;
    }
  }
  if (folded > 0) {
    bool found = false;
    for (GCounter::Entry& e : kept) {
      if (e.replica == kArchiveReplica) {
        e.count += folded;
        found = true;
      }
    }
    if (!found) kept.push_back(GCounter::Entry{kArchiveReplica, folded});
  }
  return GCounter::FromEntries(kept);
}

}  // namespace internal

// The replica ids a value names: its causal context, or its counter entries.
// Other types (last-writer-wins registers) name none that grow.
template <class T>
std::vector<ReplicaId> ReplicasOf(const T& value) {
  std::vector<ReplicaId> out;
  if constexpr (CausalCrdt<T>) {
    internal::CollectReplicas(value.context(), out);
  } else if constexpr (std::is_same_v<T, GCounter>) {
    for (const auto& e : value.entries()) out.push_back(e.replica);
  } else if constexpr (std::is_same_v<T, PnCounter>) {
    for (const auto& e : value.increments().entries()) out.push_back(e.replica);
    for (const auto& e : value.decrements().entries()) out.push_back(e.replica);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// What the fence compares for `ids` (and the archive): each id's highest
// counter in the context, or its counts. Two replicas with equal figures
// rename the key the same way.
template <class T>
std::vector<std::uint64_t> RelabelFigures(const T& value, std::span<const ReplicaId> ids) {
  std::vector<std::uint64_t> out;
  const auto each = [&](auto&& f) {
    for (const ReplicaId id : ids) f(id);
    f(kArchiveReplica);
  };
  if constexpr (CausalCrdt<T>) {
    each([&](ReplicaId id) { out.push_back(value.context().Max(id)); });
  } else if constexpr (std::is_same_v<T, GCounter>) {
    each([&](ReplicaId id) { out.push_back(value.CountOf(id)); });
  } else if constexpr (std::is_same_v<T, PnCounter>) {
    each([&](ReplicaId id) {
      out.push_back(value.increments().CountOf(id));
      out.push_back(value.decrements().CountOf(id));
    });
  }
  return out;
}

// The plan that renames `retired` (in this order) in `state` (or strips
// them, or, given the state as it was before the renaming, restores them).
template <class T>
RelabelPlan PlanRelabel(const T& state, std::span<const ReplicaId> retired,
                        RelabelMode mode = RelabelMode::kRename) {
  RelabelPlan plan;
  plan.mode = mode;
  if constexpr (CausalCrdt<T>) {
    std::uint64_t base = state.context().Max(kArchiveReplica);
    for (const ReplicaId r : retired) {
      const std::uint64_t max = state.context().Max(r);
      plan.steps.push_back({r, base, max, 0});
      base += max;
    }
  } else if constexpr (std::is_same_v<T, GCounter>) {
    for (const ReplicaId r : retired) plan.steps.push_back({r, 0, state.CountOf(r), 0});
  } else if constexpr (std::is_same_v<T, PnCounter>) {
    for (const ReplicaId r : retired) {
      plan.steps.push_back({r, 0, state.increments().CountOf(r), state.decrements().CountOf(r)});
    }
  }
  std::sort(plan.steps.begin(), plan.steps.end(),
            [](const auto& a, const auto& b) { return a.retired < b.retired; });
  return plan;
}

// `value` renamed by `plan`. `state`: the value is the key's state (counters
// fold), not a delta of it (counters only drop the retired entries).
template <class T>
T Relabel(const T& value, const RelabelPlan& plan, bool state) {
  if constexpr (CausalCrdt<T>) {
    return T::FromParts(internal::RelabelStore(value.store(), plan),
                        internal::RelabelContext(value.context(), plan));
  } else if constexpr (std::is_same_v<T, GCounter>) {
    return internal::RelabelCounter(value, plan, state, false);
  } else if constexpr (std::is_same_v<T, PnCounter>) {
    return PnCounter::FromParts(internal::RelabelCounter(value.increments(), plan, state, false),
                                internal::RelabelCounter(value.decrements(), plan, state, true));
  } else {
    return value;
  }
}

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_RELABEL_H_
