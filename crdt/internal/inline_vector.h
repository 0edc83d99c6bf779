// A vector of trivially copyable values that stores up to one element inline.
//
// Deltas are the hot path of every CRDT here: one mutation returns a state
// holding one dot, one counter entry, one context entry. Holding that single
// element inline means returning a delta allocates nothing. The same holds
// for the per-element dot set of a large OrSet, where the size of this class
// is paid once per element: it is the element (or a heap pointer) plus two
// 32-bit counts, 24 bytes for a Dot.

#ifndef CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_
#define CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

namespace converge::crdt::internal {

template <class T>
requires std::is_trivially_copyable_v<T>
class InlineVector {
 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  InlineVector() = default;
  InlineVector(std::initializer_list<T> values) {
    reserve(values.size());
    for (const T& v : values) push_back(v);
  }

  InlineVector(const InlineVector& other) { CopyFrom(other); }
  InlineVector& operator=(const InlineVector& other) {
    if (this != &other) {
      Release();
      CopyFrom(other);
    }
    return *this;
  }
  InlineVector(InlineVector&& other) noexcept { Steal(other); }
  InlineVector& operator=(InlineVector&& other) noexcept {
    if (this != &other) {
      Release();
      Steal(other);
    }
    return *this;
  }
  ~InlineVector() { Release(); }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  T* data() { return OnHeap() ? storage_.heap : &storage_.value; }
  const T* data() const { return OnHeap() ? storage_.heap : &storage_.value; }
  T* begin() { return data(); }
  T* end() { return data() + size_; }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size_; }
  T& operator[](std::size_t i) {
    assert(i < size_);
    return data()[i];
  }
  const T& operator[](std::size_t i) const {
    assert(i < size_);
    return data()[i];
  }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }
  std::span<const T> span() const { return {data(), size_}; }

  void reserve(std::size_t n) {
    if (n > Capacity()) Reallocate(n);
  }

  void push_back(const T& value) { insert(size_, value); }

  void insert(std::size_t pos, const T& value) {
    assert(pos <= size_);
    const T copy = value;  // `value` may live in this vector
    if (size_ == Capacity()) Reallocate(std::max<std::size_t>(4, 2 * Capacity()));
    T* d = data();
    std::memmove(d + pos + 1, d + pos, (size_ - pos) * sizeof(T));
    d[pos] = copy;
    ++size_;
  }

  void erase(std::size_t pos) { erase(pos, 1); }

  // Removes the n elements starting at pos.
  void erase(std::size_t pos, std::size_t n) {
    assert(pos + n <= size_);
    if (n == 0) return;
    T* d = data();
    std::memmove(d + pos, d + pos + n, (size_ - pos - n) * sizeof(T));
    size_ -= static_cast<std::uint32_t>(n);
  }

  // Removes every element for which pred is true, keeping the order of the
  // others; returns how many were removed.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    T* d = data();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (!pred(d[i])) d[kept++] = d[i];
    }
    const std::size_t removed = size_ - kept;
    size_ = static_cast<std::uint32_t>(kept);
    return removed;
  }

  void clear() { size_ = 0; }

  // Releases heap memory beyond what the contents need; contents of at most
  // one element move back inline.
  void shrink_to_fit() {
    if (!OnHeap() || size_ == capacity_) return;
    if (size_ <= 1) {
      T* heap = storage_.heap;
      const bool one = size_ == 1;
      const T value = one ? heap[0] : T{};
      Allocator().deallocate(heap, capacity_);
      capacity_ = 0;
      storage_.value = value;
      return;
    }
    Reallocate(size_);
  }

  [[nodiscard]] std::size_t heap_bytes() const { return std::size_t{capacity_} * sizeof(T); }

  // std::erase_if's shape, so generic code can call erase_if(v, pred).
  // NOLINTNEXTLINE(readability-identifier-naming)
  friend std::size_t erase_if(InlineVector& v, auto pred) { return v.erase_if(pred); }

  friend bool operator==(const InlineVector& a, const InlineVector& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  using Allocator = std::allocator<T>;

  // capacity_ == 0 means the one inline slot is in use (capacity 1);
  // otherwise storage_.heap holds capacity_ elements.
  union Storage {
    Storage() : value() {}
    T value;
    T* heap;
  };

  [[nodiscard]] bool OnHeap() const { return capacity_ != 0; }
  [[nodiscard]] std::size_t Capacity() const { return OnHeap() ? capacity_ : 1; }

  void Reallocate(std::size_t capacity) {
    assert(capacity >= size_ && capacity > 1);
    assert(capacity <= std::numeric_limits<std::uint32_t>::max());
    T* fresh = Allocator().allocate(capacity);
    if (OnHeap()) {
      std::memcpy(fresh, storage_.heap, size_ * sizeof(T));
    } else if (size_ == 1) {
      fresh[0] = storage_.value;
    }
    const std::uint32_t size = size_;
    Release();
    storage_.heap = fresh;
    capacity_ = static_cast<std::uint32_t>(capacity);
    size_ = size;
  }

  void CopyFrom(const InlineVector& other) {
    if (other.size_ <= 1) {
      if (other.size_ == 1) storage_.value = other.data()[0];
    } else {
      // More than one element: `other` is on the heap.
      storage_.heap = Allocator().allocate(other.size_);
      std::memcpy(storage_.heap, other.storage_.heap, other.size_ * sizeof(T));
      capacity_ = other.size_;
    }
    size_ = other.size_;
  }

  void Steal(InlineVector& other) {
    storage_ = other.storage_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.capacity_ = 0;
    other.size_ = 0;
  }

  // Frees heap storage; leaves the vector inline and empty.
  void Release() {
    if (OnHeap()) Allocator().deallocate(storage_.heap, capacity_);
    capacity_ = 0;
    size_ = 0;
  }

  Storage storage_;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = 0;
};

}  // namespace converge::crdt::internal

#endif  // CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_
