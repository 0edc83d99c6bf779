// The `seen` overloads of the observed-remove mutators: removes, sets,
// disables and writes that act on what a client read (at any replica), not
// on what the replica running them holds (docs/semantics.md, "Client causal
// contexts"). Each case is one of the three orders a client's context can
// have to the replica's state: older, equal, newer — including dots the
// replica has not received.

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "crdt/crdt.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kN1{1};
constexpr ReplicaId kN2{2};
constexpr ReplicaId kN3{3};

using Cart = OrMap<std::string, CausalCounter>;

std::map<std::string, std::uint64_t> Lines(const Cart& cart) {
  std::map<std::string, std::uint64_t> lines;
  cart.ForEach([&](const std::string& sku, const CausalCounter& q) { lines[sku] = q.Value(); });
  return lines;
}

template <class T>
T Joined(T a, const T& b) {
  a.Join(b);
  return a;
}

TEST(CausalContextMinusTest, KeepsTheDotsTheOtherDoesNotHold) {
  const CausalContext a = CausalContext::FromParts(
      std::vector<CausalContext::Entry>{{kN1, 5}, {kN2, 2}}, std::vector<Dot>{{kN3, 7}});
  const CausalContext b = CausalContext::FromParts(std::vector<CausalContext::Entry>{{kN1, 3}},
                                                   std::vector<Dot>{{kN1, 5}, {kN3, 7}});
  const CausalContext d = a.Minus(b);
  EXPECT_EQ(d, CausalContext::FromParts(std::vector<CausalContext::Entry>{{kN2, 2}},
                                        std::vector<Dot>{{kN1, 4}}));
  EXPECT_TRUE(b.Minus(a).Includes(CausalContext{}));
  EXPECT_TRUE(b.Minus(a).empty());
  EXPECT_TRUE(a.Minus(a).empty());
  EXPECT_EQ(a.Minus(CausalContext{}), a);
}

TEST(CausalContextMinusTest, WalksOnlyBeyondTheOthersVector) {
  // A vector entry of 2^40 minus one of 2^40 - 1: one dot, found at once.
  const std::uint64_t big = std::uint64_t{1} << 40;
  const CausalContext a =
      CausalContext::FromParts(std::vector<CausalContext::Entry>{{kN1, big}}, {});
  const CausalContext b =
      CausalContext::FromParts(std::vector<CausalContext::Entry>{{kN1, big - 1}}, {});
  EXPECT_EQ(a.Minus(b), CausalContext::FromParts({}, std::vector<Dot>{{kN1, big}}));
}

// The Dynamo cart anomaly: a line deleted at a replica that had not received
// it comes back after the heal — unless the delete carries what the client
// saw.
TEST(SeenOpsTest, ADeleteAtAReplicaThatNeverSawTheLineKeepsItDeleted) {
  Cart n1, n2;
  n2.Join(n1.Update("apple", [](CausalCounter& q) { return q.Increment(kN1, 1); }));
  const Cart pear = n1.Update("pear", [](CausalCounter& q) { return q.Increment(kN1, 1); });
  // The client reads n1, then deletes "pear" at n2 (cut off from n1).
  const CausalContext seen = n1.DotsOf("pear");
  ASSERT_FALSE(n2.Contains("pear"));
  const Cart removal = n2.Remove("pear", seen);
  EXPECT_TRUE(removal.context().Includes(seen)) << "the delta carries the unreceived dots";
  EXPECT_FALSE(removal.IsBottom());
  // Heal, in both orders.
  n2.Join(pear);
  n1.Join(removal);
  EXPECT_EQ(Lines(n1), (std::map<std::string, std::uint64_t>{{"apple", 1}}));
  EXPECT_EQ(n1, n2);

  // Without the client's context, the same delete removes nothing there.
  Cart m1, m2;
  m2.Join(m1.Update("apple", [](CausalCounter& q) { return q.Increment(kN1, 1); }));
  const Cart pear2 = m1.Update("pear", [](CausalCounter& q) { return q.Increment(kN1, 1); });
  const Cart blind = m2.Remove("pear");
  EXPECT_TRUE(blind.IsBottom());
  m2.Join(pear2);
  m1.Join(blind);
  EXPECT_EQ(Lines(m1), (std::map<std::string, std::uint64_t>{{"apple", 1}, {"pear", 1}}));
}

