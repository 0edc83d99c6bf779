// Benchmarks of crdt/: the cost of the hot mutators and of Join, and the size
// of states and deltas.
//
// bench/run builds and runs this binary and bench/report.py turns its JSON
// output into docs/benchmarks.md. The report reads the counters set here by
// name (benchmark run name + counter name, see FIGURES in bench/report.py),
// so renaming a benchmark or a counter means updating that table.
//
// How time is measured: every timed benchmark uses UseManualTime() and times
// only the operations of interest. Building the input state, copying it,
// generating element names and destroying the result happen outside the
// measured region. A Meter accumulates, over all iterations, the wall-clock
// time, the CPU time of the thread and the heap allocations of the measured
// regions, and sets these counters:
//   ns_per_op      wall-clock nanoseconds per operation (the headline cost)
//   ops_per_s      operations per wall-clock second
//   cpu_ns_per_op  thread CPU nanoseconds per operation; close to ns_per_op
//                  unless other processes competed for the CPU
//   allocs_per_op  calls of operator new per operation
//
// Allocations are counted by bench/alloc_counter.cc, which replaces the
// global operator new/delete of this binary with malloc/free plus a counter
// increment.
//
// Flags (besides the usual --benchmark_* ones):
//   --quick   fewer and smaller inputs, for a run of well under a minute.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/alloc_counter.h"
#include "bench/bench_common.h"
#include "crdt/causal_counter.h"
#include "crdt/g_counter.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "crdt/replica_id.h"

