// Dot stores and the causal join (Almeida, Shoker, Baquero 2018, §6).
//
// A causal CRDT is a pair (store, context). The store holds the dots that are
// "live" (each with its payload); the context holds every dot ever seen. The
// join of (s, c) and (s', c') keeps a dot when both stores hold it, or when
// one store holds it and the other context has not seen it:
//
//   (s, c) ⊔ (s', c') = ((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c')
//
// Three stores compose into every causal type in crdt/:
//   DotSet          a set of dots                      (EwFlag, OrSet element)
//   DotFun<V>       a map dot -> immutable payload     (MvRegister, CausalCounter)
//   DotMap<K, S>    a map key -> dot store, recursive  (OrSet, OrMap)
//
// Each store type provides: empty(), ForEachDot(f), DotCount(), operator==,
// and an overload of JoinStore(s, c, s2, c2) that turns s into the store part
// of (s, c) ⊔ (s2, c2). The caller joins the contexts afterwards.

#ifndef CONVERGE_CRDT_DOT_STORE_H_
#define CONVERGE_CRDT_DOT_STORE_H_

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/internal/inline_vector.h"
#include "crdt/internal/probe_table.h"
#include "crdt/replica_id.h"

namespace converge::crdt {

// ---------------------------------------------------------------------------
// DotSet: a sorted set of dots. One dot is stored inline (the common case: an
// OR-set element added once, an enabled flag).
class DotSet {
 public:
  DotSet() = default;
  explicit DotSet(Dot dot) { dots_.push_back(dot); }

  // Builds a set from dots in any order; duplicates and counter-0 dots are
  // dropped.
  static DotSet FromDots(std::span<const Dot> dots) {
    DotSet set;
    for (const Dot& d : dots) set.Insert(d);
    return set;
  }

  [[nodiscard]] bool empty() const { return dots_.empty(); }
  [[nodiscard]] std::size_t size() const { return dots_.size(); }
  [[nodiscard]] std::uint64_t DotCount() const { return dots_.size(); }
  [[nodiscard]] std::span<const Dot> dots() const { return dots_.span(); }

  [[nodiscard]] bool Contains(const Dot& dot) const {
    return std::binary_search(dots_.begin(), dots_.end(), dot);
  }

  void Insert(const Dot& dot) {
    if (dot.counter == 0) return;
    const auto pos = std::lower_bound(dots_.begin(), dots_.end(), dot);
    if (pos != dots_.end() && *pos == dot) return;
    dots_.insert(static_cast<std::size_t>(pos - dots_.begin()), dot);
  }

  void clear() { dots_.clear(); }

  template <class F>
  void ForEachDot(F&& f) const {
    for (const Dot& d : dots_) f(d);
  }

  // Keeps the dots for which keep(dot) is true.
  template <class Keep>
  void Filter(Keep&& keep) {
    dots_.erase_if([&](const Dot& d) { return !keep(d); });
  }

  friend bool operator==(const DotSet&, const DotSet&) = default;

 private:
  internal::InlineVector<Dot> dots_;
};

inline bool ContainsDot(const DotSet& s, const Dot& dot) { return s.Contains(dot); }

inline void JoinStore(DotSet& s, const CausalContext& c, const DotSet& s2,
                      const CausalContext& c2) {
  // s ∩ s2 and s \ c2: drop our dots that the other side saw and dropped.
  s.Filter([&](const Dot& d) { return s2.Contains(d) || !c2.Contains(d); });
  // s2 \ c: adopt their dots we have never seen.
  for (const Dot& d : s2.dots()) {
    if (!c.Contains(d)) s.Insert(d);
  }
}

// ---------------------------------------------------------------------------
// DotFun<V>: dots mapped to payloads. A dot names one write, so the payload of
// a dot never changes; two replicas holding the same dot hold the same value.
template <class V>
class DotFun {
 public:
  struct Item {
    Dot dot;
    V value;
    friend bool operator==(const Item&, const Item&) = default;
  };

  DotFun() = default;
  DotFun(Dot dot, V value) { items_.push_back(Item{dot, std::move(value)}); }

  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] std::size_t size() const { return items_.size(); }
  [[nodiscard]] std::uint64_t DotCount() const { return items_.size(); }
  [[nodiscard]] std::span<const Item> items() const { return {items_.data(), items_.size()}; }

  [[nodiscard]] const V* Find(const Dot& dot) const {
    const auto it = LowerBound(dot);
    return it != items_.end() && it->dot == dot ? &it->value : nullptr;
  }
  [[nodiscard]] bool Contains(const Dot& dot) const { return Find(dot) != nullptr; }

