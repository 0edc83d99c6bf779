#include "crdt/or_map.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/causal_counter.h"
#include "crdt/checked.h"
#include "crdt/ew_flag.h"
#include "crdt/replica_id.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kA{1};
constexpr ReplicaId kB{2};
constexpr ReplicaId kC{3};

using Cart = OrMap<std::string, CausalCounter>;
using Flags = OrMap<std::string, EwFlag>;
using Settings = OrMap<std::string, Flags>;
using Strings = std::vector<std::string>;

std::uint64_t TestSeed(std::uint64_t fallback) {
  const char* env = std::getenv("CONVERGE_TEST_SEED");  // NOLINT(concurrency-mt-unsafe)
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
  std::cout << "[   SEED   ] CONVERGE_TEST_SEED=" << seed << "\n";
  return seed;
}

template <class M>
M Joined(M a, const M& b) {
  a.Join(b);
  return a;
}

// Adds n of `item` to the cart, as replica r; returns the delta.
Cart AddItem(Cart& cart, ReplicaId r, const std::string& item, std::uint64_t n) {
  return cart.Update(item, [&](CausalCounter& q) { return q.Increment(r, n); });
}

// The quantity of `item`, 0 when absent.
std::uint64_t Quantity(const Cart& cart, const std::string& item) {
  const std::optional<CausalCounter> q = cart.Get(item);
  return q ? q->Value() : 0;
}

Settings Enable(Settings& s, ReplicaId r, const std::string& user, const std::string& flag) {
  return s.Update(user, [&](Flags& flags) {
    return flags.Update(flag, [&](EwFlag& f) { return f.Enable(r); });
  });
}

Settings Disable(Settings& s, const std::string& user, const std::string& flag) {
  return s.Update(user, [&](Flags& flags) {
    return flags.Update(flag, [&](EwFlag& f) { return f.Disable(); });
  });
}

bool FlagOn(const Settings& s, const std::string& user, const std::string& flag) {
  const std::optional<Flags> flags = s.Get(user);
  if (!flags) return false;
  const std::optional<EwFlag> f = flags->Get(flag);
  return f && f->Value();
}

// ---------------------------------------------------------------------------
// OrMap<std::string, CausalCounter>

TEST(OrMapTest, DefaultIsEmptyBottom) {
  const Cart cart;
  EXPECT_TRUE(cart.IsBottom());
  EXPECT_TRUE(cart.empty());
  EXPECT_EQ(cart.size(), 0u);
  EXPECT_TRUE(cart.Keys().empty());
  EXPECT_EQ(cart.Get("apple"), std::nullopt);
  EXPECT_FALSE(cart.Contains("apple"));
}

TEST(OrMapTest, UpdateAppliesTheValuesMutator) {
  Cart cart;
  AddItem(cart, kA, "apple", 2);
  AddItem(cart, kA, "apple", 3);
  AddItem(cart, kB, "pear", 1);
  EXPECT_TRUE(cart.Contains("apple"));
  EXPECT_EQ(cart.size(), 2u);
  EXPECT_EQ(Quantity(cart, "apple"), 5u);
  EXPECT_EQ(Quantity(cart, "pear"), 1u);
  // The dots of the values come from the map's one context.
  EXPECT_EQ(cart.context().VectorCounter(kA), 2u);
  EXPECT_EQ(cart.context().VectorCounter(kB), 1u);
  const std::optional<CausalCounter> apple = cart.Get("apple");
  ASSERT_TRUE(apple.has_value());
  EXPECT_EQ(apple->context(), cart.context());
  EXPECT_EQ(apple->store().size(), 2u);
}

TEST(OrMapTest, UpdateDeltaHoldsOnlyThatKeysChange) {
  Cart cart;
  AddItem(cart, kA, "pear", 1);
  AddItem(cart, kA, "apple", 2);
  const Cart delta = AddItem(cart, kA, "apple", 3);
  EXPECT_EQ(delta.Keys(), Strings{"apple"});
  EXPECT_EQ(Quantity(delta, "apple"), 3u);
  EXPECT_EQ(delta.context().DotCount(), 1u);
  Cart replica;
  AddItem(replica, kA, "pear", 1);
  AddItem(replica, kA, "apple", 2);
  replica.Join(delta);
  EXPECT_EQ(replica, cart);
}