namespace converge::bench {
namespace {

using crdt::CausalCounter;
using crdt::GCounter;
using crdt::ReplicaId;
using Set = crdt::OrSet<std::string>;
using Cart = crdt::OrMap<std::string, CausalCounter>;

constexpr ReplicaId kReplicaA{1};
constexpr ReplicaId kReplicaB{2};

// Element names "item-0", "item-1", ... generated once and shared, so no
// benchmark times string formatting. Up to 10^10 they fit libstdc++'s 15-byte
// small-string buffer: copying one into a set allocates nothing.
const std::vector<std::string>& Items(std::size_t n) {
  static std::vector<std::string> items;
  if (items.size() < n) {
    items.reserve(n);
    while (items.size() < n) items.push_back("item-" + std::to_string(items.size()));
  }
  return items;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Measures the timed regions of a benchmark; see the file comment.
class Meter {
 public:
  void Start() {
    allocations_at_start_ = Allocations().calls;
    cpu_at_start_ = ThreadCpuSeconds();
    wall_at_start_ = std::chrono::steady_clock::now();
  }

  // Ends a region of `ops` operations and hands its wall time to the state.
  void Stop(benchmark::State& state, std::int64_t ops) {
    const auto wall_end = std::chrono::steady_clock::now();
    const double cpu_end = ThreadCpuSeconds();
    const double wall = std::chrono::duration<double>(wall_end - wall_at_start_).count();
    state.SetIterationTime(wall);
    wall_ += wall;
    cpu_ += cpu_end - cpu_at_start_;
    allocs_ += Allocations().calls - allocations_at_start_;
    ops_ += ops;
  }

  void Report(benchmark::State& state) const {
    if (ops_ == 0 || wall_ <= 0) return;
    const auto ops = static_cast<double>(ops_);
    state.SetItemsProcessed(ops_);
    state.counters["ns_per_op"] = wall_ * 1e9 / ops;
    state.counters["ops_per_s"] = ops / wall_;
    state.counters["cpu_ns_per_op"] = cpu_ * 1e9 / ops;
    state.counters["allocs_per_op"] = static_cast<double>(allocs_) / ops;
  }

 private:
  std::chrono::steady_clock::time_point wall_at_start_;
  double cpu_at_start_ = 0;
  std::uint64_t allocations_at_start_ = 0;
  double wall_ = 0;
  double cpu_ = 0;
  std::uint64_t allocs_ = 0;
  std::int64_t ops_ = 0;
};

// Bytes of heap in use: small chunks (uordblks) plus chunks glibc serves by
// mmap (hblkhd), which is where large vectors and hash tables live. Includes
// malloc's per-chunk overhead.
std::size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

Set BuildSet(ReplicaId replica, const std::vector<std::string>& items, std::size_t first,
             std::size_t n) {
  Set set;
  for (std::size_t i = first; i < first + n; ++i) set.Add(replica, items[i]);
  return set;
}

// Google Benchmark passes ranges as int64_t.
std::size_t Range(const benchmark::State& state, std::size_t i) {
  return static_cast<std::size_t>(state.range(i));
}

// ---------------------------------------------------------------------------
// OrSet<std::string>::Add

// n sequential adds of distinct elements into an empty set: the cost per add
// averaged over the growth of the set from 0 to n elements, hash-table and
// vector growth included.
void OrSetAddSequential(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(n);
  Meter meter;
  for (auto _ : state) {
    Set set;
    meter.Start();
    for (std::size_t i = 0; i < n; ++i) {
      Set delta = set.Add(kReplicaA, items[i]);
      benchmark::DoNotOptimize(delta);
    }
    meter.Stop(state, static_cast<std::int64_t>(n));
    benchmark::DoNotOptimize(set);
    if (set.size() != n) {
      state.SkipWithError("OrSet lost elements");
      break;
    }
  }
  meter.Report(state);
}

// The same with set.reserve(n) first (untimed): what is left of the cost
// per add once the vectors and hash indexes no longer grow.
void OrSetAddSequentialReserved(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(n);
  Meter meter;
  for (auto _ : state) {
    Set set;
    set.reserve(n);
    meter.Start();
    for (std::size_t i = 0; i < n; ++i) {
      Set delta = set.Add(kReplicaA, items[i]);
      benchmark::DoNotOptimize(delta);
    }
    meter.Stop(state, static_cast<std::int64_t>(n));
    benchmark::DoNotOptimize(set);
    if (set.size() != n) {
      state.SkipWithError("OrSet lost elements");
      break;
    }
  }
  meter.Report(state);
}

// The marginal cost of an add into a set that already holds n elements: each
// iteration adds a batch of new elements, then (untimed) removes them again
// so that the set stays at n.
void OrSetAddAtSize(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::size_t batch = std::min<std::size_t>(1000, std::max<std::size_t>(1, n / 10));
  const std::vector<std::string>& items = Items(n + batch);
  Set set = BuildSet(kReplicaA, items, 0, n);
  Meter meter;
  for (auto _ : state) {
    meter.Start();
    for (std::size_t i = n; i < n + batch; ++i) {
      Set delta = set.Add(kReplicaA, items[i]);
      benchmark::DoNotOptimize(delta);
    }
    meter.Stop(state, static_cast<std::int64_t>(batch));
    for (std::size_t i = n; i < n + batch; ++i) benchmark::DoNotOptimize(set.Remove(items[i]));
    if (set.size() != n) {
      state.SkipWithError("OrSet add/remove lost track of elements");
      break;
    }
  }
  meter.Report(state);
  state.counters["batch"] = static_cast<double>(batch);
}

// The delta one Add returns, for an element new to a set of n elements: how
// many elements and context dots it carries and the heap bytes a copy of it
// allocates. Also the context of a re-add, which must supersede the
// element's previous dot, and the size of the state's context.
void OrSetAddDelta(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(n + 1);
  Set set = BuildSet(kReplicaA, items, 0, n);
  for (auto _ : state) {
    Set delta = set.Add(kReplicaA, items[n]);
    const std::uint64_t bytes_before = Allocations().bytes;
    Set copy = delta;
    const std::uint64_t bytes_after = Allocations().bytes;
    benchmark::DoNotOptimize(copy);
    Set readd = set.Add(kReplicaA, items[0]);
    state.counters["delta_elements"] = static_cast<double>(delta.size());
    state.counters["delta_context_dots"] = static_cast<double>(delta.context().DotCount());
    state.counters["delta_heap_bytes"] = static_cast<double>(bytes_after - bytes_before);
    state.counters["readd_delta_elements"] = static_cast<double>(readd.size());
    state.counters["readd_delta_context_dots"] = static_cast<double>(readd.context().DotCount());
    state.counters["state_context_entries"] =
        static_cast<double>(set.context().vector().size() + set.context().cloud().size());
    benchmark::DoNotOptimize(set.Remove(items[n]));
  }
}

// ---------------------------------------------------------------------------
// OrSet<std::string>::Join

// Two replicas each add n elements concurrently (disjoint elements, or the
// same elements when `overlap`), then one joins the other's full state. Each
// iteration joins into a fresh copy of replica A (the copy is untimed).
void OrSetJoin(benchmark::State& state, bool overlap) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(2 * n);
  const Set a = BuildSet(kReplicaA, items, 0, n);
  const Set b = BuildSet(kReplicaB, items, overlap ? 0 : n, n);
  const std::size_t expected = overlap ? n : 2 * n;
  Meter meter;
  std::int64_t joins = 0;
  for (auto _ : state) {
    Set target = a;
    meter.Start();
    target.Join(b);
    meter.Stop(state, 1);
    benchmark::DoNotOptimize(target);
    ++joins;
    if (target.size() != expected) {
      state.SkipWithError("OrSet join has the wrong number of elements");
      break;
    }
  }
  meter.Report(state);
  if (joins > 0 && state.counters.count("ns_per_op") != 0) {
    state.counters["ms_per_join"] = state.counters["ns_per_op"].value * 1e-6;
  }
}

// Delta propagation: replica B, a copy of A (n elements), adds new elements;
// A joins each of B's Add deltas in turn. The cost of one delta join must not
// depend on n.
void OrSetJoinDelta(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  constexpr std::size_t kDeltas = 10'000;
  const std::vector<std::string>& items = Items(n + kDeltas);
  const Set a = BuildSet(kReplicaA, items, 0, n);
  std::vector<Set> deltas;
  deltas.reserve(kDeltas);
  {
    Set b = a;
    for (std::size_t i = n; i < n + kDeltas; ++i) deltas.push_back(b.Add(kReplicaB, items[i]));
  }
  Meter meter;
  for (auto _ : state) {
    Set target = a;
    meter.Start();
    for (const Set& delta : deltas) target.Join(delta);
    meter.Stop(state, static_cast<std::int64_t>(kDeltas));
    benchmark::DoNotOptimize(target);
    if (target.size() != n + kDeltas) {
      state.SkipWithError("OrSet delta join has the wrong number of elements");
      break;
    }
  }
  meter.Report(state);
}

// ---------------------------------------------------------------------------
// GCounter::Increment

// Increments of one replica's entry in a counter with `replicas` entries,
// each returning its delta. Timed in batches so reading the clocks costs
// nothing per increment.
void GCounterIncrement(benchmark::State& state) {
  const auto replicas = static_cast<std::uint64_t>(state.range(0));
  constexpr std::int64_t kBatch = 10'000;
  GCounter counter;
  for (std::uint64_t r = 1; r <= replicas; ++r) counter.Increment(ReplicaId{r}, 1);
  const ReplicaId self{replicas / 2 + 1};
  const std::uint64_t initial = counter.Value();
  Meter meter;
  std::uint64_t increments = 0;
  for (auto _ : state) {
    meter.Start();
    for (std::int64_t i = 0; i < kBatch; ++i) {
      GCounter delta = counter.Increment(self, 1);
      benchmark::DoNotOptimize(delta);
    }
    meter.Stop(state, kBatch);
    increments += kBatch;
  }
  if (counter.Value() != initial + increments) state.SkipWithError("GCounter lost increments");
  meter.Report(state);
}

// ---------------------------------------------------------------------------
// OrMap<std::string, CausalCounter> (the cart)

CausalCounter IncrementBy1(CausalCounter& counter) { return counter.Increment(kReplicaA, 1); }

// A cart of `keys` keys, each incremented `increments` times.
Cart BuildCart(std::size_t keys, std::size_t increments) {
  const std::vector<std::string>& items = Items(keys);
  Cart cart;
  for (std::size_t d = 0; d < increments; ++d) {
    for (std::size_t k = 0; k < keys; ++k) cart.Update(items[k], IncrementBy1);
  }
  return cart;
}

// Increment on a uniformly random existing key, returning the map delta.
// Each iteration runs `keys` updates on a fresh copy of a cart whose keys have
// each been incremented `increments` times before: the representation of a
// CausalCounter may grow with the increments it has received (one dot per
// increment until reset), so a benchmark that kept updating one cart would
// measure a cart that changes with the iteration count. state_dots_per_key
// reports what the prepared cart holds. The key sequence is seeded and the
// same in every iteration.
void OrMapUpdate(benchmark::State& state) {
  const std::size_t keys = Range(state, 0);
  const std::size_t increments = Range(state, 1);
  const std::vector<std::string>& items = Items(keys);
  const Cart base = BuildCart(keys, increments);
  state.counters["state_dots_per_key"] =
      static_cast<double>(base.store().DotCount()) / static_cast<double>(keys);
  // The keys to update, copied in update order: reading them is sequential,
  // as for keys arriving in requests, so the benchmark adds no cache miss of
  // its own to each update.
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<std::size_t> pick(0, keys - 1);
  std::vector<std::string> sequence;
  sequence.reserve(keys);
  for (std::size_t i = 0; i < keys; ++i) sequence.push_back(items[pick(rng)]);
  Meter meter;
  for (auto _ : state) {
    Cart cart = base;
    meter.Start();
    for (const std::string& key : sequence) {
      Cart delta = cart.Update(key, IncrementBy1);
      benchmark::DoNotOptimize(delta);
    }
    meter.Stop(state, static_cast<std::int64_t>(sequence.size()));
    benchmark::DoNotOptimize(cart);
    if (cart.size() != keys) {
      state.SkipWithError("OrMap lost keys");
      break;
    }
  }
  meter.Report(state);
}

// ---------------------------------------------------------------------------
// Memory

// Heap bytes per element of an OrSet<std::string> built by n sequential adds
// (no reserve), and per key of a cart of n keys each incremented once: heap
// growth while building, measured with mallinfo2. Deltas are freed as they
// come and are not counted. The std::string objects live inside the entries
// and are counted; their characters fit the small-string buffer.
void OrSetMemory(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(n);
  for (auto _ : state) {
    const std::size_t before = HeapInUse();
    Set set = BuildSet(kReplicaA, items, 0, n);
    const std::size_t after = HeapInUse();
    benchmark::DoNotOptimize(set);
    state.counters["heap_bytes"] = static_cast<double>(after - before);
    state.counters["bytes_per_element"] =
        static_cast<double>(after - before) / static_cast<double>(n);
  }
}

void OrMapMemory(benchmark::State& state) {
  const std::size_t n = Range(state, 0);
  const std::vector<std::string>& items = Items(n);
  for (auto _ : state) {
    const std::size_t before = HeapInUse();
    Cart cart = BuildCart(n, 1);
    const std::size_t after = HeapInUse();
    benchmark::DoNotOptimize(cart);
    state.counters["heap_bytes"] = static_cast<double>(after - before);
    state.counters["bytes_per_key"] = static_cast<double>(after - before) / static_cast<double>(n);
    // The delta of one update of an existing key in this cart.
    const Cart delta = cart.Update(items[n / 2], IncrementBy1);
    state.counters["update_delta_keys"] = static_cast<double>(delta.size());
    state.counters["update_delta_context_dots"] = static_cast<double>(delta.context().DotCount());
  }
}

// ---------------------------------------------------------------------------

void Register(bool quick) {
  using benchmark::kMicrosecond;
  using benchmark::kMillisecond;

  auto* sequential = benchmark::RegisterBenchmark("OrSetAdd/sequential", OrSetAddSequential);
  sequential->ArgName("size")->UseManualTime()->Unit(kMillisecond);
  for (const std::int64_t n : {1'000, 10'000, 100'000, 1'000'000}) sequential->Arg(n);

  benchmark::RegisterBenchmark("OrSetAdd/sequential_reserved", OrSetAddSequentialReserved)
      ->ArgName("size")
      ->Arg(100'000)
      ->UseManualTime()
      ->Unit(kMillisecond);

  auto* at_size = benchmark::RegisterBenchmark("OrSetAdd/at_size", OrSetAddAtSize);
  at_size->ArgName("size")->UseManualTime()->Unit(kMicrosecond);
  for (const std::int64_t n : {1'000, 10'000, 100'000, 1'000'000}) at_size->Arg(n);

  auto* delta = benchmark::RegisterBenchmark("OrSetAdd/delta", OrSetAddDelta);
  delta->ArgName("size")->Iterations(1);
  for (const std::int64_t n : {1'000, 100'000}) delta->Arg(n);
  if (!quick) delta->Arg(1'000'000);

  auto* join = benchmark::RegisterBenchmark(
      "OrSetJoin/disjoint", [](benchmark::State& s) { OrSetJoin(s, /*overlap=*/false); });
  join->ArgName("size")->UseManualTime()->Unit(kMillisecond);
  for (const std::int64_t n : {1'000, 10'000, 50'000, 100'000}) join->Arg(n);
  if (!quick) join->Arg(500'000);

  benchmark::RegisterBenchmark("OrSetJoin/overlap",
                               [](benchmark::State& s) { OrSetJoin(s, /*overlap=*/true); })
      ->ArgName("size")
      ->Arg(50'000)
      ->UseManualTime()
      ->Unit(kMillisecond);

  benchmark::RegisterBenchmark("OrSetJoin/delta", OrSetJoinDelta)
      ->ArgName("size")
      ->Arg(100'000)
      ->UseManualTime()
      ->Unit(kMillisecond);

  auto* gcounter = benchmark::RegisterBenchmark("GCounter/increment", GCounterIncrement);
  gcounter->ArgName("replicas")->UseManualTime()->Unit(kMicrosecond);
  for (const std::int64_t r : {1, 8}) gcounter->Arg(r);

  auto* ormap = benchmark::RegisterBenchmark("OrMap/update", OrMapUpdate);
  ormap->ArgNames({"keys", "increments"})->UseManualTime()->Unit(kMillisecond);
  ormap->Args({100'000, 1});
  for (const std::int64_t d : {1, 10, 100}) {
    if (quick && d > 10) continue;
    ormap->Args({10'000, d});
  }

  benchmark::RegisterBenchmark("Memory/OrSet", OrSetMemory)
      ->ArgName("size")
      ->Arg(100'000)
      ->Iterations(1);
  benchmark::RegisterBenchmark("Memory/OrMap", OrMapMemory)
      ->ArgName("keys")
      ->Arg(100'000)
      ->Iterations(1);
}

}  // namespace
}  // namespace converge::bench

int main(int argc, char** argv) {
  return converge::bench::QuickMain(argc, argv, converge::bench::Register);
}