  // Inserts (dot, value) unless the dot is present.
  void Insert(const Dot& dot, V value) {
    if (dot.counter == 0) return;
    const auto it = LowerBound(dot);
    if (it != items_.end() && it->dot == dot) return;
    const auto pos = static_cast<std::size_t>(it - items_.begin());
    items_.push_back(Item{dot, std::move(value)});
    std::rotate(items_.begin() + static_cast<std::ptrdiff_t>(pos), items_.end() - 1, items_.end());
  }

  void clear() { items_.clear(); }

  template <class F>
  void ForEachDot(F&& f) const {
    for (const Item& item : items_) f(item.dot);
  }

  template <class Keep>
  void Filter(Keep&& keep) {
    erase_if(items_, [&](const Item& item) { return !keep(item.dot); });  // ADL: std or internal
  }

  friend bool operator==(const DotFun&, const DotFun&) = default;

 private:
  auto LowerBound(const Dot& dot) const {
    return std::lower_bound(items_.begin(), items_.end(), dot,
                            [](const Item& item, const Dot& d) { return item.dot < d; });
  }

  // One item inline when items are trivially copyable (counter amounts), so a
  // CausalCounter delta allocates nothing.
  template <class I>
  struct Storage {
    using type = std::vector<I>;
  };
  template <class I>
  requires std::is_trivially_copyable_v<I>
  struct Storage<I> {
    using type = internal::InlineVector<I>;
  };
  typename Storage<Item>::type items_;
};

template <class V>
bool ContainsDot(const DotFun<V>& s, const Dot& dot) {
  return s.Contains(dot);
}

template <class V>
void JoinStore(DotFun<V>& s, const CausalContext& c, const DotFun<V>& s2, const CausalContext& c2) {
  s.Filter([&](const Dot& d) { return s2.Contains(d) || !c2.Contains(d); });
  for (const auto& item : s2.items()) {
    if (!c.Contains(item.dot)) s.Insert(item.dot, item.value);
  }
}

// ---------------------------------------------------------------------------
// DotMap<K, S>: keys mapped to non-empty dot stores.
//
// Entries live densely in a vector (erase swaps the last entry into the hole),
// indexed by a hash table on the key once the map is larger than a few
// entries. Maps larger than kIndexThreshold also keep a dot index (dot ->
// entry), so that joining a small delta into a large state costs time
// proportional to the delta: the dots a delta's context removes are found
// through the index instead of by scanning every entry.
//
// K needs std::hash<K> and operator==.
template <class K, class S>
class DotMap {
 public:
  struct Entry {
    K key;
    S store;
  };

  // Maps with at most this many entries are scanned instead of indexed.
  static constexpr std::size_t kIndexThreshold = 8;

  DotMap() = default;

  [[nodiscard]] bool empty() const { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] std::span<const Entry> entries() const { return entries_; }

  [[nodiscard]] const S* Find(const K& key) const {
    const std::size_t i = IndexOf(key);
    return i == kNone ? nullptr : &entries_[i].store;
  }
  [[nodiscard]] bool Contains(const K& key) const { return Find(key) != nullptr; }

  // The entry holding `dot`, or nullptr.
  [[nodiscard]] const Entry* FindByDot(const Dot& dot) const {
    const std::size_t i = IndexOfDot(dot);
    return i == kNone ? nullptr : &entries_[i];
  }

  [[nodiscard]] std::uint64_t DotCount() const {
    if (indexed()) return dot_index_.size();
    std::uint64_t n = 0;
    for (const Entry& e : entries_) n += e.store.DotCount();
    return n;
  }

  template <class F>
  void ForEachDot(F&& f) const {
    for (const Entry& e : entries_) e.store.ForEachDot(f);
  }

  // Runs f(S&) on the store of `key` (an empty store if the key is absent)
  // and keeps the indexes in step with what f did; a store left empty removes
  // the key. If f throws, f must leave the store unchanged (strong
  // guarantee), and the map is unchanged. Index upkeep reads the store's
  // dots before and after f: O(size of the store).
  template <class Key, class F>
  requires std::is_same_v<std::remove_cvref_t<Key>, K>
  void Modify(Key&& key, F&& f) {
    ModifyEntry</*kReported=*/false>(std::forward<Key>(key),
                                     [&](S& store, DotChanges&) { f(store); });
  }

