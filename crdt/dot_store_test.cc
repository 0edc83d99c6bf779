#include "crdt/dot_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

// The DotMap key of these tests: an int that, like std::string, does not keep
// its value when moved from, so a map that reads a key after moving the entry
// away finds the wrong key and fails. Converts from int to keep tests short.
class Key {
 public:
  static constexpr int kMovedFrom = -1000;

  Key(int value) : value_(value) {}  // NOLINT(google-explicit-constructor)
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  Key(Key&& other) noexcept : value_(std::exchange(other.value_, kMovedFrom)) {}
  Key& operator=(Key&& other) noexcept {
    value_ = std::exchange(other.value_, kMovedFrom);
    return *this;
  }
  ~Key() = default;

  [[nodiscard]] int value() const { return value_; }
  friend bool operator==(const Key&, const Key&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Key& k) { return os << k.value_; }

 private:
  int value_;
};

}  // namespace
}  // namespace converge::crdt

template <>
struct std::hash<converge::crdt::Key> {
  std::size_t operator()(const converge::crdt::Key& k) const noexcept {
    return std::hash<int>{}(k.value());
  }
};

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};

using SetMap = DotMap<Key, DotSet>;
using InnerMap = DotMap<Key, DotSet>;
using NestedMap = DotMap<Key, InnerMap>;

std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

CausalContext ContextOf(const std::vector<Dot>& dots) { return CausalContext::FromParts({}, dots); }

std::vector<Dot> DotsOf(const DotSet& s) { return {s.dots().begin(), s.dots().end()}; }

// The key of the entry holding `dot`, -1 when none does.
template <class S>
int KeyOfDot(const DotMap<Key, S>& m, const Dot& dot) {
  const auto* e = m.FindByDot(dot);
  return e == nullptr ? -1 : e->key.value();
}

// The dots under `key`, none when absent.
std::vector<Dot> DotsAt(const DotMap<Key, DotSet>& m, int key) {
  const DotSet* s = m.Find(key);
  return s == nullptr ? std::vector<Dot>{} : DotsOf(*s);
}

// ---------------------------------------------------------------------------
// Reference model: the causal join rule written naively on std containers.
//   (s, c) ⊔ (s', c') = ((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c')
// applied to sets of dots, and key by key (recursively) to maps.

using RefSet = std::set<Dot>;
template <class V>
using RefMap = std::map<int, V>;
using RefSetMap = RefMap<RefSet>;
using RefNested = RefMap<RefSetMap>;

RefSet RefJoin(const RefSet& s, const CausalContext& c, const RefSet& s2, const CausalContext& c2) {
  RefSet out;
  for (const Dot& d : s) {
    if (s2.count(d) == 1 || !c2.Contains(d)) out.insert(d);
  }
  for (const Dot& d : s2) {
    if (!c.Contains(d)) out.insert(d);
  }
  return out;
}

template <class V>
RefMap<V> RefJoin(const RefMap<V>& s, const CausalContext& c, const RefMap<V>& s2,
                  const CausalContext& c2) {
  std::set<int> keys;
  for (const auto& [k, v] : s) keys.insert(k);
  for (const auto& [k, v] : s2) keys.insert(k);
  RefMap<V> out;
  for (const int k : keys) {
    const auto a = s.find(k);
    const auto b = s2.find(k);
    V joined = RefJoin(a == s.end() ? V{} : a->second, c, b == s2.end() ? V{} : b->second, c2);
    if (!joined.empty()) out.emplace(k, std::move(joined));  // a bottom value is no entry
  }
  return out;
}

RefSet ToRef(const DotSet& s) { return {s.dots().begin(), s.dots().end()}; }

// Empty stores in `m` show up as empty values, which the reference never
// holds, so a DotMap that keeps an empty store does not compare equal.
template <class S>
auto ToRef(const DotMap<Key, S>& m) {
  RefMap<decltype(ToRef(std::declval<const S&>()))> out;
  for (const auto& e : m.entries()) {
    const bool fresh = out.emplace(e.key.value(), ToRef(e.store)).second;
    EXPECT_TRUE(fresh) << "key " << e.key << " listed twice";
  }
  return out;
}

DotSet FromRef(const RefSet& s) {
  const std::vector<Dot> dots(s.begin(), s.end());
  return DotSet::FromDots(dots);
}

template <class V>
struct StoreFor;
template <>
struct StoreFor<RefSet> {
  using Type = DotSet;
};
template <>
struct StoreFor<RefSetMap> {
  using Type = InnerMap;
};