TEST(OrMapTest, KeysAreSorted) {
  Cart cart;
  for (const char* item : {"pear", "apple", "fig", "kiwi", "banana"}) AddItem(cart, kA, item, 1);
  EXPECT_EQ(cart.Keys(), (Strings{"apple", "banana", "fig", "kiwi", "pear"}));
  Strings visited;
  cart.ForEach([&](const std::string& key, const CausalCounter& q) {
    visited.push_back(key);
    EXPECT_EQ(q.Value(), 1u);
  });
  EXPECT_EQ(visited.size(), 5u);
}

TEST(OrMapTest, RemoveDropsTheKeyHereAndThroughItsDelta) {
  Cart a;
  AddItem(a, kA, "apple", 2);
  AddItem(a, kA, "pear", 1);
  Cart b = a;
  const Cart delta = a.Remove("apple");
  EXPECT_FALSE(a.Contains("apple"));
  EXPECT_EQ(a.Get("apple"), std::nullopt);
  EXPECT_TRUE(delta.empty());
  EXPECT_TRUE(delta.context().Contains(Dot{kA, 1}));
  b.Join(delta);
  EXPECT_EQ(b.Keys(), Strings{"pear"});
  EXPECT_EQ(b, a);
}

TEST(OrMapTest, RemoveOfAnAbsentKeyReturnsBottom) {
  Cart cart;
  EXPECT_TRUE(cart.Remove("apple").IsBottom());
  AddItem(cart, kA, "pear", 1);
  const Cart before = cart;
  EXPECT_TRUE(cart.Remove("apple").IsBottom());
  EXPECT_EQ(cart, before);
}

TEST(OrMapTest, UpdateLeavingTheValueEmptyRemovesTheKey) {
  Cart a;
  AddItem(a, kA, "apple", 2);
  Cart b = a;
  const Cart delta = a.Update("apple", [](CausalCounter& q) { return q.Reset(); });
  EXPECT_FALSE(a.Contains("apple"));
  b.Join(delta);
  EXPECT_FALSE(b.Contains("apple"));
  // Updating an absent key with a no-op creates nothing.
  const Cart none = a.Update("fig", [](CausalCounter& q) { return q.Increment(kA, 0); });
  EXPECT_FALSE(a.Contains("fig"));
  EXPECT_TRUE(none.IsBottom());
}

TEST(OrMapTest, UpdateThatThrowsLeavesTheMapUnchanged) {
  Cart cart;
  AddItem(cart, kA, "apple", std::numeric_limits<std::uint64_t>::max());
  AddItem(cart, kA, "pear", 1);
  const Cart before = cart;
  EXPECT_THROW(AddItem(cart, kB, "apple", 1), CounterOverflow);
  EXPECT_EQ(cart, before);
  EXPECT_THROW(
      cart.Update("fig",
                  [](CausalCounter&) -> CausalCounter { throw std::runtime_error("refused"); }),
      std::runtime_error);
  EXPECT_EQ(cart, before);
  EXPECT_FALSE(cart.Contains("fig"));
  EXPECT_EQ(Quantity(cart, "apple"), std::numeric_limits<std::uint64_t>::max());
  // The map still works.
  AddItem(cart, kB, "fig", 1);
  EXPECT_EQ(Quantity(cart, "fig"), 1u);
  EXPECT_EQ(cart.context().VectorCounter(kB), 1u);
}

TEST(OrMapTest, ClearRemovesEveryObservedKey) {
  Cart a;
  AddItem(a, kA, "apple", 2);
  AddItem(a, kA, "pear", 1);
  Cart b = a;
  const Cart cleared = a.Clear();
  const Cart concurrent = AddItem(b, kB, "pear", 4);
  EXPECT_TRUE(a.empty());
  a.Join(concurrent);
  b.Join(cleared);
  EXPECT_EQ(a.Keys(), Strings{"pear"});
  EXPECT_EQ(Quantity(a, "pear"), 4u);
  EXPECT_EQ(a, b);
}

// The cart cases of docs/semantics.md.

TEST(OrMapTest, CartConcurrentAddAndRemoveOfTheSameItemAddWins) {
  Cart a;
  AddItem(a, kA, "apple", 2);
  Cart b = a;  // B sees apple 2
  const Cart removal = a.Remove("apple");
  const Cart addition = AddItem(b, kB, "apple", 1);  // concurrent with the remove
  a.Join(addition);
  b.Join(removal);
  EXPECT_TRUE(a.Contains("apple"));
  EXPECT_EQ(Quantity(a, "apple"), 1u);  // the concurrent add; the removed 2 is gone
  EXPECT_EQ(Quantity(b, "apple"), 1u);
  EXPECT_EQ(a, b);
}

