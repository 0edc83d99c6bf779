// A vector of trivially copyable values that stores up to one element inline.
//
// Deltas are the hot path of every CRDT here: one mutation returns a state
// holding one dot, one counter entry, one context entry. Holding that single
// element inline means returning a delta allocates nothing. Larger contents
// live in a std::vector.

#ifndef CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_
#define CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

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

  InlineVector(const InlineVector& other) { *this = other; }
  InlineVector& operator=(const InlineVector& other) {
    if (this != &other) {
      heap_ = other.heap_;
      inline_ = other.inline_;
      inline_size_ = other.inline_size_;
    }
    return *this;
  }
  InlineVector(InlineVector&& other) noexcept
      : heap_(std::move(other.heap_)), inline_(other.inline_), inline_size_(other.inline_size_) {
    other.ClearAll();
  }
  InlineVector& operator=(InlineVector&& other) noexcept {
    if (this != &other) {
      heap_ = std::move(other.heap_);
      inline_ = other.inline_;
      inline_size_ = other.inline_size_;
      other.ClearAll();
    }
    return *this;
  }
  ~InlineVector() = default;

  [[nodiscard]] std::size_t size() const { return OnHeap() ? heap_.size() : inline_size_; }
  [[nodiscard]] bool empty() const { return size() == 0; }

  T* data() { return OnHeap() ? heap_.data() : &inline_; }
  const T* data() const { return OnHeap() ? heap_.data() : &inline_; }
  T* begin() { return data(); }
  T* end() { return data() + size(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }
  T& operator[](std::size_t i) {
    assert(i < size());
    return data()[i];
  }
  const T& operator[](std::size_t i) const {
    assert(i < size());
    return data()[i];
  }
  T& front() { return (*this)[0]; }
  const T& front() const { return (*this)[0]; }
  T& back() { return (*this)[size() - 1]; }
  const T& back() const { return (*this)[size() - 1]; }
  std::span<const T> span() const { return {data(), size()}; }

  void reserve(std::size_t n) {
    if (n <= 1) return;
    MoveToHeap();
    heap_.reserve(n);
  }

  void push_back(const T& value) { insert(size(), value); }

  void insert(std::size_t pos, const T& value) {
    assert(pos <= size());
    if (!OnHeap() && inline_size_ == 0) {
      inline_ = value;
      inline_size_ = 1;
      return;
    }
    MoveToHeap();
    heap_.insert(heap_.begin() + static_cast<std::ptrdiff_t>(pos), value);
  }

  void erase(std::size_t pos) {
    assert(pos < size());
    if (OnHeap()) {
      heap_.erase(heap_.begin() + static_cast<std::ptrdiff_t>(pos));
    } else {
      inline_size_ = 0;
    }
  }

  // Removes the n elements starting at pos.
  void erase(std::size_t pos, std::size_t n) {
    assert(pos + n <= size());
    if (n == 0) return;
    if (OnHeap()) {
      const auto first = heap_.begin() + static_cast<std::ptrdiff_t>(pos);
      heap_.erase(first, first + static_cast<std::ptrdiff_t>(n));
    } else {
      inline_size_ = 0;
    }
  }

  // Removes every element for which pred is true, keeping the order of the
  // others.
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    if (OnHeap()) return std::erase_if(heap_, pred);
    if (inline_size_ == 1 && pred(inline_)) {
      inline_size_ = 0;
      return 1;
    }
    return 0;
  }

  void clear() { ClearAll(); }

  // Releases heap memory when the contents fit inline again.
  // An empty heap_ may still hold capacity (left by erasing every element or
  // by reserve()) while the elements, if any, are inline: release it too.
  void shrink_to_fit() {
    if (heap_.size() > 1) {
      heap_.shrink_to_fit();
      return;
    }
    if (heap_.size() == 1) {
      inline_ = heap_.front();
      inline_size_ = 1;
    }
    heap_ = std::vector<T>();
  }

  [[nodiscard]] std::size_t heap_bytes() const { return heap_.capacity() * sizeof(T); }

  friend std::size_t erase_if(InlineVector& v, auto pred) { return v.erase_if(pred); }

  friend bool operator==(const InlineVector& a, const InlineVector& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  // Invariant: when heap_ is empty the elements are inline_[0, inline_size_);
  // otherwise heap_ holds all elements and inline_size_ is 0.
  [[nodiscard]] bool OnHeap() const { return !heap_.empty(); }

  void MoveToHeap() {
    if (OnHeap()) return;
    if (inline_size_ == 1) {
      heap_.reserve(2);
      heap_.push_back(inline_);
      inline_size_ = 0;
    }
  }

  void ClearAll() {
    heap_.clear();
    inline_size_ = 0;
  }

  std::vector<T> heap_;
  T inline_{};
  std::size_t inline_size_ = 0;
};

}  // namespace converge::crdt::internal

#endif  // CONVERGE_CRDT_INTERNAL_INLINE_VECTOR_H_