// Builds a map from the reference, inserting keys in a random order and by a
// random mix of Insert and Modify.
template <class V>
DotMap<Key, typename StoreFor<V>::Type> FromRef(const RefMap<V>& ref, std::mt19937_64& rng) {
  using S = typename StoreFor<V>::Type;
  std::vector<int> keys;
  for (const auto& [k, v] : ref) keys.push_back(k);
  std::shuffle(keys.begin(), keys.end(), rng);
  DotMap<Key, S> map;
  for (const int k : keys) {
    S store;
    if constexpr (std::is_same_v<V, RefSet>) {
      store = FromRef(ref.at(k));
    } else {
      store = FromRef(ref.at(k), rng);
    }
    if ((rng() & 1) == 0) {
      map.Insert(k, store);
    } else {
      map.Modify(Key(k), [&](S& target) { target = store; });
    }
  }
  return map;
}

bool StoreHolds(const DotSet& s, const Dot& d) { return s.Contains(d); }
template <class S>
bool StoreHolds(const DotMap<Key, S>& m, const Dot& d) {
  bool found = false;
  m.ForEachDot([&](const Dot& x) { found = found || x == d; });
  return found;
}

// Find and FindByDot agree with the entries, DotCount with the dots held,
// no store is empty; recursively for nested maps.
template <class S>
testing::AssertionResult IndexesConsistent(const DotMap<Key, S>& map, int key_limit,
                                           std::span<const Dot> probes) {
  std::uint64_t dots = 0;
  std::set<int> keys;
  for (const auto& e : map.entries()) {
    keys.insert(e.key.value());
    if (e.store.empty()) return testing::AssertionFailure() << "empty store at " << e.key;
    if (map.Find(e.key) != &e.store) return testing::AssertionFailure() << "Find(" << e.key << ")";
    bool ok = true;
    e.store.ForEachDot([&](const Dot& d) {
      ++dots;
      if (map.FindByDot(d) != &e) {
        ok = false;
        ADD_FAILURE() << "FindByDot(" << d << ") does not give key " << e.key;
      }
    });
    if (!ok) return testing::AssertionFailure() << "dot index";
    if constexpr (!std::is_same_v<S, DotSet>) {
      auto inner = IndexesConsistent(e.store, key_limit, probes);
      if (!inner) return inner << " (inside key " << e.key << ")";
    }
  }
  if (map.DotCount() != dots) {
    return testing::AssertionFailure() << "DotCount " << map.DotCount() << " holds " << dots;
  }
  if (map.size() != keys.size()) return testing::AssertionFailure() << "size";
  for (int k = 0; k < key_limit; ++k) {
    if (map.Contains(k) != (keys.count(k) == 1)) {
      return testing::AssertionFailure() << "Contains(" << k << ")";
    }
  }
  for (const Dot& d : probes) {
    const auto* e = map.FindByDot(d);
    if (e != nullptr && !StoreHolds(e->store, d)) {
      return testing::AssertionFailure()
             << "FindByDot(" << d << ") gives key " << e->key << " which does not hold it";
    }
  }
  return testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// DotSet

TEST(DotSetTest, FromDotsSortsDeduplicatesAndDropsCounterZero) {
  const std::vector<Dot> dots = {{kB, 1}, {kA, 3}, {kA, 0}, {kA, 1}, {kB, 1}};
  const DotSet s = DotSet::FromDots(dots);
  EXPECT_EQ(DotsOf(s), (std::vector<Dot>{{kA, 1}, {kA, 3}, {kB, 1}}));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.DotCount(), 3u);
  EXPECT_TRUE(s.Contains(Dot{kA, 3}));
  EXPECT_FALSE(s.Contains(Dot{kA, 2}));
  EXPECT_FALSE(s.Contains(Dot{kA, 0}));
}

TEST(DotSetTest, InsertFilterClear) {
  DotSet s(Dot{kA, 2});
  s.Insert(Dot{kA, 1});
  s.Insert(Dot{kA, 2});
  s.Insert(Dot{kA, 0});
  EXPECT_EQ(DotsOf(s), (std::vector<Dot>{{kA, 1}, {kA, 2}}));
  s.Filter([](const Dot& d) { return d.counter != 1; });
  EXPECT_EQ(DotsOf(s), (std::vector<Dot>{{kA, 2}}));
  std::vector<Dot> visited;
  s.ForEachDot([&](const Dot& d) { visited.push_back(d); });
  EXPECT_EQ(visited, DotsOf(s));
  s.clear();
  EXPECT_TRUE(s.empty());
}