  // The dots one mutation added to and removed from an entry's store.
  struct DotChanges {
    internal::InlineVector<Dot> added;
    internal::InlineVector<Dot> removed;
    // Set when `removed` may also list dots the store did not hold (a remove
    // acting on a client's context): how many dots the mutation really
    // removed from the store. The map then keeps the listed dots its index
    // holds for the entry — exactly the removed ones, unless a listed dot's
    // slot is indistinguishable from a live dot's (same counter, replica
    // hashes alike: odds 2^-32), when the entry is re-indexed whole.
    std::optional<std::uint64_t> removed_from_store;
  };

  // Like Modify, for a mutation that reports its own effect: f(S&,
  // DotChanges&) records every dot it adds to and removes from the store.
  // Index upkeep then costs O(changes), not O(size of the store) — what
  // keeps an OrMap update O(1) however many dots the value holds.
  template <class Key, class F>
  requires std::is_same_v<std::remove_cvref_t<Key>, K>
  void ModifyReported(Key&& key, F&& f) {
    ModifyEntry</*kReported=*/true>(std::forward<Key>(key), std::forward<F>(f));
  }

  // Inserts a new entry. Precondition: key absent, store non-empty.
  void Insert(K key, S store) {
    assert(!Contains(key));
    assert(!store.empty());
    const std::uint32_t hash = keyed() ? HashOf(key) : 0;
    entries_.push_back(Entry{std::move(key), std::move(store)});
    const std::size_t i = entries_.size() - 1;
    if (keyed()) key_index_.Insert(KeySlot{hash, ToSlotIndex(i)});
    if (indexed()) entries_[i].store.ForEachDot([&](const Dot& d) { InsertDot(d, i); });
    MaybeBuildIndexes();
  }

  // Removes `key` if present; returns whether it was.
  bool Erase(const K& key) {
    const std::size_t i = IndexOf(key);
    if (i == kNone) return false;
    internal::InlineVector<Dot> dots;
    if (indexed()) entries_[i].store.ForEachDot([&](const Dot& d) { dots.push_back(d); });
    EraseAt(i, dots.span());
    return true;
  }

  void clear() {
    entries_.clear();
    key_index_.Clear();
    dot_index_.Clear();
  }

  void reserve(std::size_t n) {
    entries_.reserve(n);
    if (n > kIndexThreshold) {
      MaybeBuildIndexes(/*force=*/true);
      key_index_.Reserve(n);
      dot_index_.Reserve(n);
    }
  }

  // Order-independent equality of the key -> store maps.
  friend bool operator==(const DotMap& a, const DotMap& b) {
    if (a.size() != b.size()) return false;
    for (const Entry& e : a.entries_) {
      const S* other = b.Find(e.key);
      if (other == nullptr || !(*other == e.store)) return false;
    }
    return true;
  }

  // See JoinStore below; a member so it can use the indexes.
  void JoinFrom(const CausalContext& c, const DotMap& s2, const CausalContext& c2);

 private:
  static constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

  // Key index slot: 32 bits of the key hash and entry index + 1 (0 = empty).
  struct KeySlot {
    std::uint32_t hash = 0;
    std::uint32_t index_plus_one = 0;
  };
  struct KeyTraits {
    static std::uint64_t Hash(const KeySlot& s) { return s.hash; }
    static bool Empty(const KeySlot& s) { return s.index_plus_one == 0; }
  };
  // Dot index slot, 16 bytes: the dot's counter, 32 bits of its replica's
  // hash, and the index + 1 of the entry holding it. The slot does not hold
  // the whole dot, so a lookup confirms a match against the entry's store;
  // erasing and re-pointing go by entry index, which is exact.
  struct DotSlot {
    std::uint64_t counter = 0;
    std::uint32_t replica_tag = 0;
    std::uint32_t index_plus_one = 0;
  };
  struct DotTraits {
    static std::uint64_t Hash(const DotSlot& s) {
      return internal::Mix64(s.counter ^ (std::uint64_t{s.replica_tag} << 32));
    }
    static bool Empty(const DotSlot& s) { return s.index_plus_one == 0; }
  };
  static DotSlot SlotOf(const Dot& dot, std::uint32_t index_plus_one) {
    return DotSlot{dot.counter, static_cast<std::uint32_t>(internal::Mix64(dot.replica.value())),
                   index_plus_one};
  }
  static bool SameDot(const DotSlot& a, const DotSlot& b) {
    return a.counter == b.counter && a.replica_tag == b.replica_tag;
  }