TEST(OrMapTest, CartRemoveAfterObservingStaysRemoved) {
  Cart a;
  const Cart addition = AddItem(a, kA, "apple", 2);
  Cart b;
  b.Join(addition);
  const Cart removal = b.Remove("apple");
  a.Join(removal);
  a.Join(addition);  // redelivered
  b.Join(a);
  EXPECT_FALSE(a.Contains("apple"));
  EXPECT_FALSE(b.Contains("apple"));
  EXPECT_EQ(a, b);
}

TEST(OrMapTest, CartRemoveDeltaJoinedBeforeTheAddDeltaAtAThirdReplicaStaysRemoved) {
  Cart a;
  const Cart addition = AddItem(a, kA, "apple", 2);
  Cart b;
  b.Join(addition);
  const Cart removal = b.Remove("apple");
  Cart c;
  c.Join(removal);
  c.Join(addition);
  EXPECT_FALSE(c.Contains("apple"));
  EXPECT_EQ(Quantity(c, "apple"), 0u);
  c.Join(a);
  EXPECT_FALSE(c.Contains("apple"));
  EXPECT_EQ(c, Joined(b, a));
}

TEST(OrMapTest, CartQuantityIncrementsOnTwoReplicasSum) {
  Cart a;
  Cart b;
  const Cart from_a = AddItem(a, kA, "apple", 2);
  const Cart from_b = AddItem(b, kB, "apple", 3);  // concurrently
  a.Join(from_b);
  b.Join(from_a);
  EXPECT_EQ(Quantity(a, "apple"), 5u);
  EXPECT_EQ(Quantity(b, "apple"), 5u);
  EXPECT_EQ(a, b);
  // And on top of a quantity both had seen.
  const Cart more_a = AddItem(a, kA, "apple", 1);
  const Cart more_b = AddItem(b, kB, "apple", 4);
  a.Join(more_b);
  b.Join(more_a);
  EXPECT_EQ(Quantity(a, "apple"), 10u);
  EXPECT_EQ(a, b);
}

TEST(OrMapTest, CartRemoveConcurrentWithIncrementKeepsOnlyThatIncrement) {
  Cart a;
  const Cart added = AddItem(a, kA, "apple", 2);
  Cart b;
  b.Join(added);  // B sees apple 2
  const Cart removal = a.Remove("apple");
  const Cart increment = AddItem(b, kB, "apple", 3);  // concurrent with the remove
  a.Join(increment);
  b.Join(removal);
  Cart c;  // a third replica, deltas in the other order
  c.Join(increment);
  c.Join(removal);
  c.Join(added);
  for (const Cart* cart : {&a, &b, &c}) {
    EXPECT_TRUE(cart->Contains("apple"));
    EXPECT_EQ(Quantity(*cart, "apple"), 3u);
  }
  EXPECT_EQ(a, b);
  EXPECT_EQ(b, c);
}

TEST(OrMapTest, CartRemoveConcurrentWithIncrementByAReplicaThatHadAddedBefore) {
  // The sequence of docs/semantics.md: B had itself contributed to the line
  // before the remove observed it.
  Cart b;
  const Cart b_first = AddItem(b, kB, "apple", 2);  // (B,1)=2
  Cart a;
  a.Join(b_first);
  const Cart a_first = AddItem(a, kA, "apple", 1);  // (A,1)=1
  b.Join(a_first);
  ASSERT_EQ(Quantity(b, "apple"), 3u);
  const Cart removal = a.Remove("apple");             // observes (B,1) and (A,1)
  const Cart increment = AddItem(b, kB, "apple", 3);  // concurrently: (B,2)=3
  a.Join(increment);
  b.Join(removal);
  EXPECT_EQ(Quantity(a, "apple"), 3u);  // B's earlier 2 does not come back
  EXPECT_EQ(Quantity(b, "apple"), 3u);
  EXPECT_EQ(a, b);
  // A third replica receiving everything, the remove first.
  Cart c;
  c.Join(removal);
  c.Join(increment);
  c.Join(a_first);
  c.Join(b_first);
  EXPECT_EQ(Quantity(c, "apple"), 3u);
}

TEST(OrMapTest, CartRemoveConcurrentWithIncrementsItHadNotSeenKeepsThemAll) {
  Cart a;
  AddItem(a, kA, "apple", 2);
  Cart b = a;
  AddItem(b, kB, "apple", 4);              // not seen by the remove
  const Cart removal = a.Remove("apple");  // observed A's 2 only
  AddItem(b, kB, "apple", 3);
  a.Join(b);
  b.Join(removal);
  EXPECT_EQ(Quantity(a, "apple"), 7u);
  EXPECT_EQ(a, b);
}