// The converse: a delete at a replica that holds an addition the client never
// saw removes only what the client saw.
TEST(SeenOpsTest, ADeleteKeepsAConcurrentAdditionTheClientDidNotSee) {
  Cart n1, n2;
  const Cart first = n1.Update("pear", [](CausalCounter& q) { return q.Increment(kN1, 1); });
  n2.Join(first);
  const CausalContext seen = n1.DotsOf("pear");  // the client reads n1
  const Cart unseen = n2.Update("pear", [](CausalCounter& q) { return q.Increment(kN2, 3); });
  const Cart removal = n2.Remove("pear", seen);
  EXPECT_EQ(Lines(n2), (std::map<std::string, std::uint64_t>{{"pear", 3}}));
  n1.Join(unseen);
  n1.Join(removal);
  EXPECT_EQ(n1, n2);
  // The same delete without a context removes the unseen addition too.
  Cart m2;
  m2.Join(first);
  (void)m2.Update("pear", [](CausalCounter& q) { return q.Increment(kN2, 3); });
  (void)m2.Remove("pear");
  EXPECT_FALSE(m2.Contains("pear"));
}

TEST(SeenOpsTest, AnOlderContextLeavesALaterReAddAlone) {
  OrSet<std::string> n1, n2;
  n2.Join(n1.Add(kN1, "pear"));
  const CausalContext old = n1.DotsOf("pear");
  n2.Join(n1.Add(kN1, "pear"));  // re-added since the client read
  const OrSet<std::string> removal = n2.Remove("pear", old);
  EXPECT_TRUE(n2.Contains("pear"));
  n1.Join(removal);
  EXPECT_EQ(n1, n2);
}

TEST(SeenOpsTest, AnEqualContextIsTheReplicasOwnRemove) {
  OrSet<std::string> a, b;
  (void)a.Add(kN1, "x");
  (void)a.Add(kN2, "x");
  (void)a.Add(kN1, "y");
  b = a;
  const OrSet<std::string> own = a.Remove("x");
  const OrSet<std::string> seen = b.Remove("x", b.DotsOf("x"));
  EXPECT_EQ(a, b);
  EXPECT_EQ(own, seen);
}

TEST(SeenOpsTest, DotsOfOtherElementsTheReplicaHasNotReceivedAreLeftAlone) {
  OrSet<std::string> n1, n2;
  const OrSet<std::string> banana = n1.Add(kN1, "banana");
  const OrSet<std::string> pear = n1.Add(kN1, "pear");
  const OrSet<std::string> removal = n2.Remove("pear", n1.DotsOf("pear"));
  const CausalContext banana_dots = n1.DotsOf("banana");
  banana_dots.ForEachDot([&](const Dot& d) { EXPECT_FALSE(removal.context().Contains(d)); });
  n2.Join(banana);
  n2.Join(pear);
  n1.Join(removal);
  EXPECT_EQ(n1.Elements(), std::vector<std::string>{"banana"});
  EXPECT_EQ(n1, n2);
}

TEST(SeenOpsTest, AnEmptyContextChangesNothingAndReturnsBottom) {
  OrSet<std::string> s;
  (void)s.Add(kN1, "x");
  const OrSet<std::string> before = s;
  EXPECT_TRUE(s.Remove("x", CausalContext{}).IsBottom());
  EXPECT_TRUE(s.Remove("absent", CausalContext{}).IsBottom());
  EXPECT_TRUE(s.Clear(CausalContext{}).IsBottom());
  EXPECT_EQ(s, before);
}