TEST(DotSetTest, JoinFollowsTheCausalRule) {
  DotSet s = DotSet::FromDots(std::vector<Dot>{{kA, 1}, {kA, 2}, {kA, 3}});
  const CausalContext c = ContextOf({{kA, 1}, {kA, 2}, {kA, 3}, {kB, 1}, {kB, 2}});
  const DotSet s2 = DotSet::FromDots(std::vector<Dot>{{kA, 1}, {kB, 1}, {kB, 3}});
  const CausalContext c2 = ContextOf({{kA, 1}, {kA, 2}, {kB, 1}, {kB, 3}});
  JoinStore(s, c, s2, c2);
  // (A,1) in both: kept. (A,2) seen and dropped by them: dropped. (A,3) not
  // seen by them: kept. (B,1) seen and dropped by us: not adopted. (B,3) new
  // to us: adopted.
  EXPECT_EQ(DotsOf(s), (std::vector<Dot>{{kA, 1}, {kA, 3}, {kB, 3}}));
}

TEST(DotSetTest, JoinAgreesWithReferenceOnRandomStates) {
  std::mt19937_64 rng(TestSeed(31));
  for (int round = 0; round < 500; ++round) {
    std::vector<Dot> seen_a;
    std::vector<Dot> seen_b;
    RefSet live_a;
    RefSet live_b;
    for (std::uint64_t r = 1; r <= 3; ++r) {
      for (std::uint64_t i = 1; i <= 6; ++i) {
        const Dot d{ReplicaId{r}, i};
        const auto roll = rng() % 6;
        // A dot is live on a side only if that side has seen it.
        if (roll & 1) seen_a.push_back(d);
        if (roll & 2) seen_b.push_back(d);
        if ((roll & 1) && (rng() & 1)) live_a.insert(d);
        if ((roll & 2) && (rng() & 1)) live_b.insert(d);
      }
    }
    const CausalContext c = ContextOf(seen_a);
    const CausalContext c2 = ContextOf(seen_b);
    DotSet s = FromRef(live_a);
    JoinStore(s, c, FromRef(live_b), c2);
    ASSERT_EQ(ToRef(s), RefJoin(live_a, c, live_b, c2)) << "round " << round;
  }
}

// ---------------------------------------------------------------------------
// DotFun

TEST(DotFunTest, InsertKeepsTheFirstPayloadOfADot) {
  DotFun<std::string> f(Dot{kB, 1}, "b");
  f.Insert(Dot{kA, 1}, "a");
  f.Insert(Dot{kA, 1}, "other");  // a dot's payload never changes
  f.Insert(Dot{kA, 0}, "zero");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f.DotCount(), 2u);
  EXPECT_EQ(*f.Find(Dot{kA, 1}), "a");
  EXPECT_EQ(*f.Find(Dot{kB, 1}), "b");
  EXPECT_EQ(f.Find(Dot{kA, 2}), nullptr);
  EXPECT_FALSE(f.Contains(Dot{kA, 0}));
  // Items are sorted by dot.
  EXPECT_EQ(f.items()[0].dot, (Dot{kA, 1}));
  EXPECT_EQ(f.items()[1].dot, (Dot{kB, 1}));
}

TEST(DotFunTest, JoinFollowsTheCausalRule) {
  DotFun<int> s;
  s.Insert(Dot{kA, 1}, 10);
  s.Insert(Dot{kA, 2}, 20);
  s.Insert(Dot{kA, 3}, 30);
  const CausalContext c = ContextOf({{kA, 1}, {kA, 2}, {kA, 3}, {kB, 1}});
  DotFun<int> s2;
  s2.Insert(Dot{kA, 1}, 10);
  s2.Insert(Dot{kB, 1}, 11);
  s2.Insert(Dot{kB, 2}, 12);
  const CausalContext c2 = ContextOf({{kA, 1}, {kA, 2}, {kB, 1}, {kB, 2}});
  JoinStore(s, c, s2, c2);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(*s.Find(Dot{kA, 1}), 10);
  EXPECT_EQ(s.Find(Dot{kA, 2}), nullptr);
  EXPECT_EQ(*s.Find(Dot{kA, 3}), 30);
  EXPECT_EQ(s.Find(Dot{kB, 1}), nullptr);
  EXPECT_EQ(*s.Find(Dot{kB, 2}), 12);
}

TEST(DotFunTest, FilterAndEquality) {
  DotFun<int> a;
  a.Insert(Dot{kA, 2}, 2);
  a.Insert(Dot{kA, 1}, 1);
  DotFun<int> b(Dot{kA, 1}, 1);
  EXPECT_NE(a, b);
  a.Filter([](const Dot& d) { return d.counter == 1; });
  EXPECT_EQ(a, b);
  a.clear();
  EXPECT_TRUE(a.empty());
}

