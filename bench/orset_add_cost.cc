// The work of one OrSet<std::string>::Add, counted in instructions, at a
// given set size: a deterministic measure of whether the cost per add is flat
// in the size of the set, which wall-clock time cannot give once the set
// outgrows the CPU caches.
//
// Usage: converge_orset_add_cost N M [--unreserved]
//
// Builds an OrSet<std::string> of N distinct elements (the element strings
// "item-0", "item-1", ... are generated beforehand), then performs M further
// adds of new distinct elements, N + 1 to N + M, each returning its delta,
// which is destroyed before the next add (as in bench/crdt_benchmark.cc). By
// default the set is reserved for N + M elements before it is built, so the
// M measured adds include no vector or hash-index growth; with --unreserved
// the set grows as it would without reserve (whether a growth falls among
// the M measured adds then depends on N).
//
// Only the M adds are measured. Run it under callgrind with instrumentation
// off at start:
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT
//            converge_orset_add_cost 1000000 10000
//
// and the program switches instrumentation on just before the M adds and off
// just after them (CALLGRIND_START_INSTRUMENTATION / _STOP_INSTRUMENTATION
// from <valgrind/callgrind.h>), so the "totals:" line of OUT is the
// instructions (Ir) of the M adds alone; building the set and generating the
// strings are not counted. bench/orset_add_cost.py (run by bench/run) does
// this and divides by M.
//
// Without <valgrind/callgrind.h> (package valgrind not installed when this
// was built) the client requests compile to nothing; the M adds still run in
// their own function, converge_bench_measured_adds, and callgrind can be told
// to count only inside it instead:
//
//   valgrind --tool=callgrind --collect-atstart=no
//            --toggle-collect=converge_bench_measured_adds ...
//
// which gives the same totals but instruments the whole run (slower). The
// output says which of the two applies ("client_requests: yes" or "no");
// bench/orset_add_cost.py reads it. Defining CONVERGE_BENCH_NO_CALLGRIND_H
// forces this fallback, to test it.
//
// Run natively, the program prints the same lines and the wall-clock time of
// the M adds, for orientation only.
//
// Output, one "key: value" per line:
//   client_requests  yes or no (see above)
//   size             N
//   adds             M
//   reserved         yes or no
//   set_heap_bytes   heap in use by the set after the N adds (mallinfo2
//                    growth: reserved capacity and malloc overhead included)
//   final_size       N + M, a check that no add was lost
//   wall_ns_per_add  wall-clock time of the M adds / M (native runs only
//                    mean anything)

#if __has_include(<valgrind/callgrind.h>) && !defined(CONVERGE_BENCH_NO_CALLGRIND_H)
#include <valgrind/callgrind.h>
#define CONVERGE_HAVE_CALLGRIND_H 1
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#define CONVERGE_HAVE_CALLGRIND_H 0
#endif

#include <malloc.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crdt/or_set.h"
#include "crdt/replica_id.h"

namespace {

using Set = converge::crdt::OrSet<std::string>;
constexpr converge::crdt::ReplicaId kReplica{1};

// Keeps the compiler from discarding a value it could prove unused (the
// equivalent of benchmark::DoNotOptimize).
template <class T>
inline void KeepAlive(T& value) {
  asm volatile("" : : "r"(&value) : "memory");
}

std::size_t HeapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

bool ParseCount(const char* text, std::size_t& out) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || value == 0) return false;
  out = static_cast<std::size_t>(value);
  return true;
}

}  // namespace

// The measured region: adds items[first, first + m) to `set`, each delta
// kept alive until the next add. Not inlined and with C linkage, so that
// callgrind's --toggle-collect can name it.
extern "C" __attribute__((noinline)) void converge_bench_measured_adds(Set* set,
                                                                       const std::string* items,
                                                                       std::size_t m) {
  for (std::size_t i = 0; i < m; ++i) {
    Set delta = set->Add(kReplica, items[i]);
    KeepAlive(delta);
  }
}

int main(int argc, char** argv) {
  std::size_t n = 0;
  std::size_t m = 0;
  bool reserved = true;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--unreserved") == 0) {
      reserved = false;
    } else if (positional == 0 && ParseCount(argv[i], n)) {
      ++positional;
    } else if (positional == 1 && ParseCount(argv[i], m)) {
      ++positional;
    } else {
      positional = -1;
      break;
    }
  }
  if (positional != 2) {
    std::fprintf(stderr, "usage: %s N M [--unreserved]  (N, M positive)\n", argv[0]);
    return 2;
  }

  std::vector<std::string> items;
  items.reserve(n + m);
  for (std::size_t i = 0; i < n + m; ++i) items.push_back("item-" + std::to_string(i));

  const std::size_t heap_before = HeapInUse();
  Set set;
  if (reserved) set.reserve(n + m);
  for (std::size_t i = 0; i < n; ++i) {
    Set delta = set.Add(kReplica, items[i]);
    KeepAlive(delta);
  }
  const std::size_t set_heap_bytes = HeapInUse() - heap_before;

  const auto start = std::chrono::steady_clock::now();
  CALLGRIND_START_INSTRUMENTATION;
  converge_bench_measured_adds(&set, items.data() + n, m);
  CALLGRIND_STOP_INSTRUMENTATION;
  const auto stop = std::chrono::steady_clock::now();
  KeepAlive(set);

  const double wall_ns = std::chrono::duration<double, std::nano>(stop - start).count();
  std::printf("client_requests: %s\n", CONVERGE_HAVE_CALLGRIND_H ? "yes" : "no");
  std::printf("size: %zu\nadds: %zu\nreserved: %s\n", n, m, reserved ? "yes" : "no");
  std::printf("set_heap_bytes: %zu\n", set_heap_bytes);
  std::printf("final_size: %zu\n", set.size());
  std::printf("wall_ns_per_add: %.1f\n", wall_ns / static_cast<double>(m));
  if (set.size() != n + m) {
    std::fprintf(stderr, "orset_add_cost: the set holds %zu elements, expected %zu\n", set.size(),
                 n + m);
    return 1;
  }
  return 0;
}