TEST(SeenOpsTest, ClearingWithAContextRemovesWhatItSawEverywhere) {
  Cart n1, n2;
  const Cart a = n1.Update("apple", [](CausalCounter& q) { return q.Increment(kN1, 1); });
  const Cart b = n1.Update("pear", [](CausalCounter& q) { return q.Increment(kN1, 2); });
  const CausalContext seen = n1.LiveDots();
  const Cart unseen = n2.Update("fig", [](CausalCounter& q) { return q.Increment(kN2, 1); });
  const Cart removal = n2.Clear(seen);
  for (const Cart* d : {&a, &b, &removal}) n2.Join(*d);
  for (const Cart* d : {&unseen, &removal}) n1.Join(*d);
  EXPECT_EQ(Lines(n1), (std::map<std::string, std::uint64_t>{{"fig", 1}}));
  EXPECT_EQ(n1, n2);
}

// PUT with a context: q plus the additions the client did not see, also at a
// replica that has not received the line at all.
TEST(SeenOpsTest, SettingALineWithAContextKeepsOnlyTheUnseenAdditions) {
  Cart n1, n2, n3;
  const Cart first = n1.Update("pear", [](CausalCounter& q) { return q.Increment(kN1, 2); });
  const CausalContext seen = n1.DotsOf("pear");
  const Cart unseen = n3.Update("pear", [](CausalCounter& q) { return q.Increment(kN3, 4); });
  n2.Join(unseen);
  const Cart set = n2.Update("pear", [&](CausalCounter& q) { return q.Set(kN2, 5, seen); });
  EXPECT_EQ(Lines(n2), (std::map<std::string, std::uint64_t>{{"pear", 9}}));
  n2.Join(first);  // arrives after the set: already removed
  EXPECT_EQ(Lines(n2), (std::map<std::string, std::uint64_t>{{"pear", 9}}));
  for (const Cart* d : {&unseen, &set}) n1.Join(*d);
  for (const Cart* d : {&first, &set}) n3.Join(*d);
  EXPECT_EQ(n1, n2);
  EXPECT_EQ(n3, n2);
}

TEST(SeenOpsTest, CounterFlagAndRegisterAlone) {
  CausalCounter c1, c2;
  const CausalCounter inc = c1.Increment(kN1, 3);
  const CausalCounter reset = c2.Reset(c1.LiveDots());
  (void)c2.Increment(kN2, 1);
  c2.Join(inc);
  EXPECT_EQ(c2.Value(), 1u);
  c1.Join(reset);
  EXPECT_EQ(c1.Value(), 0u);

  EwFlag f1, f2;
  const EwFlag on = f1.Enable(kN1);
  const EwFlag off = f2.Disable(f1.LiveDots());
  f2.Join(on);
  EXPECT_FALSE(f2.Value());
  f1.Join(off);
  EXPECT_EQ(f1, f2);

  MvRegister<std::string> r1, r2, r3;
  const MvRegister<std::string> w1 = r1.Assign(kN1, "a");
  const MvRegister<std::string> w3 = r3.Assign(kN3, "c");  // concurrent, unseen
  const MvRegister<std::string> w2 = r2.Assign(kN2, "b", r1.LiveDots());
  r2.Join(w1);
  r2.Join(w3);
  EXPECT_EQ(r2.Values(), (std::vector<std::string>{"b", "c"}));
  r1.Join(w2);
  r1.Join(w3);
  EXPECT_EQ(r1, r2);
}

TEST(SeenOpsTest, ASetWithAContextThatWouldOverflowChangesNothing) {
  CausalCounter c;
  (void)c.Increment(kN1, 1);
  const CausalContext seen = c.LiveDots();
  (void)c.Increment(kN2, std::numeric_limits<std::uint64_t>::max() - 1);  // unseen
  const CausalCounter before = c;
  EXPECT_THROW((void)c.Set(kN3, 2, seen), CounterOverflow);
  EXPECT_EQ(c, before);
  EXPECT_EQ(c.Set(kN3, 1, seen).store().size(), 1u);  // max - 1 + 1 fits
  EXPECT_EQ(c.Value(), std::numeric_limits<std::uint64_t>::max());
}

