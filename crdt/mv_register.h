// MvRegister<T>: a multi-value register. A write replaces every value it has
// observed; writes concurrent with each other are all kept until a later
// write observes them.

#ifndef CONVERGE_CRDT_MV_REGISTER_H_
#define CONVERGE_CRDT_MV_REGISTER_H_

#include <algorithm>
#include <concepts>
#include <ostream>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/dot_store.h"
#include "crdt/internal/causal.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

template <class T>
class MvRegister : public internal::Causal<DotFun<T>> {
  using Base = internal::Causal<DotFun<T>>;

 public:
  MvRegister() = default;
  static MvRegister FromParts(DotFun<T> store, CausalContext context) {
    return {std::move(store), std::move(context)};
  }

  // Writes `value`, replacing every value observed here.
  MvRegister Assign(ReplicaId replica, T value) {
    auto delta = Base::template RemovalOf<MvRegister>(this->store_);
    const Dot dot = this->context_.NextDot(replica);
    delta.context_.Insert(dot);
    delta.store_ = DotFun<T>(dot, value);
    this->store_ = DotFun<T>(dot, std::move(value));
    return delta;
  }

  // Writes `value` over exactly the values `seen` observed (the LiveDots()
  // of the copy a client read, at any replica), also those not received here
  // yet; values `seen` did not observe stay, concurrent with this write.
  MvRegister Assign(ReplicaId replica, T value, const CausalContext& seen) {
    auto delta = this->template RemoveSeen<MvRegister>(seen);
    const Dot dot = this->context_.NextDot(replica);
    delta.context_.Insert(dot);
    delta.store_ = DotFun<T>(dot, value);
    this->store_.Insert(dot, std::move(value));
    return delta;
  }

  // Empties the register as `seen` observed it.
  MvRegister Clear(const CausalContext& seen) {
    return this->template RemoveSeen<MvRegister>(seen);
  }

  // Empties the register as observed here.
  MvRegister Clear() {
    auto delta = Base::template RemovalOf<MvRegister>(this->store_);
    this->store_.clear();
    return delta;
  }

  // All concurrent values: sorted when T is totally ordered, else in dot
  // order. Empty before the first write and after Clear().
  [[nodiscard]] std::vector<T> Values() const {
    std::vector<T> values;
    values.reserve(this->store_.size());
    for (const auto& item : this->store_.items()) values.push_back(item.value);
    if constexpr (std::totally_ordered<T>) std::sort(values.begin(), values.end());
    return values;
  }

  void Join(const MvRegister& other) { this->JoinCausal(other); }

  friend std::ostream& operator<<(std::ostream& os, const MvRegister& r) {
    os << "MvRegister{";
    for (const auto& item : r.store_.items()) {
      os << item.dot;
      if constexpr (requires(std::ostream & o, const T& v) { o << v; }) os << "=" << item.value;
      os << " ";
    }
    return os << r.context_ << "}";
  }

 private:
  using Base::Base;
};

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_MV_REGISTER_H_