  static std::uint32_t HashOf(const K& key) {
    return static_cast<std::uint32_t>(internal::Mix64(std::hash<K>{}(key)));
  }
  static std::uint32_t ToSlotIndex(std::size_t i) {
    assert(i < std::numeric_limits<std::uint32_t>::max());
    return static_cast<std::uint32_t>(i + 1);
  }

  [[nodiscard]] bool keyed() const { return key_index_.capacity() != 0; }
  [[nodiscard]] bool indexed() const { return dot_index_.capacity() != 0; }

  // Position of `key` in entries_, or kNone. Small maps are scanned; with a
  // key index the key's hash is computed and, if hash_out is given, stored.
  std::size_t IndexOf(const K& key, std::uint32_t* hash_out = nullptr) const {
    if (!keyed()) {
      for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].key == key) return i;
      }
      return kNone;
    }
    const std::uint32_t hash = HashOf(key);
    if (hash_out != nullptr) *hash_out = hash;
    const KeySlot* slot = key_index_.Find(hash, [&](const KeySlot& s) {
      return s.hash == hash && entries_[s.index_plus_one - 1].key == key;
    });
    return slot == nullptr ? kNone : slot->index_plus_one - 1;
  }

  std::size_t IndexOfDot(const Dot& dot) const {
    if (!indexed()) {
      for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (ContainsDot(entries_[i].store, dot)) return i;
      }
      return kNone;
    }
    const DotSlot probe = SlotOf(dot, 0);
    const DotSlot* slot = dot_index_.Find(DotTraits::Hash(probe), [&](const DotSlot& s) {
      return SameDot(s, probe) && ContainsDot(entries_[s.index_plus_one - 1].store, dot);
    });
    return slot == nullptr ? kNone : slot->index_plus_one - 1;
  }

  template <bool kReported, class Key, class F>
  void ModifyEntry(Key&& key, F&& f) {
    std::uint32_t hash = 0;  // set by IndexOf when the key index exists
    std::size_t i = IndexOf(key, &hash);
    const bool created = i == kNone;
    if (created) {
      entries_.push_back(Entry{std::forward<Key>(key), S{}});
      i = entries_.size() - 1;
    }
    DotChanges changes;
    if (!kReported && indexed() && !created) {
      entries_[i].store.ForEachDot([&](const Dot& d) { changes.removed.push_back(d); });
    }
    try {
      f(entries_[i].store, changes);
    } catch (...) {
      if (created) entries_.pop_back();
      throw;
    }
    bool reindex = false;
    if (kReported && indexed() && changes.removed_from_store) {
      changes.removed.erase_if([&](const Dot& d) { return !HasDotSlot(d, i); });
      if (changes.removed.size() != *changes.removed_from_store) {
        // A listed dot looks like a live one: drop every slot of the entry.
        const std::uint32_t slot_index = ToSlotIndex(i);
        dot_index_.EraseIf([&](const DotSlot& s) { return s.index_plus_one == slot_index; });
        changes.removed.clear();
        reindex = true;
      }
    }
    if (entries_[i].store.empty()) {
      if (created) {
        entries_.pop_back();
      } else {
        EraseAt(i, changes.removed.span());
      }
      return;
    }
    if (created && keyed()) key_index_.Insert(KeySlot{hash, ToSlotIndex(i)});
    if (indexed()) {
      for (const Dot& d : changes.removed.span()) EraseDot(d, i);
      if (kReported && !reindex) {
        for (const Dot& d : changes.added.span()) InsertDot(d, i);
      } else {
        entries_[i].store.ForEachDot([&](const Dot& d) { InsertDot(d, i); });
      }
    }
    MaybeBuildIndexes();
  }

  // Whether the dot index has a slot for `dot` in entry i.
  bool HasDotSlot(const Dot& dot, std::size_t i) const {
    const DotSlot probe = SlotOf(dot, ToSlotIndex(i));
    return dot_index_.Find(DotTraits::Hash(probe), [&](const DotSlot& s) {
      return SameDot(s, probe) && s.index_plus_one == probe.index_plus_one;
    }) != nullptr;
  }

  void InsertDot(const Dot& dot, std::size_t i) { dot_index_.Insert(SlotOf(dot, ToSlotIndex(i))); }
  // Erases the slot of `dot` held by entry i.
  void EraseDot(const Dot& dot, std::size_t i) {
    const DotSlot probe = SlotOf(dot, ToSlotIndex(i));
    dot_index_.Erase(DotTraits::Hash(probe), [&](const DotSlot& s) {
      return SameDot(s, probe) && s.index_plus_one == probe.index_plus_one;
    });
  }

  void MaybeBuildIndexes(bool force = false) {
    if (keyed() || (!force && entries_.size() <= kIndexThreshold)) return;
    key_index_.Reserve(entries_.size());
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      key_index_.Insert(KeySlot{HashOf(entries_[i].key), ToSlotIndex(i)});
    }
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      entries_[i].store.ForEachDot([&](const Dot& d) { InsertDot(d, i); });
    }
    if (dot_index_.capacity() == 0) dot_index_.Reserve(kIndexThreshold + 1);
  }

  // Removes entry i whose store held `dots`; moves the last entry into i.
  void EraseAt(std::size_t i, std::span<const Dot> dots) {
    if (keyed()) {
      const std::uint32_t slot_index = ToSlotIndex(i);
      key_index_.Erase(HashOf(entries_[i].key),
                       [&](const KeySlot& s) { return s.index_plus_one == slot_index; });
    }
    if (indexed()) {
      for (const Dot& d : dots) EraseDot(d, i);
    }
    const std::size_t last = entries_.size() - 1;
    if (i != last) {
      entries_[i] = std::move(entries_[last]);
      const std::uint32_t from = ToSlotIndex(last);
      const std::uint32_t to = ToSlotIndex(i);
      if (keyed()) {
        KeySlot* slot = key_index_.Find(HashOf(entries_[i].key),
                                        [&](const KeySlot& s) { return s.index_plus_one == from; });
        assert(slot != nullptr);  // the key index holds every entry
        if (slot != nullptr) slot->index_plus_one = to;
      }
      if (indexed()) {
        entries_[i].store.ForEachDot([&](const Dot& d) {
          const DotSlot probe = SlotOf(d, from);
          DotSlot* slot = dot_index_.Find(DotTraits::Hash(probe), [&](const DotSlot& s) {
            return SameDot(s, probe) && s.index_plus_one == from;
          });
          assert(slot != nullptr);  // the dot index holds every live dot
          if (slot != nullptr) slot->index_plus_one = to;
        });
      }
    }
    entries_.pop_back();
  }

  std::vector<Entry> entries_;
  internal::ProbeTable<KeySlot, KeyTraits> key_index_;
  internal::ProbeTable<DotSlot, DotTraits> dot_index_;
};

