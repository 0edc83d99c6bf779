// CartWorkload: random shopping-cart updates through storage::Update, for
// the fault tests. Each step increments an item of a random cart (one new
// dot) or removes an item (the dots observed), and reports what it did as
// Ledger lines: a "try" line before a remove is written, an acknowledgement
// line only after Update returned ok.

#ifndef CONVERGE_STORAGE_TESTING_CART_WORKLOAD_H_
#define CONVERGE_STORAGE_TESTING_CART_WORKLOAD_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "storage/store.h"
#include "storage/testing/ledger.h"
#include "storage/typed.h"

namespace converge::storage::testing {

class CartWorkload {
 public:
  using Emit = std::function<void(const std::string& line)>;

  CartWorkload(std::uint64_t seed, int keys, int items, int remove_percent = 15)
      : rng_(seed), keys_(keys), items_(items), remove_percent_(remove_percent) {}

  // One update. `emit` gets the ledger lines; a failed update emits no
  // acknowledgement and returns the failure.
  Status Step(Store& store, const Emit& emit) {
    const std::string key = "cart:" + std::to_string(Pick(keys_));
    const std::string item = "item" + std::to_string(Pick(items_));
    if (Pick(100) < remove_percent_) {
      StatusOr<Cart> delta = Update<Cart>(store, key, [&](Cart& cart, crdt::ReplicaId) {
        std::vector<crdt::Dot> dots;
        if (const auto* counter = cart.store().Find(item); counter != nullptr) {
          for (const auto& it : counter->items()) dots.push_back(it.dot);
        }
        // Removing an absent item writes nothing: no line.
        if (!dots.empty()) emit(Ledger::FormatTryRemove(key, item, dots));
        return cart.Remove(item);
      });
      if (!delta.ok()) return delta.status();
      if (!delta->IsBottom()) emit(Ledger::FormatAckRemove(key, item));
      return Status::Ok();
    }
    const std::uint64_t amount = 1 + static_cast<std::uint64_t>(Pick(9));
    StatusOr<Cart> delta = Update<Cart>(store, key, [&](Cart& cart, crdt::ReplicaId self) {
      return cart.Update(item, [&](crdt::CausalCounter& q) { return q.Increment(self, amount); });
    });
    if (!delta.ok()) return delta.status();
    const auto* counter = delta->store().Find(item);
    if (counter == nullptr || counter->items().size() != 1) {
      return {StatusCode::kInternal, "increment delta does not hold one dot"};
    }
    emit(Ledger::FormatIncrement(key, item, counter->items()[0].dot, amount));
    return Status::Ok();
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::mt19937_64 rng_;
  int keys_;
  int items_;
  int remove_percent_;
};

}  // namespace converge::storage::testing

#endif  // CONVERGE_STORAGE_TESTING_CART_WORKLOAD_H_
