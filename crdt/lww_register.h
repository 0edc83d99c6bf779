// LwwRegister<T>: a last-writer-wins register.
//
// Each write carries a hybrid logical clock timestamp and the writer's
// ReplicaId; Join keeps the write with the greater (timestamp, writer) pair.
// Two writes by different replicas never compare equal, so Join is
// commutative. (The same replica writing two values with one timestamp is a
// misuse of Hlc; even then the greater value wins when T is totally ordered,
// so replicas still agree.)

#ifndef CONVERGE_CRDT_LWW_REGISTER_H_
#define CONVERGE_CRDT_LWW_REGISTER_H_

#include <compare>
#include <concepts>
#include <optional>
#include <ostream>
#include <tuple>
#include <utility>

#include "crdt/hlc.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

template <class T>
class LwwRegister {
 public:
  // The winning write: value, timestamp and writer.
  struct Write {
    T value;
    HlcTimestamp timestamp;
    ReplicaId writer;
    friend bool operator==(const Write&, const Write&) = default;
  };

  LwwRegister() = default;
  static LwwRegister FromWrite(std::optional<Write> write) {
    LwwRegister reg;
    reg.write_ = std::move(write);
    return reg;
  }

  // Writes `value` at `timestamp` (take it from the replica's Hlc::Now()).
  // Returns the delta: the write itself. If a greater write is already held,
  // the register keeps it (the new write lost), and the delta still carries
  // the new write, which every replica will also discard.
  LwwRegister Assign(ReplicaId writer, HlcTimestamp timestamp, T value) {
    LwwRegister delta;
    delta.write_ = Write{std::move(value), timestamp, writer};
    Join(delta);
    return delta;
  }

  // Convenience: stamps the write with clock.Now().
  LwwRegister Assign(ReplicaId writer, Hlc& clock, T value) {
    return Assign(writer, clock.Now(), std::move(value));
  }

  // The current value, or nullptr before the first write.
  [[nodiscard]] const T* Value() const { return write_ ? &write_->value : nullptr; }
  [[nodiscard]] const std::optional<Write>& write() const { return write_; }

  void Join(const LwwRegister& other) {
    if (!other.write_) return;
    if (!write_ || Wins(*other.write_, *write_)) write_ = other.write_;
  }

  [[nodiscard]] bool IsBottom() const { return !write_.has_value(); }

  friend bool operator==(const LwwRegister&, const LwwRegister&) = default;
  friend std::ostream& operator<<(std::ostream& os, const LwwRegister& r) {
    if (!r.write_) return os << "LwwRegister{}";
    os << "LwwRegister{@" << r.write_->timestamp << " by " << r.write_->writer;
    if constexpr (requires(std::ostream & o, const T& v) { o << v; })
      os << " = " << r.write_->value;
    return os << "}";
  }

 private:
  // True when write a beats write b.
  static bool Wins(const Write& a, const Write& b) {
    const auto order = std::tie(a.timestamp, a.writer) <=> std::tie(b.timestamp, b.writer);
    if (order != 0) return order > 0;
    if constexpr (std::totally_ordered<T>) {
      return b.value < a.value;
    } else {
      return false;
    }
  }

  std::optional<Write> write_;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_LWW_REGISTER_H_