TEST(SeenOpsTest, NestedMapsRemoveAnInnerKeyAsSeen) {
  using Inner = OrMap<int, EwFlag>;
  OrMap<int, Inner> n1, n2;
  const auto on =
      n1.Update(1, [](Inner& in) { return in.Update(7, [](EwFlag& f) { return f.Enable(kN1); }); });
  const CausalContext seen = n1.Get(1)->DotsOf(7);
  const auto removal = n2.Update(1, [&](Inner& in) { return in.Remove(7, seen); });
  n2.Join(on);
  n1.Join(removal);
  EXPECT_FALSE(n1.Contains(1));
  EXPECT_EQ(n1, n2);
}

// A large map (indexed) removing a key whose dots it has not received keeps
// its dot index exact: every later remove still finds its dots.
TEST(SeenOpsTest, IndexedMapsStayExact) {
  Cart n1, n2;
  std::vector<Cart> deltas;
  for (int i = 0; i < 40; ++i) {
    deltas.push_back(
        n1.Update("sku" + std::to_string(i), [](CausalCounter& q) { return q.Increment(kN1, 1); }));
  }
  for (int i = 0; i < 20; ++i) n2.Join(deltas[static_cast<std::size_t>(i)]);
  for (int i = 20; i < 40; i += 2) {
    const std::string sku = "sku" + std::to_string(i);
    (void)n2.Update(sku, [&](CausalCounter& q) { return q.Set(kN2, 2, n1.DotsOf(sku)); });
  }
  for (const Cart& d : deltas) n2.Join(d);
  for (int i = 0; i < 40; ++i) (void)n2.Remove("sku" + std::to_string(i));
  EXPECT_TRUE(n2.empty());
  Cart rebuilt;
  rebuilt.Join(n2);
  EXPECT_EQ(rebuilt, n2);
}

}  // namespace
}  // namespace converge::crdt

namespace converge::crdt {
namespace {

// Two replica ids whose dots share a dot-index slot tag (32 bits of their
// hash): found by birthday search.
std::pair<ReplicaId, ReplicaId> TagTwins() {
  std::map<std::uint32_t, std::uint64_t> seen;
  for (std::uint64_t id = 100;; ++id) {
    const auto tag = static_cast<std::uint32_t>(internal::Mix64(id));
    const auto [it, fresh] = seen.emplace(tag, id);
    if (!fresh) return {ReplicaId{it->second}, ReplicaId{id}};
  }
}

// A set with a context naming a dot the replica never received, whose slot
// in the dot index looks exactly like a live dot's of the same line: the
// live dot must stay indexed, so a later remove of it still finds it.
TEST(SeenOpsTest, AnUnreceivedDotThatLooksLikeALiveOneKeepsTheIndexExact) {
  const auto [a, b] = TagTwins();
  ASSERT_NE(a, b);
  const ReplicaId c{7};
  DotMap<std::string, DotFun<std::uint64_t>> store;
  std::vector<Dot> cloud = {{a, 5}};
  store.Insert("x", DotFun<std::uint64_t>(Dot{a, 5}, 1));
  for (std::uint64_t k = 1; k <= 11; ++k) {
    store.Insert("k" + std::to_string(k), DotFun<std::uint64_t>(Dot{c, k}, 1));
  }
  Cart cart =
      Cart::FromParts(std::move(store),
                      CausalContext::FromParts(std::vector<CausalContext::Entry>{{c, 11}}, cloud));
  const CausalContext seen = CausalContext::FromParts({}, std::vector<Dot>{{b, 5}});
  (void)cart.Update("x", [&](CausalCounter& q) { return q.Set(c, 2, seen); });
  EXPECT_EQ(cart.Get("x")->Value(), 3u);  // (a, 5) was not seen: it stays
  Cart removal;                           // elsewhere, (a, 5) was removed
  removal.Join(Cart::FromParts({}, CausalContext::FromParts({}, std::vector<Dot>{{a, 5}})));
  cart.Join(removal);
  EXPECT_EQ(cart.Get("x")->Value(), 2u);
  Cart rebuilt;
  rebuilt.Join(cart);
  EXPECT_EQ(rebuilt, cart);
}

}  // namespace
}  // namespace converge::crdt
