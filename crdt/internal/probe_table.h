// Open-addressing hash table of small trivially copyable slots.
//
// The dense maps in dot_store.h keep their entries in a vector and use this
// table as an index into it (by key hash, and by dot). Slots hold indices,
// not pointers, so copying a map copies its indexes verbatim.
//
// Linear probing, power-of-two capacity, load factor at most 3/4, and
// backward-shift deletion (no tombstones), so lookups stay short under any
// mix of inserts and erases.

#ifndef CONVERGE_CRDT_INTERNAL_PROBE_TABLE_H_
#define CONVERGE_CRDT_INTERNAL_PROBE_TABLE_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace converge::crdt::internal {

// Traits must provide:
//   static std::uint64_t Hash(const Slot&);   // well mixed
//   static bool Empty(const Slot&);           // Slot{} is empty
template <class Slot, class Traits>
requires std::is_trivially_copyable_v<Slot>
class ProbeTable {
 public:
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const { return slots_.size(); }
  [[nodiscard]] std::size_t heap_bytes() const { return slots_.capacity() * sizeof(Slot); }

  // Returns the first slot with this hash for which match(slot) is true.
  template <class Match>
  Slot* Find(std::uint64_t hash, Match&& match) {
    if (slots_.empty()) return nullptr;
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (Traits::Empty(slot)) return nullptr;
      if (match(slot)) return &slot;
    }
  }
  template <class Match>
  const Slot* Find(std::uint64_t hash, Match&& match) const {
    return const_cast<ProbeTable*>(this)->Find(hash, match);  // NOLINT
  }

  // Inserts a slot. The caller guarantees no equal slot is present.
  void Insert(const Slot& slot) {
    assert(!Traits::Empty(slot));
    if ((size_ + 1) * 4 > slots_.size() * 3) Grow(slots_.empty() ? 8 : slots_.size() * 2);
    Place(slot);
    ++size_;
  }

  // Erases the first slot with this hash for which match(slot) is true.
  template <class Match>
  bool Erase(std::uint64_t hash, Match&& match) {
    Slot* slot = Find(hash, match);
    if (slot == nullptr) return false;
    EraseAt(static_cast<std::size_t>(slot - slots_.data()));
    --size_;
    return true;
  }

  // Erases every slot for which pred(slot) is true. O(capacity).
  template <class Pred>
  void EraseIf(Pred&& pred) {
    std::vector<Slot> kept;
    kept.reserve(size_);
    for (const Slot& slot : slots_) {
      if (!Traits::Empty(slot) && !pred(slot)) kept.push_back(slot);
    }
    std::fill(slots_.begin(), slots_.end(), Slot{});
    size_ = 0;
    for (const Slot& slot : kept) {
      Place(slot);
      ++size_;
    }
  }

  void Reserve(std::size_t n) {
    std::size_t capacity = 8;
    while (capacity * 3 < n * 4) capacity *= 2;
    if (capacity > slots_.size()) Grow(capacity);
  }

  void Clear() {
    slots_.clear();
    slots_.shrink_to_fit();
    size_ = 0;
    mask_ = 0;
  }

  template <class F>
  void ForEach(F&& f) const {
    for (const Slot& slot : slots_) {
      if (!Traits::Empty(slot)) f(slot);
    }
  }

 private:
  void Place(const Slot& slot) {
    std::size_t i = Traits::Hash(slot) & mask_;
    while (!Traits::Empty(slots_[i])) i = (i + 1) & mask_;
    slots_[i] = slot;
  }

  void Grow(std::size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const Slot& slot : old) {
      if (!Traits::Empty(slot)) Place(slot);
    }
  }

  // Backward-shift deletion: pull later members of the probe run into the
  // hole when their home position allows it.
  void EraseAt(std::size_t hole) {
    std::size_t j = hole;
    for (;;) {
      j = (j + 1) & mask_;
      if (Traits::Empty(slots_[j])) break;
      const std::size_t home = Traits::Hash(slots_[j]) & mask_;
      const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
      if (stays) continue;
      slots_[hole] = slots_[j];
      hole = j;
    }
    slots_[hole] = Slot{};
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace converge::crdt::internal

#endif  // CONVERGE_CRDT_INTERNAL_PROBE_TABLE_H_
