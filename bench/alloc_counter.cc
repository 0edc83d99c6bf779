// Replacement of the global allocation functions; see alloc_counter.h. Kept
// in its own translation unit so that no call site sees malloc behind
// operator new.

#include "bench/alloc_counter.h"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace converge::bench {
namespace {
AllocCount counted;
}  // namespace

AllocCount Allocations() { return counted; }

}  // namespace converge::bench

void* operator new(std::size_t size) {
  ++converge::bench::counted.calls;
  converge::bench::counted.bytes += size;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*size*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*size*/) noexcept { std::free(p); }