// ---------------------------------------------------------------------------
// DotMap basics

TEST(DotMapTest, InsertFindEraseOnSmallAndLargeMaps) {
  for (const int n : {3, 8, 9, 50}) {
    SCOPED_TRACE(n);
    SetMap m;
    for (int k = 0; k < n; ++k) {
      m.Insert(k, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
    }
    ASSERT_EQ(m.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(m.DotCount(), static_cast<std::uint64_t>(n));
    for (int k = 0; k < n; ++k) {
      const Dot dot{kA, static_cast<std::uint64_t>(k) + 1};
      EXPECT_EQ(DotsAt(m, k), std::vector<Dot>{dot});
      EXPECT_EQ(KeyOfDot(m, dot), k);
    }
    EXPECT_EQ(m.Find(n), nullptr);
    EXPECT_FALSE(m.Contains(-1));
    EXPECT_EQ(m.FindByDot(Dot{kB, 1}), nullptr);

    EXPECT_TRUE(m.Erase(0));
    EXPECT_FALSE(m.Erase(0));
    EXPECT_FALSE(m.Contains(0));
    EXPECT_EQ(m.FindByDot(Dot{kA, 1}), nullptr);
    EXPECT_EQ(m.size(), static_cast<std::size_t>(n - 1));
    EXPECT_EQ(m.DotCount(), static_cast<std::uint64_t>(n - 1));
    EXPECT_TRUE(IndexesConsistent(m, n + 1, std::vector<Dot>{{kA, 1}, {kA, 2}}));
  }
}

TEST(DotMapTest, ModifyCreatesUpdatesAndRemovesKeys) {
  SetMap m;
  m.Modify(Key(1), [](DotSet& s) { s.Insert(Dot{kA, 1}); });
  ASSERT_TRUE(m.Contains(1));
  m.Modify(Key(1), [](DotSet& s) { s.Insert(Dot{kA, 2}); });
  EXPECT_EQ(DotsAt(m, 1), (std::vector<Dot>{{kA, 1}, {kA, 2}}));
  EXPECT_EQ(KeyOfDot(m, Dot{kA, 2}), 1);
  m.Modify(Key(2), [](DotSet&) {});  // left empty: not created
  EXPECT_FALSE(m.Contains(2));
  EXPECT_EQ(m.size(), 1u);
  m.Modify(Key(1), [](DotSet& s) { s.clear(); });  // emptied: removed
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.FindByDot(Dot{kA, 1}), nullptr);
}

TEST(DotMapTest, ModifyThatThrowsLeavesTheMapUnchanged) {
  for (const int n : {2, 20}) {
    SCOPED_TRACE(n);
    SetMap m;
    for (int k = 0; k < n; ++k) m.Insert(k, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
    const SetMap before = m;
    EXPECT_THROW(m.Modify(Key(n + 5), [](DotSet&) { throw std::runtime_error("absent"); }),
                 std::runtime_error);
    EXPECT_THROW(m.Modify(Key(1), [](DotSet&) { throw std::runtime_error("present"); }),
                 std::runtime_error);
    EXPECT_EQ(m, before);
    EXPECT_FALSE(m.Contains(n + 5));
    EXPECT_EQ(m.size(), static_cast<std::size_t>(n));
    EXPECT_TRUE(IndexesConsistent(m, n + 6, std::vector<Dot>{}));
    // Still fully usable.
    m.Modify(Key(n + 5), [](DotSet& s) { s.Insert(Dot{kB, 1}); });
    EXPECT_EQ(KeyOfDot(m, Dot{kB, 1}), n + 5);
  }
}

TEST(DotMapTest, EqualityIgnoresInsertionOrder) {
  SetMap a;
  SetMap b;
  for (int k = 0; k < 20; ++k) a.Insert(k, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
  for (int k = 19; k >= 0; --k) b.Insert(k, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
  EXPECT_EQ(a, b);
  b.Modify(Key(3), [](DotSet& s) { s.Insert(Dot{kC, 1}); });
  EXPECT_NE(a, b);
  b.Erase(3);
  EXPECT_NE(a, b);
}

TEST(DotMapTest, ReserveThenInsertKeepsIndexesUsable) {
  SetMap m;
  m.reserve(100);
  for (int k = 0; k < 3; ++k) m.Insert(k, DotSet(Dot{kB, static_cast<std::uint64_t>(k) + 1}));
  EXPECT_TRUE(IndexesConsistent(m, 5, std::vector<Dot>{{kB, 1}, {kB, 9}}));
  EXPECT_EQ(KeyOfDot(m, Dot{kB, 3}), 2);
  m.clear();
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.FindByDot(Dot{kB, 3}), nullptr);
  EXPECT_FALSE(m.Contains(2));
}

TEST(DotMapTest, IndexesSurviveShrinkingBelowThresholdAndGrowingAgain) {
  SetMap m;
  std::uint64_t counter = 0;
  for (int k = 0; k < 30; ++k) m.Insert(k, DotSet(Dot{kA, ++counter}));
  for (int k = 0; k < 28; ++k) ASSERT_TRUE(m.Erase(k));
  EXPECT_TRUE(IndexesConsistent(m, 60, std::vector<Dot>{{kA, 1}, {kA, 30}}));
  for (int k = 30; k < 60; ++k) m.Insert(k, DotSet(Dot{kA, ++counter}));
  EXPECT_TRUE(IndexesConsistent(m, 60, std::vector<Dot>{{kA, 1}, {kA, 30}, {kA, 60}}));
  EXPECT_EQ(m.size(), 32u);
}

TEST(DotMapTest, CopiesCarryWorkingIndexes) {
  SetMap m;
  for (int k = 0; k < 20; ++k) m.Insert(k, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
  SetMap copy = m;
  copy.Erase(5);
  copy.Modify(Key(6), [](DotSet& s) { s.Insert(Dot{kB, 1}); });
  EXPECT_TRUE(m.Contains(5));
  EXPECT_EQ(m.FindByDot(Dot{kB, 1}), nullptr);
  EXPECT_EQ(KeyOfDot(copy, Dot{kB, 1}), 6);
  EXPECT_TRUE(IndexesConsistent(m, 21, std::vector<Dot>{{kB, 1}}));
  EXPECT_TRUE(IndexesConsistent(copy, 21, std::vector<Dot>{{kB, 1}, {kA, 6}}));
}

// ---------------------------------------------------------------------------
// DotMap join: the rule on hand-made cases.

TEST(DotMapTest, JoinFollowsTheCausalRuleKeyByKey) {
  SetMap s;
  s.Insert(1, DotSet(Dot{kA, 1}));                                    // removed by them
  s.Insert(2, DotSet::FromDots(std::vector<Dot>{{kA, 2}, {kA, 3}}));  // partly removed
  s.Insert(3, DotSet(Dot{kA, 4}));                                    // unseen by them
  s.Insert(4, DotSet(Dot{kA, 5}));                                    // also theirs
  const CausalContext c = ContextOf({{kA, 1}, {kA, 2}, {kA, 3}, {kA, 4}, {kA, 5}, {kB, 1}});
  SetMap s2;
  s2.Insert(4, DotSet::FromDots(std::vector<Dot>{{kA, 5}, {kB, 2}}));
  s2.Insert(5, DotSet(Dot{kB, 1}));  // we removed it already
  s2.Insert(6, DotSet(Dot{kB, 3}));  // new to us
  const CausalContext c2 = ContextOf({{kA, 1}, {kA, 2}, {kA, 5}, {kB, 1}, {kB, 2}, {kB, 3}});
  JoinStore(s, c, s2, c2);
  const RefSetMap expected = {
      {2, {{kA, 3}}}, {3, {{kA, 4}}}, {4, {{kA, 5}, {kB, 2}}}, {6, {{kB, 3}}}};
  EXPECT_EQ(ToRef(s), expected);
}

TEST(DotMapTest, NestedJoinRemovesOnlyObservedInnerDots) {
  // Outer key 1 holds inner keys 10 (A1) and 11 (A2). The other side saw A1
  // only, removed it, and re-added inner key 10 with B1.
  NestedMap s;
  InnerMap inner;
  inner.Insert(10, DotSet(Dot{kA, 1}));
  inner.Insert(11, DotSet(Dot{kA, 2}));
  s.Insert(1, inner);
  const CausalContext c = ContextOf({{kA, 1}, {kA, 2}});
  NestedMap s2;
  InnerMap inner2;
  inner2.Insert(10, DotSet(Dot{kB, 1}));
  s2.Insert(1, inner2);
  const CausalContext c2 = ContextOf({{kA, 1}, {kB, 1}});

  NestedMap joined = s;
  JoinStore(joined, c, s2, c2);
  EXPECT_EQ(ToRef(joined), (RefNested{{1, {{10, {{kB, 1}}}, {11, {{kA, 2}}}}}}));

  // Removing everything observed removes the outer key too: no empty inner
  // map is left behind.
  NestedMap removed = s;
  JoinStore(removed, c, NestedMap{}, c);
  EXPECT_TRUE(removed.empty());

  // A remove that saw only A2 leaves inner key 10.
  NestedMap partial = s;
  JoinStore(partial, c, NestedMap{}, ContextOf({{kA, 2}}));
  EXPECT_EQ(ToRef(partial), (RefNested{{1, {{10, {{kA, 1}}}}}}));
}

// ---------------------------------------------------------------------------
// DotMap join against the reference on random states, through every path:
// unindexed maps, indexed maps joined with a small context (found through the
// dot index) and with a large one (found by scanning).

// Every dot of the universe belongs to one fixed key path, as in real use
// where a dot names one write to one key.
class Universe {
 public:
  Universe(std::mt19937_64& rng, std::uint64_t replicas, std::uint64_t dots_per_replica,
           int outer_keys, int inner_keys)
      : outer_keys_(outer_keys),
        inner_keys_(inner_keys),
        replicas_(replicas),
        dots_per_replica_(dots_per_replica) {
    for (std::uint64_t r = 1; r <= replicas; ++r) {
      for (std::uint64_t i = 1; i <= dots_per_replica; ++i) {
        const Dot d{ReplicaId{r}, i};
        dots_.push_back(d);
        paths_[d] = {static_cast<int>(rng() % static_cast<std::uint64_t>(outer_keys)),
                     static_cast<int>(rng() % static_cast<std::uint64_t>(inner_keys))};
      }
    }
  }

  const std::vector<Dot>& dots() const { return dots_; }
  int outer_keys() const { return outer_keys_; }
  int inner_keys() const { return inner_keys_; }

  RefSetMap Flat(const std::vector<Dot>& live) const {
    RefSetMap out;
    for (const Dot& d : live) out[paths_.at(d).first].insert(d);
    return out;
  }
  RefNested Nested(const std::vector<Dot>& live) const {
    RefNested out;
    for (const Dot& d : live) out[paths_.at(d).first][paths_.at(d).second].insert(d);
    return out;
  }

  // A full replica state: a prefix of every replica's dots plus some later
  // ones (a cloud), and a random part of them live.
  void FullState(std::mt19937_64& rng, std::vector<Dot>* live, CausalContext* context) const {
    std::vector<Dot> seen;
    for (std::uint64_t r = 1; r <= replicas_; ++r) {
      const std::uint64_t prefix = rng() % (dots_per_replica_ + 1);
      for (std::uint64_t i = 1; i <= dots_per_replica_; ++i) {
        if (i <= prefix || rng() % 4 == 0) seen.push_back(Dot{ReplicaId{r}, i});
      }
    }
    for (const Dot& d : seen) {
      if (rng() % 3 != 0) live->push_back(d);
    }
    *context = CausalContext::FromParts({}, seen);
  }

  // A delta: a handful of dots, some of them live in `base` (an observed
  // remove, or the same write delivered again), some new.
  void Delta(std::mt19937_64& rng, const std::vector<Dot>& base_live, std::vector<Dot>* live,
             CausalContext* context) const {
    std::vector<Dot> seen;
    const std::uint64_t n = rng() % 6 + 1;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!base_live.empty() && rng() % 2 == 0) {
        const Dot d = base_live[rng() % base_live.size()];
        seen.push_back(d);
        if (rng() % 3 == 0) live->push_back(d);
      } else {
        const Dot d = dots_[rng() % dots_.size()];
        seen.push_back(d);
        if (rng() % 2 == 0) live->push_back(d);
      }
    }
    std::sort(live->begin(), live->end());
    live->erase(std::unique(live->begin(), live->end()), live->end());
    *context = CausalContext::FromParts({}, seen);
  }

 private:
  std::vector<Dot> dots_;
  std::map<Dot, std::pair<int, int>> paths_;
  int outer_keys_;
  int inner_keys_;
  std::uint64_t replicas_;
  std::uint64_t dots_per_replica_;
};

enum class JoinPath { kUnindexed, kByContext, kScan };

// The path DotMap::JoinFrom takes for a map built by inserts only (a map
// that shrank keeps its indexes).
template <class S>
JoinPath PathOf(const DotMap<Key, S>& s, const CausalContext& c2) {
  if (s.size() <= DotMap<Key, S>::kIndexThreshold) return JoinPath::kUnindexed;
  return c2.DotCount() < s.DotCount() ? JoinPath::kByContext : JoinPath::kScan;
}

template <class Ref>
Ref MakeRef(const Universe& u, const std::vector<Dot>& live) {
  if constexpr (std::is_same_v<Ref, RefSetMap>) {
    return u.Flat(live);
  } else {
    return u.Nested(live);
  }
}

template <class Ref>
void CheckJoinsAgainstReference(std::uint64_t seed, int inner_keys) {
  std::mt19937_64 rng(seed);
  std::map<JoinPath, int> paths;
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE(testing::Message() << "seed " << seed << " round " << round);
    constexpr std::array<int, 5> kOuterKeys = {4, 8, 12, 40, 80};
    const int outer_keys = kOuterKeys[static_cast<std::size_t>(round) % kOuterKeys.size()];
    const Universe u(rng, 4, 30, outer_keys, inner_keys);

    // Our state is a full replica state; theirs is a delta in half of the
    // rounds and a full state in the others.
    std::vector<Dot> live;
    CausalContext c;
    u.FullState(rng, &live, &c);
    std::vector<Dot> live2;
    CausalContext c2;
    if (round % 2 == 0) {
      u.Delta(rng, live, &live2, &c2);
    } else {
      u.FullState(rng, &live2, &c2);
    }
    const Ref ref = MakeRef<Ref>(u, live);
    const Ref ref2 = MakeRef<Ref>(u, live2);
    const Ref expected = RefJoin(ref, c, ref2, c2);

    auto s = FromRef(ref, rng);
    ASSERT_EQ(ToRef(s), ref);
    ++paths[PathOf(s, c2)];
    JoinStore(s, c, FromRef(ref2, rng), c2);
    ASSERT_EQ(ToRef(s), expected);
    ASSERT_TRUE(IndexesConsistent(s, outer_keys, u.dots()));

    // The other direction (a small map absorbing a large one, in the delta
    // rounds) must give the same store.
    auto reverse = FromRef(ref2, rng);
    ++paths[PathOf(reverse, c)];
    JoinStore(reverse, c2, FromRef(ref, rng), c);
    ASSERT_EQ(ToRef(reverse), expected);
    ASSERT_EQ(reverse, s);
    ASSERT_TRUE(IndexesConsistent(reverse, outer_keys, u.dots()));

    // The joined map keeps working: a further delta on top of it.
    std::vector<Dot> live_now;
    s.ForEachDot([&](const Dot& d) { live_now.push_back(d); });
    std::vector<Dot> live3;
    CausalContext c3;
    u.Delta(rng, live_now, &live3, &c3);
    CausalContext c_now = c;
    c_now.Join(c2);
    const Ref ref3 = MakeRef<Ref>(u, live3);
    JoinStore(s, c_now, FromRef(ref3, rng), c3);
    ASSERT_EQ(ToRef(s), RefJoin(expected, c_now, ref3, c3));
    ASSERT_TRUE(IndexesConsistent(s, outer_keys, u.dots()));
  }
  // Every path was exercised, many times (about 90 to 300 of 600 joins each).
  std::cout << "[  PATHS   ] unindexed " << paths[JoinPath::kUnindexed] << ", by context "
            << paths[JoinPath::kByContext] << ", scan " << paths[JoinPath::kScan] << "\n";
  EXPECT_GE(paths[JoinPath::kUnindexed], 50);
  EXPECT_GE(paths[JoinPath::kByContext], 50);
  EXPECT_GE(paths[JoinPath::kScan], 50);
}

TEST(DotMapJoinTest, SetMapAgreesWithReferenceOnEveryPath) {
  CheckJoinsAgainstReference<RefSetMap>(TestSeed(1234), 1);
}

TEST(DotMapJoinTest, NestedMapAgreesWithReferenceOnEveryPath) {
  // 3 inner keys: small inner maps; 20: inner maps indexed as well.
  const std::uint64_t seed = TestSeed(4321);
  CheckJoinsAgainstReference<RefNested>(seed, 3);
  CheckJoinsAgainstReference<RefNested>(seed + 1, 20);
}

// The dot index stores 32 bits of a replica's hash, not the replica; two
// replicas whose tags collide must still resolve to their own entries.
TEST(DotMapTest, DotIndexResolvesReplicasWithCollidingTags) {
  std::unordered_map<std::uint32_t, std::uint64_t> seen;
  std::uint64_t r1 = 0, r2 = 0;
  for (std::uint64_t r = 1; r2 == 0; ++r) {
    const auto tag = static_cast<std::uint32_t>(internal::Mix64(r));
    const auto [it, fresh] = seen.emplace(tag, r);
    if (!fresh) {
      r1 = it->second;
      r2 = r;
    }
  }
  const Dot d1{ReplicaId{r1}, 7}, d2{ReplicaId{r2}, 7};
  SetMap m;
  for (int k = 0; k < 20; ++k)
    m.Insert(k + 100, DotSet(Dot{kA, static_cast<std::uint64_t>(k) + 1}));
  m.Insert(1, DotSet(d1));
  m.Insert(2, DotSet(d2));
  EXPECT_EQ(KeyOfDot(m, d1), 1);
  EXPECT_EQ(KeyOfDot(m, d2), 2);
  EXPECT_TRUE(m.Erase(1));
  EXPECT_EQ(m.FindByDot(d1), nullptr);
  EXPECT_EQ(KeyOfDot(m, d2), 2);
  m.Insert(1, DotSet(d1));
  EXPECT_TRUE(m.Erase(2));  // moves the last entry (key 1) into the hole
  EXPECT_EQ(KeyOfDot(m, d1), 1);
  EXPECT_EQ(m.FindByDot(d2), nullptr);
}

// ---------------------------------------------------------------------------
// Random Modify / Insert / Erase workload: Find and FindByDot stay exact.

TEST(DotMapTest, IndexesStayConsistentUnderRandomOperations) {
  const std::uint64_t seed = TestSeed(777);
  std::mt19937_64 rng(seed);
  constexpr int kKeys = 40;
  SetMap m;
  std::map<int, RefSet> model;
  std::vector<Dot> issued;
  std::array<std::uint64_t, 4> next = {0, 0, 0, 0};
  const auto fresh = [&] {
    const std::size_t r = rng() % 4;
    const Dot d{ReplicaId{r + 1}, ++next[r]};
    issued.push_back(d);
    return d;
  };
  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(testing::Message() << "seed " << seed << " step " << step);
    const int key = static_cast<int>(rng() % kKeys);
    const auto op = rng() % 9;
    switch (op) {
      case 0:
      case 1: {  // add a dot (creating the key if absent)
        const Dot d = fresh();
        m.Modify(Key(key), [&](DotSet& s) { s.Insert(d); });
        model[key].insert(d);
        break;
      }
      case 2: {  // replace every dot by a new one (an OR-set re-add)
        const Dot d = fresh();
        m.Modify(Key(key), [&](DotSet& s) { s = DotSet(d); });
        model[key] = {d};
        break;
      }
      case 3: {  // drop one dot; the last one removes the key
        if (model.count(key) == 0) break;
        const Dot victim = *model[key].begin();
        m.Modify(Key(key), [&](DotSet& s) { s.Filter([&](const Dot& d) { return d != victim; }); });
        model[key].erase(victim);
        if (model[key].empty()) model.erase(key);
        break;
      }
      case 4: {
        ASSERT_EQ(m.Erase(key), model.erase(key) == 1);
        break;
      }
      case 5: {  // Insert of an absent key with several dots
        if (model.count(key) == 1) break;
        const std::vector<Dot> dots = {fresh(), fresh(), fresh()};
        m.Insert(key, DotSet::FromDots(dots));
        model[key] = RefSet(dots.begin(), dots.end());
        break;
      }
      case 6: {  // a mutator that throws after looking: no change
        EXPECT_THROW(m.Modify(Key(key),
                              [](DotSet& s) {
                                if (s.size() < 1000) throw std::runtime_error("no");
                              }),
                     std::runtime_error);
        break;
      }
      case 7: {  // work on a copy from now on: indexes are copied verbatim
        SetMap copy = m;
        m = std::move(copy);
        break;
      }
      default: {  // a no-op Modify of an absent key does not create it
        if (model.count(key) == 1) break;
        m.Modify(Key(key), [](DotSet&) {});
        break;
      }
    }
    ASSERT_EQ(ToRef(m), model);
    if (step % 5 == 0) {
      ASSERT_TRUE(IndexesConsistent(m, kKeys, issued));
    }
    // Every issued dot is found exactly where the model has it.
    if (step % 50 == 0) {
      for (const Dot& d : issued) {
        const auto* e = m.FindByDot(d);
        int owner = -1;
        for (const auto& [k, dots] : model) {
          if (dots.count(d) == 1) owner = k;
        }
        ASSERT_EQ(e == nullptr ? -1 : e->key.value(), owner) << d;
      }
    }
    if (step == 2000) {  // start over from empty once, through clear()
      m.clear();
      model.clear();
    }
  }
}

}  // namespace
}  // namespace converge::crdt
