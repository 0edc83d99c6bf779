// Counts heap allocations of the benchmark binary.
//
// alloc_counter.cc replaces the global operator new and delete with malloc
// and free plus a counter increment, so a benchmark can report allocations
// per operation and the bytes a delta allocates. Not thread-safe: every
// benchmark here runs on one thread.

#ifndef CONVERGE_BENCH_ALLOC_COUNTER_H_
#define CONVERGE_BENCH_ALLOC_COUNTER_H_

#include <cstdint>

namespace converge::bench {

struct AllocCount {
  std::uint64_t calls = 0;  // calls of operator new since the program started
  std::uint64_t bytes = 0;  // bytes requested by those calls
};

AllocCount Allocations();

}  // namespace converge::bench

#endif  // CONVERGE_BENCH_ALLOC_COUNTER_H_