TEST(OrMapTest, CartOnManyItemsConvergesByDeltasAndByStates) {
  Cart a;
  for (int i = 0; i < 30; ++i) AddItem(a, kA, "item" + std::to_string(i), 1);
  Cart b = a;
  std::vector<Cart> a_deltas;
  std::vector<Cart> b_deltas;
  for (int i = 0; i < 30; i += 3) a_deltas.push_back(a.Remove("item" + std::to_string(i)));
  for (int i = 0; i < 30; i += 2) b_deltas.push_back(AddItem(b, kB, "item" + std::to_string(i), 5));
  b_deltas.push_back(b.Remove("item1"));

  Cart by_state = Joined(a, b);
  Cart a_by_delta = a;
  for (const Cart& d : b_deltas) a_by_delta.Join(d);
  Cart b_by_delta = b;
  for (const Cart& d : a_deltas) b_by_delta.Join(d);
  EXPECT_EQ(a_by_delta, by_state);
  EXPECT_EQ(b_by_delta, by_state);
  for (int i = 0; i < 30; ++i) {
    const std::string item = "item" + std::to_string(i);
    std::uint64_t expected = 1;
    if (i % 2 == 0) expected = i % 3 == 0 ? 5 : 6;  // removed by A: only B's 5 stays
    if (i % 2 != 0 && i % 3 == 0) expected = 0;
    if (i == 1) expected = 0;
    EXPECT_EQ(Quantity(by_state, item), expected) << item;
    EXPECT_EQ(by_state.Contains(item), expected > 0) << item;
  }
}

TEST(OrMapTest, ReplicasExchangingDeltasInAnyOrderConverge) {
  const std::uint64_t seed = TestSeed(1618);
  std::mt19937_64 rng(seed);
  constexpr int kReplicas = 3;
  std::vector<Cart> replicas(kReplicas);
  std::vector<Cart> deltas;
  for (int step = 0; step < 500; ++step) {
    const auto r = static_cast<std::size_t>(rng() % kReplicas);
    const std::string item = "item" + std::to_string(rng() % 15);
    const auto op = rng() % 5;
    Cart delta;
    if (op == 0) {
      delta = replicas[r].Remove(item);
    } else if (op == 1) {
      delta =
          replicas[r].Update(item, [&](CausalCounter& q) { return q.Set(ReplicaId{r + 1}, 4); });
    } else {
      delta = AddItem(replicas[r], ReplicaId{r + 1}, item, rng() % 5 + 1);
    }
    Cart again = replicas[r];
    again.Join(delta);
    ASSERT_EQ(again, replicas[r]) << "seed " << seed << " step " << step;
    deltas.push_back(std::move(delta));
    if (rng() % 2 == 0) {
      const auto to = static_cast<std::size_t>(rng() % kReplicas);
      replicas[to].Join(deltas[rng() % deltas.size()]);
    }
  }
  Cart joined_states;
  for (Cart& replica : replicas) {
    std::vector<std::size_t> order(deltas.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (const std::size_t i : order) replica.Join(deltas[i]);
    joined_states.Join(replica);
  }
  for (const Cart& replica : replicas) {
    EXPECT_EQ(replica, replicas[0]) << "seed " << seed;
    EXPECT_EQ(replica, joined_states) << "seed " << seed;
  }
}

// ---------------------------------------------------------------------------
// OrMap<std::string, OrMap<std::string, EwFlag>>

TEST(NestedOrMapTest, UpdateReachesTheInnerValue) {
  Settings s;
  Enable(s, kA, "bob", "dark-mode");
  Enable(s, kA, "alice", "emails");
  Enable(s, kA, "alice", "beta");
  EXPECT_EQ(s.Keys(), (Strings{"alice", "bob"}));
  const std::optional<Flags> alice = s.Get("alice");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->Keys(), (Strings{"beta", "emails"}));
  EXPECT_TRUE(FlagOn(s, "alice", "beta"));
  EXPECT_TRUE(FlagOn(s, "bob", "dark-mode"));
  EXPECT_FALSE(FlagOn(s, "bob", "beta"));
  EXPECT_EQ(s.Get("carol"), std::nullopt);
  EXPECT_EQ(s.context().VectorCounter(kA), 3u);
}

