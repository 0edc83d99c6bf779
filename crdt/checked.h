// Checked counter arithmetic.
//
// Counter states are replicated, so an overflow must be detected the same way
// on every replica: it depends only on the (replicated) state and the
// requested amount, never on timing. A mutator that would overflow throws
// CounterOverflow before changing anything; a query whose result does not fit
// its type throws CounterOverflow, and every replica holding the same state
// throws the same error.

#ifndef CONVERGE_CRDT_CHECKED_H_
#define CONVERGE_CRDT_CHECKED_H_

#include <cstdint>
#include <stdexcept>
#include <string>

namespace converge::crdt {

class CounterOverflow : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

namespace internal {

inline std::uint64_t CheckedAdd(std::uint64_t a, std::uint64_t b, const char* what) {
  std::uint64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    throw CounterOverflow(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) +
                          " exceeds 2^64-1");
  }
  return sum;
}

inline std::int64_t CheckedDifference(std::uint64_t plus, std::uint64_t minus, const char* what) {
  std::int64_t result = 0;
  if (__builtin_sub_overflow(plus, minus, &result)) {
    throw CounterOverflow(std::string(what) + ": " + std::to_string(plus) + " - " +
                          std::to_string(minus) + " does not fit a signed 64-bit value");
  }
  return result;
}

}  // namespace internal
}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_CHECKED_H_