template <class K, class S>
bool ContainsDot(const DotMap<K, S>& s, const Dot& dot) {
  return s.FindByDot(dot) != nullptr;
}

template <class K, class S>
void JoinStore(DotMap<K, S>& s, const CausalContext& c, const DotMap<K, S>& s2,
               const CausalContext& c2) {
  s.JoinFrom(c, s2, c2);
}

template <class K, class S>
void DotMap<K, S>::JoinFrom(const CausalContext& c, const DotMap& s2, const CausalContext& c2) {
  // Keys only on our side keep just the dots that c2 has not seen. Find the
  // affected entries through the dot index when c2 covers fewer dots than we
  // hold (a delta), else by scanning our entries (a full state).
  std::vector<std::size_t> affected;
  const bool by_context = indexed() && c2.DotCount() < dot_index_.size();
  if (by_context) {
    c2.ForEachDot([&](const Dot& d) {
      const std::size_t i = IndexOfDot(d);
      if (i != kNone && !s2.Contains(entries_[i].key)) affected.push_back(i);
    });
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
  } else {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      bool covered = false;
      entries_[i].store.ForEachDot([&](const Dot& d) { covered = covered || c2.Contains(d); });
      if (covered && !s2.Contains(entries_[i].key)) affected.push_back(i);
    }
  }
  // Descending order: erasing entry i moves the last entry, which has been
  // handled already.
  const S empty_store{};
  // (Not std::views::reverse: clang 14 cannot compile it with libstdc++ 12.)
  for (auto it = affected.rbegin(); it != affected.rend();
       ++it) {  // NOLINT(modernize-loop-convert)
    Modify(entries_[*it].key, [&](S& store) { JoinStore(store, c, empty_store, c2); });
  }
  // Keys on their side: join entry by entry.
  for (const Entry& e : s2.entries_) {
    Modify(e.key, [&](S& store) { JoinStore(store, c, e.store, c2); });
  }
}

}  // namespace converge::crdt

#endif  // CONVERGE_CRDT_DOT_STORE_H_