TEST(NestedOrMapTest, DeltaOfAnInnerUpdateCarriesOnlyThatPath) {
  Settings s;
  Enable(s, kA, "alice", "emails");
  Enable(s, kA, "bob", "beta");
  const Settings delta = Enable(s, kA, "alice", "beta");
  EXPECT_EQ(delta.Keys(), Strings{"alice"});
  EXPECT_EQ(delta.Get("alice").value().Keys(), Strings{"beta"});
  Settings replica;
  Enable(replica, kA, "alice", "emails");
  Enable(replica, kA, "bob", "beta");
  replica.Join(delta);
  EXPECT_EQ(replica, s);
}

TEST(NestedOrMapTest, DisablingTheLastFlagRemovesTheOuterKey) {
  Settings a;
  Enable(a, kA, "alice", "beta");
  Enable(a, kA, "bob", "beta");
  Settings b = a;
  const Settings delta = Disable(a, "alice", "beta");
  EXPECT_FALSE(a.Contains("alice"));
  EXPECT_TRUE(a.Contains("bob"));
  b.Join(delta);
  EXPECT_EQ(b, a);
}

TEST(NestedOrMapTest, RemoveOfAnOuterKeyRemovesEverythingObservedUnderIt) {
  Settings a;
  Enable(a, kA, "alice", "beta");
  Enable(a, kA, "alice", "emails");
  Settings b = a;
  const Settings removal = a.Remove("alice");
  EXPECT_TRUE(a.empty());
  b.Join(removal);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(a, b);
}

TEST(NestedOrMapTest, ConcurrentInnerUpdateSurvivesOuterRemove) {
  Settings a;
  Enable(a, kA, "alice", "beta");
  Enable(a, kA, "alice", "emails");
  Settings b = a;
  const Settings removal = a.Remove("alice");
  const Settings update = Enable(b, kB, "alice", "dark-mode");  // concurrent
  const Settings reenable = Enable(b, kB, "alice", "beta");     // concurrent re-enable
  a.Join(update);
  a.Join(reenable);
  b.Join(removal);
  for (const Settings* s : {&a, &b}) {
    EXPECT_EQ(s->Keys(), Strings{"alice"});
    EXPECT_EQ(s->Get("alice").value().Keys(), (Strings{"beta", "dark-mode"}));
    EXPECT_TRUE(FlagOn(*s, "alice", "beta"));
    EXPECT_FALSE(FlagOn(*s, "alice", "emails"));  // observed by the remove
  }
  EXPECT_EQ(a, b);
}

TEST(NestedOrMapTest, ConcurrentEnableWinsOverDisableInside) {
  Settings a;
  Enable(a, kA, "alice", "beta");
  Settings b = a;
  const Settings disable = Disable(a, "alice", "beta");
  const Settings enable = Enable(b, kB, "alice", "beta");
  a.Join(enable);
  b.Join(disable);
  EXPECT_TRUE(FlagOn(a, "alice", "beta"));
  EXPECT_EQ(a, b);
}

TEST(NestedOrMapTest, ManyUsersAndFlagsConvergeByDeltas) {
  Settings a;
  for (int u = 0; u < 12; ++u) {
    for (int f = 0; f < 12; ++f) {
      Enable(a, kA, "user" + std::to_string(u), "flag" + std::to_string(f));
    }
  }
  Settings b = a;
  std::vector<Settings> a_deltas;
  std::vector<Settings> b_deltas;
  for (int u = 0; u < 12; u += 2) a_deltas.push_back(a.Remove("user" + std::to_string(u)));
  for (int u = 0; u < 12; ++u) {
    b_deltas.push_back(Disable(b, "user" + std::to_string(u), "flag0"));
    b_deltas.push_back(Enable(b, kB, "user" + std::to_string(u), "flag1"));
  }
  Settings by_state = Joined(a, b);
  Settings a_by_delta = a;
  for (const Settings& d : b_deltas) a_by_delta.Join(d);
  Settings b_by_delta = b;
  for (const Settings& d : a_deltas) b_by_delta.Join(d);
  EXPECT_EQ(a_by_delta, by_state);
  EXPECT_EQ(b_by_delta, by_state);
  for (int u = 0; u < 12; ++u) {
    const std::string user = "user" + std::to_string(u);
    EXPECT_FALSE(FlagOn(by_state, user, "flag0")) << user;
    EXPECT_TRUE(FlagOn(by_state, user, "flag1")) << user;
    EXPECT_EQ(FlagOn(by_state, user, "flag2"), u % 2 == 1) << user;
    EXPECT_EQ(by_state.Get(user).value().size(), u % 2 == 0 ? 1u : 11u) << user;
  }
}

}  // namespace
}  // namespace converge::crdt
