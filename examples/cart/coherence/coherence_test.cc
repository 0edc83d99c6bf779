// coherence-check's judgement without a cluster: classification of the
// per-node states of one key, the repair plan, the parsing of node answers,
// the report, the scan over fake nodes, and the metrics.

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/or_set.h"
#include "examples/cart/coherence/classify.h"
#include "examples/cart/coherence/metrics.h"
#include "examples/cart/coherence/node_api.h"
#include "examples/cart/coherence/report.h"
#include "examples/cart/coherence/scanner.h"
#include "examples/cart/coherence/text.h"
#include "examples/cart/coherence/wire.h"
#include "replication/hash_tree.h"

namespace converge::cart::coherence {
namespace {

using crdt::CausalCounter;
using crdt::Dot;
using crdt::ReplicaId;
using LineStore = CartState::ValueStore;
using CartStore = crdt::DotMap<std::string, LineStore>;

const ReplicaId kR1{0x1111};
const ReplicaId kR2{0x2222};
const ReplicaId kR3{0x3333};
constexpr const char* kKey = "cart:alice";

// Adds n of `sku` at replica r; returns the delta.
CartState Add(CartState& cart, ReplicaId r, const std::string& sku, std::uint64_t n) {
  return cart.Update(sku, [&](CausalCounter& q) { return q.Increment(r, n); });
}

CartState Joined(CartState a, const CartState& b) {
  a.Join(b);
  return a;
}

// The state with every dot of `sku` carrying `amount` (same context): what
// /admin/corrupt plants.
CartState WithAmount(const CartState& s, const std::string& sku, std::uint64_t amount) {
  CartStore store;
  for (const auto& entry : s.store().entries()) {
    LineStore line;
    for (const auto& item : entry.store.items()) {
      line.Insert(item.dot, entry.key == sku ? amount : item.value);
    }
    store.Insert(entry.key, std::move(line));
  }
  return CartState::FromParts(std::move(store), s.context());
}

// The state with the line `from` filed under `to` (same dots, same context).
CartState Renamed(const CartState& s, const std::string& from, const std::string& to) {
  CartStore store;
  for (const auto& entry : s.store().entries()) {
    store.Insert(entry.key == from ? to : entry.key, entry.store);
  }
  return CartState::FromParts(std::move(store), s.context());
}

NodeRead Read(const CartState& s) {
  std::string bytes = codec::Encode(s);
  const std::uint64_t digest = StateDigest(bytes);
  return NodeRead::State(std::move(bytes), digest);
}

std::vector<NodeId> Ids(std::size_t n, bool with_replicas = false) {
  const ReplicaId replicas[] = {kR1, kR2, kR3, ReplicaId{0x4444}};
  std::vector<NodeId> ids;
  for (std::size_t i = 0; i < n; ++i) {
    ids.push_back(NodeId{std::string("n").append(std::to_string(i + 1)),
                         with_replicas ? std::optional(replicas[i]) : std::nullopt});
  }
  return ids;
}

bool Mentions(const std::vector<std::string>& texts, std::string_view part) {
  for (const std::string& t : texts) {
    if (t.find(part) != std::string::npos) return true;
  }
  return false;
}

// A converged cart: apple 2 (r1), pear 1 (r2).
CartState Converged() {
  CartState cart;
  Add(cart, kR1, "apple", 2);
  Add(cart, kR2, "pear", 1);
  return cart;
}

// ---------------------------------------------------------------------------
// Classification

TEST(Classify, DigestIsTheAntiEntropyTreesDigest) {
  const std::string bytes = codec::Encode(Converged());
  EXPECT_EQ(StateDigest(bytes), replication::Hash64(bytes, 0xd16e57));
  EXPECT_NE(StateDigest(bytes), StateDigest(bytes + "x"));
}

TEST(Classify, AllEqualIsEqualAndNeedsNoRepair) {
  const CartState cart = Converged();
  const std::vector<NodeRead> reads = {Read(cart), Read(cart), Read(cart)};
  const Classification c = Classify(kKey, Ids(3, true), reads);
  EXPECT_EQ(c.cls, KeyClass::kEqual);
  for (const NodeVerdict& v : c.nodes) {
    EXPECT_EQ(v.cls, NodeClass::kCurrent);
    EXPECT_TRUE(v.problems.empty());
    EXPECT_EQ(v.lines, (std::vector<Line>{{"apple", 2}, {"pear", 1}}));
  }
  ASSERT_TRUE(c.join.has_value());
  EXPECT_EQ(*c.join, cart);
  EXPECT_TRUE(c.reread.empty());
  EXPECT_FALSE(c.HasDomainViolations());
  EXPECT_TRUE(PlanRepair(c).empty());
}

TEST(Classify, ReplicaMissingAnIncrementIsBehind) {
  CartState n1;
  const CartState first = Add(n1, kR1, "apple", 2);
  Add(n1, kR1, "apple", 3);  // n2 has not received this one
  CartState n2 = first;
  const Classification c = Classify(kKey, Ids(2, true), std::vector{Read(n1), Read(n2)});
  EXPECT_EQ(c.cls, KeyClass::kBehind);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kCurrent);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kBehind);
  EXPECT_EQ(c.nodes[1].behind, std::vector<std::size_t>{0});
  EXPECT_EQ(c.nodes[1].lines, (std::vector<Line>{{"apple", 2}}));
  EXPECT_EQ(c.nodes[0].lines, (std::vector<Line>{{"apple", 5}}));

  const std::vector<RepairPush> plan = PlanRepair(c);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].node, 1u);
  // Applying the push (a merge is a join) makes the key equal.
  StatusOr<CartState> pushed = codec::Decode<CartState>(plan[0].state);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  n2.Join(*pushed);
  EXPECT_EQ(Classify(kKey, Ids(2, true), std::vector{Read(n1), Read(n2)}).cls, KeyClass::kEqual);
}

TEST(Classify, KeyMissingOnOneNodeIsBehind) {
  const CartState cart = Converged();
  const Classification c =
      Classify(kKey, Ids(3, true), std::vector{Read(cart), Read(cart), NodeRead::Absent()});
  EXPECT_EQ(c.cls, KeyClass::kBehind);
  EXPECT_TRUE(c.nodes[2].absent);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kBehind);
  EXPECT_EQ(c.nodes[2].behind, (std::vector<std::size_t>{0, 1}));
  EXPECT_TRUE(c.nodes[2].lines.empty());
  const std::vector<RepairPush> plan = PlanRepair(c);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].node, 2u);
  EXPECT_EQ(plan[0].state, codec::Encode(cart));
}

TEST(Classify, UpdatesOnBothSidesAreConcurrent) {
  const CartState base = Converged();
  CartState n1 = base;
  CartState n2 = base;
  Add(n1, kR1, "apple", 1);
  Add(n2, kR2, "plum", 4);
  CartState n3 = base;  // behind both
  const Classification c = Classify(kKey, Ids(3, true), std::vector{Read(n1), Read(n2), Read(n3)});
  EXPECT_EQ(c.cls, KeyClass::kConcurrent);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kConcurrent);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kConcurrent);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kBehind);
  EXPECT_EQ(c.nodes[2].behind, (std::vector<std::size_t>{0, 1}));
  ASSERT_TRUE(c.join.has_value());
  EXPECT_EQ(Lines(*c.join), (std::vector<Line>{{"apple", 3}, {"pear", 1}, {"plum", 4}}));

  const std::vector<RepairPush> plan = PlanRepair(c);
  ASSERT_EQ(plan.size(), 3u);
  std::vector<CartState> after = {n1, n2, n3};
  for (const RepairPush& p : plan) after[p.node].Join(*codec::Decode<CartState>(p.state));
  EXPECT_EQ(
      Classify(kKey, Ids(3, true), std::vector{Read(after[0]), Read(after[1]), Read(after[2])}).cls,
      KeyClass::kEqual);
}

// An observed remove creates no dot: the remover's context stays what it
// was, and only its store loses the line. Same context, different values,
// yet explained: the other replica is behind on the removal.
TEST(Classify, RemovalWithTheSameContextIsBehindNotCorrupt) {
  const CartState base = Converged();
  CartState n2 = base;
  n2.Remove("apple");
  ASSERT_EQ(base.context(), n2.context());
  ASSERT_NE(base, n2);
  const Classification c = Classify(kKey, Ids(2, true), std::vector{Read(base), Read(n2)});
  EXPECT_EQ(c.cls, KeyClass::kBehind);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kBehind);
  EXPECT_EQ(c.nodes[0].behind, std::vector<std::size_t>{1});
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kCurrent);
  EXPECT_TRUE(c.nodes[0].problems.empty());
  EXPECT_EQ(Lines(*c.join), (std::vector<Line>{{"pear", 1}}));
}

TEST(Classify, ConcurrentRemovalsWithTheSameContextAreConcurrent) {
  const CartState base = Converged();
  CartState n1 = base;
  CartState n2 = base;
  n1.Remove("apple");
  n2.Remove("pear");
  ASSERT_EQ(n1.context(), n2.context());
  const Classification c = Classify(kKey, Ids(2, true), std::vector{Read(n1), Read(n2)});
  EXPECT_EQ(c.cls, KeyClass::kConcurrent);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kConcurrent);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kConcurrent);
  EXPECT_TRUE(c.join->empty());
  EXPECT_EQ(PlanRepair(c).size(), 2u);
}

// A delete with a client's context (Cart-Context) at a replica that had not
// received the line: its context holds dots its store never held (removed
// before they arrived). Legitimate: the replica holding the line is behind on
// the removal, one that has neither is behind both, nothing is flagged.
TEST(Classify, ADotRemovedBeforeItArrivedIsLegitimate) {
  CartState n1;
  const CartState apple = Add(n1, kR1, "apple", 1);
  Add(n1, kR1, "pear", 1);
  CartState n2 = apple;
  CartState n3 = apple;
  n2.Remove("pear", n1.DotsOf("pear"));  // the client read n1, deleted on n2
  ASSERT_FALSE(n2.Contains("pear"));
  ASSERT_TRUE(n2.context().Includes(n1.context()));
  const Classification c = Classify(kKey, Ids(3, true), std::vector{Read(n1), Read(n2), Read(n3)});
  EXPECT_EQ(c.cls, KeyClass::kBehind);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kBehind);
  EXPECT_EQ(c.nodes[0].behind, std::vector<std::size_t>{1});
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kCurrent);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kBehind);
  for (const NodeVerdict& v : c.nodes) EXPECT_TRUE(v.problems.empty()) << v.problems.front();
  EXPECT_EQ(Lines(*c.join), (std::vector<Line>{{"apple", 1}}));
  // The repair converges everyone on the deletion.
  std::vector<CartState> after = {n1, n2, n3};
  for (const RepairPush& p : PlanRepair(c)) after[p.node].Join(*codec::Decode<CartState>(p.state));
  EXPECT_EQ(
      Classify(kKey, Ids(3, true), std::vector{Read(after[0]), Read(after[1]), Read(after[2])}).cls,
      KeyClass::kEqual);
}

TEST(Classify, SameDotWithAnotherAmountIsUnexplainableOnTheMinority) {
  const CartState cart = Converged();
  const CartState corrupt = WithAmount(cart, "apple", 99);
  ASSERT_EQ(corrupt.context(), cart.context());
  const Classification c =
      Classify(kKey, Ids(3, true), std::vector{Read(cart), Read(corrupt), Read(cart)});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kCurrent);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kCurrent);
  ASSERT_EQ(c.nodes[1].problems.size(), 1u);
  const std::string& why = c.nodes[1].problems[0];
  EXPECT_NE(why.find("amount 99 here"), std::string::npos) << why;
  EXPECT_NE(why.find("amount 2 on n1, n3"), std::string::npos) << why;
  EXPECT_NE(why.find("(" + Hex16(kR1.value()) + ",1)"), std::string::npos) << why;
  EXPECT_TRUE(c.nodes[0].problems.empty());
  EXPECT_EQ(c.nodes[1].lines, (std::vector<Line>{{"apple", 99}, {"pear", 1}}));
  // The join is of the explainable states only, and nothing is repaired.
  EXPECT_EQ(*c.join, cart);
  EXPECT_TRUE(PlanRepair(c).empty());
}

TEST(Classify, SameDotWithAnotherAmountWithoutMajorityFlagsBoth) {
  const CartState cart = Converged();
  const CartState corrupt = WithAmount(cart, "apple", 99);
  const Classification c = Classify(kKey, Ids(2), std::vector{Read(cart), Read(corrupt)});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kUnexplainable);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_TRUE(Mentions(c.nodes[0].problems, "no majority"));
  EXPECT_FALSE(c.join.has_value());
  EXPECT_TRUE(PlanRepair(c).empty());
}

TEST(Classify, CorruptionOnANodeThatIsAlsoBehindIsStillFound) {
  CartState n1 = Converged();
  CartState n3 = n1;
  Add(n1, kR1, "kiwi", 1);  // n2 and n3 behind on kiwi
  const CartState n2 = WithAmount(n3, "pear", 7);
  const Classification c = Classify(kKey, Ids(3, true), std::vector{Read(n1), Read(n2), Read(n3)});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kCurrent);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kBehind);
  EXPECT_TRUE(PlanRepair(c).empty());
}

TEST(Classify, SameDotUnderAnotherLineIsUnexplainable) {
  const CartState cart = Converged();
  const CartState moved = Renamed(cart, "apple", "banana");
  const Classification c = Classify(kKey, Ids(3), std::vector{Read(moved), Read(cart), Read(cart)});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[0].cls, NodeClass::kUnexplainable);
  EXPECT_TRUE(Mentions(c.nodes[0].problems, "line 'banana' amount 2 here"));
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kCurrent);
}

TEST(Classify, UndecodableBytesAreUnexplainable) {
  const CartState cart = Converged();
  const std::string good = codec::Encode(cart);
  crdt::OrSet<std::string> set;
  set.Add(kR1, "x");
  const std::vector<std::string> bad = {
      "",
      "garbage",
      good.substr(0, good.size() / 2),  // truncated
      good + std::string("\0", 1),      // trailing byte
      codec::Encode(set),               // another CRDT type
  };
  for (const std::string& bytes : bad) {
    SCOPED_TRACE(Base64Encode(bytes));
    const Classification c =
        Classify(kKey, Ids(3),
                 std::vector{Read(cart), NodeRead::State(bytes, StateDigest(bytes)), Read(cart)});
    EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
    EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
    EXPECT_TRUE(Mentions(c.nodes[1].problems, "does not decode")) << c.nodes[1].problems[0];
    EXPECT_EQ(c.nodes[0].cls, NodeClass::kCurrent);
    EXPECT_EQ(c.nodes[2].cls, NodeClass::kCurrent);
    EXPECT_TRUE(PlanRepair(c).empty());
  }
}

TEST(Classify, AnswerOutsideTheContractIsUnexplainable) {
  const CartState cart = Converged();
  const Classification c = Classify(
      kKey, Ids(2), std::vector{Read(cart), NodeRead::BadAnswer("field \"state\" is not base64")});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_TRUE(Mentions(c.nodes[1].problems, "not base64"));
}

TEST(Classify, DigestThatIsNotTheStatesIsUnexplainableAndAsksForAReread) {
  const CartState cart = Converged();
  NodeRead lying = Read(cart);
  lying.digest = *lying.digest ^ 1;
  const Classification c = Classify(kKey, Ids(2), std::vector{Read(cart), lying});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_TRUE(Mentions(c.nodes[1].problems, "anti-entropy tree and its store disagree"));
  EXPECT_EQ(c.reread, std::vector<std::size_t>{1});
}

TEST(Classify, UnreachableNodeIsNotJudged) {
  const CartState cart = Converged();
  const Classification c = Classify(
      kKey, Ids(3), std::vector{Read(cart), Read(cart), NodeRead::Unreachable("timed out")});
  EXPECT_EQ(c.cls, KeyClass::kEqual);
  EXPECT_EQ(c.nodes[2].cls, NodeClass::kUnknown);
  EXPECT_TRUE(PlanRepair(c).empty());
}

TEST(Classify, DotBeyondWhatItsReplicaIssuedIsUnexplainable) {
  CartState n1;
  const CartState first = Add(n1, kR1, "apple", 1);
  CartState n2 = n1;
  Add(n2, kR1, "apple", 1);  // a dot (r1, 2) that n1, owner of r1, never issued
  const Classification c = Classify(kKey, Ids(2, true), std::vector{Read(n1), Read(n2)});
  EXPECT_EQ(c.cls, KeyClass::kUnexplainable);
  EXPECT_EQ(c.nodes[1].cls, NodeClass::kUnexplainable);
  EXPECT_TRUE(Mentions(c.nodes[1].problems, "n1 has issued only up to 1"));
  EXPECT_EQ(c.reread, std::vector<std::size_t>{0});  // read the owner again

  // A node that holds r1's dots while r1's node has no such key at all.
  const Classification absent =
      Classify(kKey, Ids(2, true), std::vector{NodeRead::Absent(), Read(first)});
  EXPECT_EQ(absent.cls, KeyClass::kUnexplainable);
  EXPECT_TRUE(Mentions(absent.nodes[1].problems, "does not hold the key"));

  // Without replica ids the check cannot run: the same states are behind.
  EXPECT_EQ(Classify(kKey, Ids(2), std::vector{Read(n1), Read(n2)}).cls, KeyClass::kBehind);
  // The owner ahead of the holder is ordinary.
  EXPECT_EQ(Classify(kKey, Ids(2, true), std::vector{Read(n2), Read(first)}).cls,
            KeyClass::kBehind);
}

TEST(Classify, DomainViolationsAreReportedPerNode) {
  CartState a;
  CartState b;
  Add(a, kR1, "apple", 600'000);
  Add(b, kR2, "apple", 600'000);  // concurrent: the join holds 1,200,000
  const CartState joined = Joined(a, b);
  const Classification c = Classify(kKey, Ids(2), std::vector{Read(joined), Read(joined)});
  EXPECT_EQ(c.cls, KeyClass::kEqual);
  EXPECT_TRUE(c.HasDomainViolations());
  EXPECT_TRUE(Mentions(c.nodes[0].domain, "quantity 1200000 outside 1..1000000"));
  EXPECT_FALSE(c.key_problem.has_value());

  // The states each replica took alone keep the rules.
  EXPECT_FALSE(Classify(kKey, Ids(2), std::vector{Read(a), Read(b)}).HasDomainViolations());

  CartState bad_sku;
  Add(bad_sku, kR1, std::string("a\x01", 2), 1);
  EXPECT_TRUE(Mentions(DomainCheck(bad_sku), "control character"));
}

TEST(Classify, KeyNamesFollowTheCartRules) {
  EXPECT_FALSE(KeyCheck("cart:alice").has_value());
  EXPECT_TRUE(KeyCheck("cart:").has_value());
  EXPECT_TRUE(KeyCheck("cart:bad id").has_value());
  EXPECT_TRUE(KeyCheck("user:alice").has_value());
  const CartState cart = Converged();
  const Classification c = Classify("cart:no spaces", Ids(1), std::vector{Read(cart)});
  EXPECT_TRUE(c.key_problem.has_value());
  EXPECT_TRUE(c.HasDomainViolations());
}

// ---------------------------------------------------------------------------
// Text and wire

TEST(Text, HexDigests) {
  EXPECT_EQ(Hex16(0x0f3a), "0000000000000f3a");
  EXPECT_EQ(ParseHex64("0000000000000F3A"), 0x0f3au);
  EXPECT_EQ(ParseHex64("ffffffffffffffff"), ~std::uint64_t{0});
  EXPECT_FALSE(ParseHex64(""));
  EXPECT_FALSE(ParseHex64("00000000000000000"));
  EXPECT_FALSE(ParseHex64("0x12"));
  EXPECT_FALSE(ParseHex64("12 "));
}

TEST(Text, Base64RoundTripsAndIsStrict) {
  for (const std::string& bytes : {std::string(), std::string("a"), std::string("ab"),
                                   std::string("abc"), std::string("\0\xff\x10", 3)}) {
    EXPECT_EQ(Base64Decode(Base64Encode(bytes), 100), bytes);
  }
  EXPECT_EQ(Base64Encode("ab"), "YWI=");
  EXPECT_FALSE(Base64Decode("YWI", 100));       // no padding
  EXPECT_FALSE(Base64Decode("YWJ=", 100));      // non-zero bits after the last byte
  EXPECT_FALSE(Base64Decode("YQ=a", 100));      // '=' in the middle
  EXPECT_FALSE(Base64Decode("YW I=", 100));     // whitespace
  EXPECT_FALSE(Base64Decode("YW-_", 100));      // URL alphabet
  EXPECT_FALSE(Base64Decode("YWI=YWI=", 100));  // padding before the end
  EXPECT_FALSE(Base64Decode(Base64Encode(std::string(10, 'x')), 9));  // too large
  EXPECT_TRUE(Base64Decode(Base64Encode(std::string(10, 'x')), 10));
}

TEST(Text, PrintableEscapesWhatATerminalShouldNotSee) {
  EXPECT_EQ(Printable("café"), "café");
  EXPECT_EQ(Printable(std::string("a\x1b[2Jb", 6)), "a\\x1b[2Jb");
  EXPECT_EQ(Printable("\xff"), "\\xff");
  EXPECT_EQ(Printable(std::string(300, 'a'), 10), "aaaaaaaaaa...");
}

TEST(Text, SecondsAsFlagsGiveThem) {
  EXPECT_EQ(ParseSeconds("2"), 2.0);
  EXPECT_EQ(ParseSeconds("0"), 0.0);
  EXPECT_EQ(ParseSeconds("0.5"), 0.5);
  EXPECT_EQ(ParseSeconds(".25"), 0.25);
  EXPECT_EQ(ParseSeconds("30."), 30.0);
  EXPECT_EQ(ParseSeconds("0.01"), 0.01);
  EXPECT_EQ(ParseSeconds("86400"), 86400.0);
  for (const char* bad : {"", ".", "-1", "+1", "1e3", "inf", "nan", "0x10", " 1", "1 ", "1..2",
                          "1.2.3", "2s", "1,5"}) {
    EXPECT_FALSE(ParseSeconds(bad).has_value()) << bad;
  }
}

TEST(Wire, NodeAddresses) {
  EXPECT_EQ(*ParseNodeAddress("http://127.0.0.1:8081"), (HostPort{"127.0.0.1", 8081}));
  EXPECT_EQ(*ParseNodeAddress("127.0.0.1:8081"), (HostPort{"127.0.0.1", 8081}));
  EXPECT_EQ(*ParseNodeAddress("http://localhost:80/"), (HostPort{"localhost", 80}));
  EXPECT_EQ(*ParseNodeAddress("[::1]:9"), (HostPort{"::1", 9}));
  EXPECT_EQ(ToString(HostPort{"::1", 9}), "[::1]:9");
  for (const char* bad : {"https://a:1", "a", "a:0", "a:65536", "a:x", ":80", "http://a:1/path",
                          "::1:80", "a b:1", "a:-1"}) {
    EXPECT_FALSE(ParseNodeAddress(bad).ok()) << bad;
  }
}

TEST(Wire, KeyPages) {
  const std::string d = "0f3a000000000001";
  StatusOr<KeyPage> page =
      ParseKeyPage(R"({"keys":[{"key":"cart:a","digest":")" + d +
                       R"("},{"key":"cart:b","digest":")" + d + R"("}],"next":"cart:c"})",
                   "cart:", "", 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->keys.size(), 2u);
  EXPECT_EQ(page->keys[1].key, "cart:b");
  EXPECT_EQ(page->keys[1].digest, 0x0f3a000000000001u);
  EXPECT_EQ(page->next, "cart:c");
  EXPECT_FALSE(ParseKeyPage(R"({"keys":[],"next":null})", "cart:", "", 10)->next.has_value());

  const auto bad = [&](const std::string& body, std::string_view after = "") {
    return !ParseKeyPage(body, "cart:", after, 1 + (after.empty() ? 1 : 0)).ok();
  };
  EXPECT_TRUE(bad("not json"));
  EXPECT_TRUE(bad("[]"));
  EXPECT_TRUE(bad(R"({"keys":{}})"));
  EXPECT_TRUE(bad(R"({"keys":[{"key":"cart:a","digest":"0f3a"}]})"));  // short digest
  EXPECT_TRUE(bad(R"({"keys":[{"key":"cart:a","digest":"zz3a000000000001"}]})"));
  EXPECT_TRUE(bad(R"({"keys":[{"key":"user:a","digest":")" + d + R"("}]})"));  // prefix
  EXPECT_TRUE(bad(R"({"keys":[{"key":"cart:b","digest":")" + d +
                  R"("},{"key":"cart:a","digest":")" + d + R"("}]})"));  // order, limit
  EXPECT_TRUE(bad(R"({"keys":[{"key":"cart:a","digest":")" + d + R"("}]})", "cart:b"));  // after
  EXPECT_TRUE(bad(R"({"keys":[{"key":7,"digest":")" + d + R"("}]})"));
  EXPECT_TRUE(bad(R"({"keys":[],"next":5})"));
  EXPECT_TRUE(bad(std::string(100, '[') + std::string(100, ']')));  // depth
}

TEST(Wire, StateAnswers) {
  const std::string bytes = codec::Encode(Converged());
  const std::string body = nlohmann::json{
      {"key", kKey},
      {"digest", Hex16(StateDigest(bytes))},
      {"state",
       Base64Encode(bytes)}}.dump();
  StatusOr<StateAnswer> answer = ParseState(body, kKey, 1 << 20);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->state, bytes);
  EXPECT_EQ(answer->digest, StateDigest(bytes));
  EXPECT_FALSE(ParseState(body, "cart:bob", 1 << 20).ok());  // about another key
  EXPECT_FALSE(ParseState(body, kKey, 4).ok());              // too large
  EXPECT_FALSE(
      ParseState(R"({"key":"cart:alice","digest":"0000000000000000","state":"YW I="})", kKey, 100)
          .ok());
  EXPECT_FALSE(ParseState(R"({"key":"cart:alice","state":"YWI="})", kKey, 100).ok());
}

TEST(Wire, ClusterAndMergeAnswers) {
  StatusOr<ClusterInfo> info = ParseCluster(
      R"({"node":"n1","http":"127.0.0.1:8081","replica":"9f2c","incarnation":2,
          "members":[{"name":"n2","http":"127.0.0.1:8082","state":"alive","lag":0}],
          "stats":{"updates":1}})");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->node, "n1");
  EXPECT_EQ(info->replica, 0x9f2cu);
  ASSERT_EQ(info->members.size(), 1u);
  EXPECT_EQ(info->members[0].http, "127.0.0.1:8082");
  EXPECT_EQ(info->members[0].state, "alive");
  EXPECT_FALSE(ParseCluster(R"({"node":""})").ok());
  EXPECT_FALSE(ParseCluster(R"({"node":"n 1"})").ok());
  EXPECT_FALSE(ParseCluster(R"({"node":"n1","replica":"not hex"})").ok());
  EXPECT_FALSE(ParseCluster(R"({"node":"n1","members":[{"http":"x"}]})").ok());
  EXPECT_FALSE(ParseCluster(R"({"node":"n1","replica":"9f2c"})")->replica != 0x9f2cu);

  EXPECT_TRUE(ParseMerge(R"({"changed":true,"digest":"0f3a000000000001"})")->changed);
  EXPECT_FALSE(ParseMerge(R"({"changed":true,"digest":""})")->digest.has_value());
  EXPECT_EQ(ParseMerge(R"({"changed":false,"digest":"0f3a000000000001"})")->digest,
            0x0f3a000000000001u);
  EXPECT_FALSE(ParseMerge(R"({"changed":true,"digest":"12"})").ok());
  EXPECT_FALSE(ParseMerge(R"({"changed":"yes"})").ok());
  EXPECT_EQ(ErrorOf(R"({"error":"bad \u001b thing"})"), "bad \\x1b thing");
  EXPECT_EQ(QueryEscape("cart:a b&c"), "cart:a%20b%26c");

  const nlohmann::json merge = nlohmann::json::parse(MergeBody(kKey, "ab"));
  EXPECT_EQ(merge["key"], kKey);
  EXPECT_EQ(merge["state"], "YWI=");
}

// ---------------------------------------------------------------------------
// Report

Report CleanReport() {
  Report r;
  r.prefix = "cart:";
  r.nodes = {NodeSummary{"127.0.0.1:8081", "n1", 0x1111, true, false, "", 3},
             NodeSummary{"127.0.0.1:8082", "n2", 0x2222, true, false, "", 3}};
  r.keys_scanned = 3;
  r.keys_equal = 3;
  return r;
}

KeyFinding Finding(KeyClass cls) {
  KeyFinding f;
  f.key = kKey;
  f.classification.cls = cls;
  f.classification.nodes.resize(2);
  f.divergent_seconds = 2.5;
  return f;
}

TEST(Report, OutcomesAndExitCodes) {
  Report r = CleanReport();
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean);
  EXPECT_EQ(ExitCode(r), 0);
  EXPECT_NE(RenderHuman(r).find("result: clean"), std::string::npos);
  r.grace_seconds = 0.25;
  EXPECT_NE(RenderHuman(r).find("grace 0.25 s\n"), std::string::npos) << RenderHuman(r);
  r.grace_seconds = 2;
  EXPECT_NE(RenderHuman(r).find("grace 2 s\n"), std::string::npos) << RenderHuman(r);

  r.divergent.push_back(Finding(KeyClass::kBehind));
  EXPECT_EQ(OutcomeOf(r), Outcome::kConverging);
  EXPECT_EQ(ExitCode(r), 0);
  r.divergent.back().after_repair = KeyClass::kEqual;
  EXPECT_EQ(OutcomeOf(r), Outcome::kRepaired);
  EXPECT_EQ(ExitCode(r), 0);
  r.divergent.push_back(Finding(KeyClass::kConcurrent));
  EXPECT_EQ(OutcomeOf(r), Outcome::kConverging);

  Report unexplainable = CleanReport();
  unexplainable.divergent.push_back(Finding(KeyClass::kUnexplainable));
  EXPECT_EQ(ExitCode(unexplainable), 1);
  EXPECT_EQ(NeedsPersonReasons(unexplainable), std::vector<std::string>{"1 unexplainable key"});

  EXPECT_TRUE(ScanErrors(unexplainable).empty());

  Report domain = CleanReport();
  domain.domain.push_back(DomainFinding{kKey, {"n1"}, {"too many"}});
  EXPECT_EQ(ExitCode(domain), 1);

  Report failed = CleanReport();
  failed.divergent.push_back(Finding(KeyClass::kBehind));
  failed.repairs_attempted = 1;
  failed.repairs_failed = 1;
  EXPECT_EQ(ExitCode(failed), 1);

  Report shared = CleanReport();
  shared.cluster_problems.push_back("nodes n1 and n2 share replica id");
  EXPECT_EQ(ExitCode(shared), 1);

  // A scan that could not be done is an error (2), unless the data it did
  // read needs a person (1).
  Report unreachable = CleanReport();
  unreachable.nodes[1].reachable = false;
  EXPECT_EQ(OutcomeOf(unreachable), Outcome::kNeedsPerson);
  EXPECT_EQ(ExitCode(unreachable), 2);
  EXPECT_EQ(ScanErrors(unreachable), std::vector<std::string>{"1 node unreachable"});
  EXPECT_TRUE(NeedsPersonReasons(unreachable).empty());
  EXPECT_NE(RenderHuman(unreachable).find("needs-attention (scan incomplete: 1 node unreachable)"),
            std::string::npos)
      << RenderHuman(unreachable);
  unreachable.divergent.push_back(Finding(KeyClass::kBehind));
  EXPECT_EQ(ExitCode(unreachable), 2);  // converging is no data problem
  unreachable.domain.push_back(DomainFinding{kKey, {"n1"}, {"too many"}});
  EXPECT_EQ(ExitCode(unreachable), 1);  // both: the data wins

  Report none = CleanReport();
  none.nodes.clear();
  EXPECT_EQ(ExitCode(none), 2);
  EXPECT_EQ(ScanErrors(none), std::vector<std::string>{"no node to read"});

  Report all_down = CleanReport();
  for (NodeSummary& n : all_down.nodes) n.reachable = false;
  EXPECT_EQ(ExitCode(all_down), 2);
  EXPECT_EQ(ScanErrors(all_down), std::vector<std::string>{"2 nodes unreachable"});

  EXPECT_EQ(kExitOk, 0);
  EXPECT_EQ(kExitNeedsPerson, 1);
  EXPECT_EQ(kExitError, 2);
}

TEST(Report, JsonExitCodeIsTheProcesses) {
  Report r = CleanReport();
  EXPECT_EQ(nlohmann::json::parse(RenderJson(r))["exit_code"], 0);
  r.nodes[0].reachable = false;
  nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["result"], "needs-attention");
  EXPECT_EQ(j["exit_code"], 2);
  EXPECT_EQ(j["scan_errors"], nlohmann::json::array({"1 node unreachable"}));
  EXPECT_EQ(j["needs_person"], nlohmann::json::array());
  r.divergent.push_back(Finding(KeyClass::kUnexplainable));
  j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["needs_person"], nlohmann::json::array({"1 unexplainable key"}));
}

TEST(Report, JsonCarriesEveryField) {
  Report r = CleanReport();
  KeyFinding f = Finding(KeyClass::kUnexplainable);
  f.classification.nodes[0].cls = NodeClass::kCurrent;
  f.classification.nodes[0].lines = {{"apple", 2}};
  f.classification.nodes[1].cls = NodeClass::kUnexplainable;
  f.classification.nodes[1].problems = {"dot (x,1) is line 'apple' amount 99 here"};
  r.divergent.push_back(f);
  r.domain.push_back(DomainFinding{"cart:bob", {"n1", "n2"}, {"line 'x': quantity 0"}});
  const nlohmann::json j = nlohmann::json::parse(RenderJson(r));
  EXPECT_EQ(j["result"], "needs-attention");
  EXPECT_EQ(j["exit_code"], 1);
  EXPECT_EQ(j["keys"]["scanned"], 3);
  EXPECT_EQ(j["keys"]["unexplainable"], 1);
  EXPECT_EQ(j["keys"]["domain_violations"], 1);
  EXPECT_EQ(j["nodes"][0]["replica"], Hex16(0x1111));
  EXPECT_EQ(j["divergent"][0]["key"], kKey);
  EXPECT_EQ(j["divergent"][0]["class"], "unexplainable");
  EXPECT_EQ(j["divergent"][0]["nodes"][1]["node"], "n2");
  EXPECT_EQ(j["divergent"][0]["nodes"][1]["class"], "unexplainable");
  EXPECT_EQ(j["divergent"][0]["nodes"][0]["lines"][0]["quantity"], 2);
  EXPECT_EQ(j["domain"][0]["nodes"][1], "n2");
  for (const char* field : {"needs_person", "scan_errors", "prefix", "grace_seconds",
                            "cluster_problems", "repairs", "figures"}) {
    EXPECT_TRUE(j.contains(field)) << field;
  }
  for (const char* field : {"scan_seconds", "grace_wait_seconds", "ms_per_1000_keys", "states_read",
                            "requests", "bytes_received", "max_divergence_seconds"}) {
    EXPECT_TRUE(j["figures"].contains(field)) << field;
  }
  const std::string human = RenderHuman(r);
  EXPECT_NE(human.find("cart:alice  UNEXPLAINABLE"), std::string::npos) << human;
  EXPECT_NE(human.find("amount 99 here"), std::string::npos) << human;
  EXPECT_NE(human.find("domain: cart:bob on n1, n2"), std::string::npos) << human;
  EXPECT_NE(human.find("result: needs-attention"), std::string::npos) << human;
}

// ---------------------------------------------------------------------------
// The scan, over fake nodes

class FakeNode final : public NodeApi {
 public:
  FakeNode(std::string name, ReplicaId replica) : name_(std::move(name)), replica_(replica) {}

  StatusOr<ClusterInfo> Cluster() override {
    ++calls;
    if (!up) return Status(StatusCode::kUnavailable, "connect: Connection refused");
    return ClusterInfo{name_, replica_.value(), members};
  }
  StatusOr<KeyPage> Keys(std::string_view prefix, std::string_view after,
                         std::size_t limit) override {
    ++calls;
    if (!up) return Status(StatusCode::kUnavailable, "connect: Connection refused");
    KeyPage page;
    for (const auto& [key, bytes] : Encoded()) {
      if (!std::string_view(key).starts_with(prefix) || (!after.empty() && key <= after)) continue;
      if (page.keys.size() == limit) {
        page.next = key;
        break;
      }
      page.keys.push_back(KeyDigest{key, StateDigest(bytes)});
    }
    return page;
  }
  StatusOr<std::optional<StateAnswer>> State(std::string_view key) override {
    ++calls;
    ++state_reads;
    if (!up) return Status(StatusCode::kUnavailable, "connect: Connection refused");
    const auto all = Encoded();
    const auto it = all.find(std::string(key));
    if (it == all.end()) return std::optional<StateAnswer>();
    return std::optional(StateAnswer{it->second, StateDigest(it->second)});
  }
  StatusOr<MergeAnswer> Merge(std::string_view key, std::string_view state) override {
    ++calls;
    ++merges;
    if (!allow_repair) return Status(StatusCode::kFailedPrecondition, "404");
    StatusOr<CartState> decoded = codec::Decode<CartState>(state);
    if (!decoded.ok()) return Status(StatusCode::kFailedPrecondition, "400");
    CartState& mine = states[std::string(key)];
    const CartState before = mine;
    mine.Join(*decoded);
    return MergeAnswer{!(before == mine), StateDigest(codec::Encode(mine))};
  }
  [[nodiscard]] Traffic traffic() const override { return {calls, 0}; }

  std::map<std::string, CartState> states;
  std::map<std::string, std::string> raw;  // encodings that override `states`
  std::vector<ClusterMember> members;
  bool up = true;
  bool allow_repair = true;
  std::uint64_t calls = 0;
  int state_reads = 0;
  int merges = 0;

 private:
  std::map<std::string, std::string> Encoded() const {
    std::map<std::string, std::string> out = raw;
    for (const auto& [key, state] : states) out.emplace(key, codec::Encode(state));
    return out;
  }
  std::string name_;
  ReplicaId replica_;
};

class ScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ReplicaId replicas[] = {kR1, kR2, kR3};
    for (int i = 0; i < 3; ++i) {
      auto node =
          std::make_unique<FakeNode>(std::string("n").append(std::to_string(i + 1)), replicas[i]);
      fakes.push_back(node.get());
      owned.push_back(std::move(node));
    }
    env.now = [this] { return now; };
    env.sleep = [this](Clock::duration d) {
      now += d;
      slept += d;
      if (on_sleep) on_sleep();
    };
    options.grace = std::chrono::milliseconds(2000);
  }

  Scanner Make() {
    std::vector<Scanner::Node> nodes;
    for (std::size_t i = 0; i < owned.size(); ++i) {
      nodes.push_back(
          {HostPort{"127.0.0.1", static_cast<std::uint16_t>(8081 + i)}, std::move(owned[i])});
    }
    return Scanner(std::move(nodes), options, env);
  }

  void Everywhere(const std::string& key, const CartState& s) {
    for (FakeNode* f : fakes) f->states[key] = s;
  }

  std::vector<std::unique_ptr<NodeApi>> owned;
  std::vector<FakeNode*> fakes;
  ScanOptions options;
  ScanEnvironment env;
  Clock::time_point now{std::chrono::hours(1)};
  Clock::duration slept{0};
  std::function<void()> on_sleep;
};

TEST_F(ScanTest, ConvergedClusterIsClean) {
  for (int i = 0; i < 25; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean) << RenderHuman(r);
  EXPECT_EQ(r.keys_scanned, 25u);
  EXPECT_EQ(r.keys_equal, 25u);
  EXPECT_TRUE(r.divergent.empty());
  EXPECT_EQ(slept, Clock::duration{0});  // nothing to wait for
  // Each agreeing key is read once, the readers taken in turn.
  EXPECT_EQ(r.figures.states_read, 25u);
  for (FakeNode* f : fakes) EXPECT_GE(f->state_reads, 8);
  ASSERT_EQ(r.nodes.size(), 3u);
  EXPECT_EQ(r.nodes[0].name, "n1");
  EXPECT_EQ(r.nodes[0].keys, 25u);
}

TEST_F(ScanTest, PagesAreFollowed) {
  for (int i = 0; i < 25; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  options.page_limit = 4;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(r.keys_scanned, 25u);
  EXPECT_EQ(r.nodes[2].keys, 25u);
}

TEST_F(ScanTest, DivergenceThatHealsWithinGraceIsNotReported) {
  Everywhere(kKey, Converged());
  fakes[2]->states.erase(kKey);  // n3 has not received the cart yet...
  on_sleep = [this] { fakes[2]->states[kKey] = Converged(); };  // ...and gets it meanwhile
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean) << RenderHuman(r);
  EXPECT_EQ(slept, std::chrono::milliseconds(2000));
  EXPECT_EQ(r.keys_converged_during_scan, 1u);
  EXPECT_TRUE(r.divergent.empty());
}

TEST_F(ScanTest, BehindPastGraceIsReportedAndRepaired) {
  CartState full = Converged();
  const CartState behind = full;
  Add(full, kR1, "kiwi", 3);
  Everywhere(kKey, full);
  fakes[1]->states[kKey] = behind;
  Everywhere("cart:bob", Converged());

  Scanner without_repair = [&] {
    options.repair = false;
    return Make();
  }();
  const Report r = without_repair.Scan();
  EXPECT_EQ(OutcomeOf(r), Outcome::kConverging) << RenderHuman(r);
  EXPECT_EQ(ExitCode(r), 0);
  ASSERT_EQ(r.divergent.size(), 1u);
  EXPECT_EQ(r.divergent[0].key, kKey);
  EXPECT_EQ(r.divergent[0].classification.cls, KeyClass::kBehind);
  EXPECT_EQ(r.divergent[0].classification.nodes[1].cls, NodeClass::kBehind);
  EXPECT_GE(r.divergent[0].divergent_seconds, 2.0);
  EXPECT_EQ(fakes[1]->merges, 0);
}

TEST_F(ScanTest, RepairPushesTheJoinToTheNodesBehind) {
  CartState full = Converged();
  const CartState behind = full;
  Add(full, kR1, "kiwi", 3);
  Everywhere(kKey, full);
  fakes[1]->states[kKey] = behind;
  fakes[2]->states.erase(kKey);
  options.repair = true;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(OutcomeOf(r), Outcome::kRepaired) << RenderHuman(r);
  ASSERT_EQ(r.divergent.size(), 1u);
  EXPECT_EQ(r.divergent[0].after_repair, KeyClass::kEqual);
  EXPECT_EQ(r.repairs_attempted, 2u);
  EXPECT_EQ(r.repairs_failed, 0u);
  EXPECT_EQ(fakes[0]->merges, 0);  // current: nothing to push
  EXPECT_EQ(fakes[1]->merges, 1);
  EXPECT_EQ(fakes[2]->merges, 1);
  EXPECT_EQ(fakes[1]->states[kKey], full);
  EXPECT_EQ(fakes[2]->states[kKey], full);
  // The next scan finds nothing.
  const Report again = scanner.Scan();
  EXPECT_EQ(OutcomeOf(again), Outcome::kClean) << RenderHuman(again);
}

TEST_F(ScanTest, RefusedRepairNeedsAPerson) {
  Everywhere(kKey, Converged());
  fakes[2]->states.erase(kKey);
  fakes[2]->allow_repair = false;
  options.repair = true;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(r.repairs_failed, 1u);
  EXPECT_EQ(ExitCode(r), 1);
  EXPECT_EQ(r.divergent[0].after_repair, KeyClass::kBehind);
}

TEST_F(ScanTest, CorruptionIsFoundOnItsNodeOnlyAndNeverRepaired) {
  for (int i = 0; i < 10; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  fakes[1]->states["cart:c4"] = WithAmount(Converged(), "apple", 99);
  fakes[2]->raw["cart:c7"] = "not a state";
  fakes[2]->states.erase("cart:c7");
  options.repair = true;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(ExitCode(r), 1);
  ASSERT_EQ(r.divergent.size(), 2u) << RenderHuman(r);
  EXPECT_EQ(r.divergent[0].key, "cart:c4");
  EXPECT_EQ(r.divergent[1].key, "cart:c7");
  for (const KeyFinding& f : r.divergent) {
    EXPECT_EQ(f.classification.cls, KeyClass::kUnexplainable);
    std::vector<std::size_t> flagged;
    for (std::size_t i = 0; i < f.classification.nodes.size(); ++i) {
      if (f.classification.nodes[i].cls == NodeClass::kUnexplainable) flagged.push_back(i);
    }
    EXPECT_EQ(flagged, std::vector<std::size_t>{f.key == "cart:c4" ? 1u : 2u});
    EXPECT_TRUE(f.repairs.empty());
  }
  EXPECT_EQ(r.repairs_attempted, 0u);
  for (FakeNode* f : fakes) EXPECT_EQ(f->merges, 0);
  EXPECT_EQ(r.keys_equal, 8u);
  EXPECT_TRUE(r.domain.empty());
}

TEST_F(ScanTest, UnreachableNodeIsAScanError) {
  Everywhere(kKey, Converged());
  fakes[2]->up = false;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(ExitCode(r), 2);
  EXPECT_EQ(OutcomeOf(r), Outcome::kNeedsPerson);
  EXPECT_FALSE(r.nodes[2].reachable);
  EXPECT_NE(r.nodes[2].error.find("refused"), std::string::npos);
  EXPECT_EQ(r.keys_equal, 1u);
  EXPECT_TRUE(r.divergent.empty());
}

TEST_F(ScanTest, NodeListingOutsideTheContractIsAScanError) {
  for (int i = 0; i < 5; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  options.max_keys = 4;  // every node lists more: outside what the scan accepts
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(ExitCode(r), 2) << RenderHuman(r);
  EXPECT_EQ(ScanErrors(r), std::vector<std::string>{"3 nodes unreachable"});
}

TEST_F(ScanTest, UnreachableNodeAndCorruptionNeedAPerson) {
  Everywhere(kKey, Converged());
  fakes[1]->states[kKey] = WithAmount(Converged(), "apple", 99);
  fakes[2]->up = false;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(ExitCode(r), 1) << RenderHuman(r);
  EXPECT_FALSE(ScanErrors(r).empty());
}

TEST_F(ScanTest, BrokenCartRuleOnAnAgreeingKeyNeedsAPerson) {
  CartState a;
  CartState b;
  Add(a, kR1, "apple", 600'000);
  Add(b, kR2, "apple", 600'000);
  Everywhere(kKey, Joined(a, b));
  Everywhere("cart:ok", Converged());
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(ExitCode(r), 1);
  ASSERT_EQ(r.domain.size(), 1u);
  EXPECT_EQ(r.domain[0].key, kKey);
  EXPECT_EQ(r.domain[0].nodes, (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_TRUE(Mentions(r.domain[0].violations, "1200000"));
}

TEST_F(ScanTest, DigestsOnlyReadsNothingWhenDigestsAgree) {
  for (int i = 0; i < 5; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  options.read_equal_states = false;
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(r.keys_equal, 5u);
  EXPECT_EQ(r.figures.states_read, 0u);
}

TEST_F(ScanTest, WatchModeRemembersHowLongAKeyHasDiverged) {
  Everywhere(kKey, Converged());
  fakes[2]->states.erase(kKey);
  options.wait_for_grace = false;
  Scanner scanner = Make();

  const Report first = scanner.Scan();
  EXPECT_EQ(slept, Clock::duration{0});
  EXPECT_EQ(first.keys_within_grace, 1u);
  EXPECT_TRUE(first.divergent.empty());
  EXPECT_EQ(OutcomeOf(first), Outcome::kClean);

  now += std::chrono::milliseconds(2500);
  const Report second = scanner.Scan();
  ASSERT_EQ(second.divergent.size(), 1u);
  EXPECT_NEAR(second.divergent[0].divergent_seconds, 2.5, 1e-9);
  EXPECT_NEAR(second.figures.max_divergence_seconds, 2.5, 1e-9);
  EXPECT_TRUE(scanner.resolved().empty());

  now += std::chrono::milliseconds(500);
  fakes[2]->states[kKey] = Converged();
  const Report third = scanner.Scan();
  EXPECT_EQ(OutcomeOf(third), Outcome::kClean);
  ASSERT_EQ(scanner.resolved().size(), 1u);
  EXPECT_EQ(scanner.resolved()[0], std::chrono::milliseconds(3000));
  EXPECT_EQ(third.figures.max_divergence_seconds, 0);
}

TEST_F(ScanTest, DiscoveryAddsMembersAndSkipsThoseThatLeft) {
  Everywhere(kKey, Converged());
  // Only n1 is given; it lists n2 (alive) and n3 (left).
  fakes[0]->members = {{"n2", "127.0.0.1:8082", "alive"}, {"n3", "127.0.0.1:8083", "left"}};
  std::unique_ptr<NodeApi> n2 = std::move(owned[1]);
  owned.resize(1);
  options.discover = true;
  int connects = 0;
  env.connect = [&](const HostPort& a) -> std::unique_ptr<NodeApi> {
    ++connects;
    EXPECT_EQ(a, (HostPort{"127.0.0.1", 8082}));
    return std::move(n2);
  };
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(connects, 1);
  ASSERT_EQ(r.nodes.size(), 2u) << RenderHuman(r);
  EXPECT_EQ(r.nodes[1].name, "n2");
  EXPECT_TRUE(r.nodes[1].discovered);
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean);
  // A second scan reuses the connection.
  EXPECT_EQ(scanner.Scan().nodes.size(), 2u);
  EXPECT_EQ(connects, 1);
}

TEST_F(ScanTest, DiscoveredNodeThatLeftIsDropped) {
  Everywhere(kKey, Converged());
  fakes[0]->members = {{"n2", "127.0.0.1:8082", "alive"}};
  std::unique_ptr<NodeApi> n2 = std::move(owned[1]);
  FakeNode* n2_fake = fakes[1];
  owned.resize(1);
  options.discover = true;
  env.connect = [&](const HostPort&) { return std::move(n2); };
  Scanner scanner = Make();
  EXPECT_EQ(scanner.Scan().nodes.size(), 2u);
  // n2 leaves and stops: n1 lists it as left, and the scan no longer counts it.
  fakes[0]->members = {{"n2", "127.0.0.1:8082", "left"}};
  n2_fake->up = false;
  const Report r = scanner.Scan();
  ASSERT_EQ(r.nodes.size(), 1u) << RenderHuman(r);
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean);
}

// Reading n1 (the owner of r1), then n2 which already holds a dot n1 issued
// in between, looks like a dot n1 never issued; reading n1 again clears it.
TEST_F(ScanTest, DotIssuedBetweenTwoReadsIsNotAFalsePositive) {
  CartState before = Converged();
  CartState after = before;
  Add(after, kR1, "apple", 1);
  Everywhere(kKey, before);
  fakes[1]->states[kKey] = after;  // the listing already differs
  struct Hook final : NodeApi {
    std::unique_ptr<NodeApi> owner;
    NodeApi* inner;
    std::function<void()> before_state;
    explicit Hook(std::unique_ptr<NodeApi> node) : owner(std::move(node)), inner(owner.get()) {}
    StatusOr<ClusterInfo> Cluster() override { return inner->Cluster(); }
    StatusOr<KeyPage> Keys(std::string_view p, std::string_view a, std::size_t l) override {
      return inner->Keys(p, a, l);
    }
    StatusOr<std::optional<StateAnswer>> State(std::string_view key) override {
      if (before_state) before_state();
      return inner->State(key);
    }
    StatusOr<MergeAnswer> Merge(std::string_view k, std::string_view s) override {
      return inner->Merge(k, s);
    }
  };
  auto hook = std::make_unique<Hook>(std::move(owned[1]));
  // When n2 is read, n1 has written the increment and n3 has received it.
  hook->before_state = [&] {
    fakes[0]->states[kKey] = after;
    fakes[2]->states[kKey] = after;
  };
  owned[1] = std::move(hook);
  options.grace = std::chrono::milliseconds(0);
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  EXPECT_EQ(OutcomeOf(r), Outcome::kClean) << RenderHuman(r);
  EXPECT_EQ(r.keys_converged_during_scan, 1u);
}

TEST_F(ScanTest, SharedReplicaIdsNeedAPerson) {
  auto twin = std::make_unique<FakeNode>("n4", kR1);
  owned.push_back(std::move(twin));
  Everywhere(kKey, Converged());
  Scanner scanner = Make();
  const Report r = scanner.Scan();
  ASSERT_EQ(r.cluster_problems.size(), 1u);
  EXPECT_NE(r.cluster_problems[0].find("n1 and n4 share replica id"), std::string::npos);
  EXPECT_EQ(ExitCode(r), 1);
}

// ---------------------------------------------------------------------------
// Progress of large scans

// A node holding `count` keys cart:k<first>.. (zero-padded), every one the
// same converged cart: cheap enough for key spaces past kProgressEvery.
class SyntheticNode final : public NodeApi {
 public:
  SyntheticNode(std::string name, ReplicaId replica, int first, int count)
      : name_(std::move(name)), replica_(replica), bytes_(codec::Encode(Converged())) {
    for (int i = first; i < first + count; ++i) {
      const std::string n = std::to_string(i);
      keys_.push_back("cart:k" + std::string(8 - n.size(), '0') + n);
    }
  }
  StatusOr<ClusterInfo> Cluster() override { return ClusterInfo{name_, replica_.value(), {}}; }
  StatusOr<KeyPage> Keys(std::string_view prefix, std::string_view after,
                         std::size_t limit) override {
    KeyPage page;
    auto it = std::upper_bound(keys_.begin(), keys_.end(), after,
                               [](std::string_view a, const std::string& k) { return a < k; });
    for (; it != keys_.end(); ++it) {
      if (!std::string_view(*it).starts_with(prefix)) continue;
      if (page.keys.size() == limit) {
        page.next = *it;
        break;
      }
      page.keys.push_back(KeyDigest{*it, StateDigest(bytes_)});
    }
    return page;
  }
  StatusOr<std::optional<StateAnswer>> State(std::string_view key) override {
    if (!std::binary_search(keys_.begin(), keys_.end(), key, std::less<>())) {
      return std::optional<StateAnswer>();
    }
    return std::optional(StateAnswer{bytes_, StateDigest(bytes_)});
  }
  StatusOr<MergeAnswer> Merge(std::string_view, std::string_view) override {
    return Status(StatusCode::kFailedPrecondition, "404");
  }

 private:
  std::string name_;
  ReplicaId replica_;
  std::string bytes_;
  std::vector<std::string> keys_;
};

struct ProgressRun {
  Report report;
  std::vector<ScanProgress> calls;
};

// One scan of two synthetic nodes holding keys [first, first + count) each.
// Their replica ids are not those of the carts' dots (kR1, kR2), so a key
// one of them lacks is behind, not a dot beyond its issuer.
ProgressRun ScanSynthetic(int first1, int count1, int first2, int count2) {
  std::vector<Scanner::Node> nodes;
  nodes.push_back({HostPort{"127.0.0.1", 8081},
                   std::make_unique<SyntheticNode>("n1", ReplicaId{0x5555}, first1, count1)});
  nodes.push_back({HostPort{"127.0.0.1", 8082},
                   std::make_unique<SyntheticNode>("n2", ReplicaId{0x6666}, first2, count2)});
  ProgressRun run;
  ScanEnvironment env;
  Clock::time_point now{std::chrono::hours(1)};
  env.now = [&now] { return now += std::chrono::microseconds(10); };
  env.sleep = [](Clock::duration) {};
  env.progress = [&run](const ScanProgress& p) { run.calls.push_back(p); };
  Scanner scanner(std::move(nodes), ScanOptions{}, env);
  run.report = scanner.Scan();
  return run;
}

std::vector<std::string> ProgressLines(const std::vector<ScanProgress>& calls) {
  std::vector<std::string> out;
  for (const ScanProgress& p : calls) {
    std::string line = ProgressLine(p);
    line.erase(line.rfind(" ("));  // the seconds vary
    out.push_back(line);
  }
  return out;
}

TEST(Progress, LargeKeySpaceReportsListingReadingAndTheEnd) {
  const ProgressRun run = ScanSynthetic(0, 25'000, 0, 25'000);
  EXPECT_EQ(OutcomeOf(run.report), Outcome::kClean);
  ASSERT_EQ(run.report.keys_scanned, 25'000u);
  ASSERT_EQ(run.report.figures.states_read, 25'000u);
  // Pages of 1,000: a line once a node passes 10,000 and 20,000 keys; one as
  // reading starts, one per 10,000 states read; one at the end.
  EXPECT_EQ(ProgressLines(run.calls),
            (std::vector<std::string>{
                "coherence-check: n1: 11000 keys listed",
                "coherence-check: n1: 21000 keys listed",
                "coherence-check: n2: 11000 keys listed",
                "coherence-check: n2: 21000 keys listed",
                "coherence-check: 25000 keys listed, reading states",
                "coherence-check: 10000 states read, 9999 of 25000 keys judged",
                "coherence-check: 20000 states read, 19999 of 25000 keys judged",
                "coherence-check: scan done: 25000 keys, 25000 states read",
            }));
  for (std::size_t i = 1; i < run.calls.size(); ++i) {
    EXPECT_GT(run.calls[i].seconds, run.calls[i - 1].seconds);
  }
  EXPECT_EQ(run.calls.back().stage, ScanProgress::Stage::kDone);
}

TEST(Progress, ManyKeysInAllButFewPerNodeReportReadingOnly) {
  // 6,000 keys on each node, none in common: 12,000 keys in the scan.
  const ProgressRun run = ScanSynthetic(0, 6'000, 6'000, 6'000);
  ASSERT_EQ(run.report.keys_scanned, 12'000u);
  EXPECT_EQ(run.report.keys_within_grace, 12'000u) << RenderHuman(run.report);
  ASSERT_FALSE(run.calls.empty());
  EXPECT_EQ(run.calls.front().stage, ScanProgress::Stage::kReading);
  EXPECT_EQ(run.calls.front().keys, 12'000u);
  EXPECT_EQ(run.calls.back().stage, ScanProgress::Stage::kDone);
  for (const ScanProgress& p : run.calls) EXPECT_NE(p.stage, ScanProgress::Stage::kListing);
  // Every key is absent on one node: read on both, and again after the
  // grace wait.
  EXPECT_EQ(run.report.figures.states_read, 48'000u);
  EXPECT_EQ(ProgressLines(run.calls),
            (std::vector<std::string>{
                "coherence-check: 12000 keys listed, reading states",
                "coherence-check: 10000 states read, 4999 of 12000 keys judged",
                "coherence-check: 20000 states read, 9999 of 12000 keys judged",
                "coherence-check: 30000 states read, after the grace wait 2999 of 12000 differing "
                "keys read again",
                "coherence-check: 40000 states read, after the grace wait 7999 of 12000 differing "
                "keys read again",
                "coherence-check: scan done: 12000 keys, 48000 states read",
            }));
}

TEST(Progress, SmallScansStayQuiet) {
  // Up to kProgressEvery keys: not a word, though 10,000 states are read.
  const ProgressRun at_the_mark = ScanSynthetic(0, 10'000, 0, 10'000);
  ASSERT_EQ(at_the_mark.report.keys_scanned, kProgressEvery);
  ASSERT_EQ(at_the_mark.report.figures.states_read, kProgressEvery);
  EXPECT_TRUE(at_the_mark.calls.empty()) << ProgressLines(at_the_mark.calls)[0];
  EXPECT_TRUE(ScanSynthetic(0, 25, 0, 25).calls.empty());
}

TEST_F(ScanTest, ProgressIsOptionalAndQuietForASmallCluster) {
  for (int i = 0; i < 25; ++i) Everywhere("cart:c" + std::to_string(i), Converged());
  int calls = 0;
  env.progress = [&calls](const ScanProgress&) { ++calls; };
  Scanner scanner = Make();
  EXPECT_EQ(OutcomeOf(scanner.Scan()), Outcome::kClean);
  EXPECT_EQ(calls, 0);
}

TEST(Progress, LinesForAPerson) {
  ScanProgress p;
  p.stage = ScanProgress::Stage::kListing;
  p.node = "n\x1b";
  p.keys_listed = 11'000;
  p.seconds = 1.25;
  EXPECT_EQ(ProgressLine(p), "coherence-check: n\\x1b: 11000 keys listed (1.2 s)");
  p.stage = ScanProgress::Stage::kDone;
  p.keys = 30'000;
  p.states_read = 30'002;
  EXPECT_EQ(ProgressLine(p), "coherence-check: scan done: 30000 keys, 30002 states read (1.2 s)");
  p.stage = ScanProgress::Stage::kRepairing;
  p.differing = 400;
  p.differing_done = 120;
  EXPECT_EQ(
      ProgressLine(p),
      "coherence-check: 30002 states read, repairing: 120 of 400 differing keys done (1.2 s)");
}

// ---------------------------------------------------------------------------
// Tracker and metrics

TEST(DivergenceTracker, RemembersFirstSightingUntilCleared) {
  DivergenceTracker t;
  const Clock::time_point t0{std::chrono::seconds(10)};
  EXPECT_EQ(t.Mark("a", t0), t0);
  EXPECT_EQ(t.Mark("a", t0 + std::chrono::seconds(5)), t0);
  t.Mark("b", t0 + std::chrono::seconds(1));
  EXPECT_EQ(t.Longest(t0 + std::chrono::seconds(6)), std::chrono::seconds(6));
  EXPECT_EQ(t.Clear("a", t0 + std::chrono::seconds(7)), std::chrono::seconds(7));
  EXPECT_FALSE(t.Clear("a", t0).has_value());
  const auto ended = t.Retain({}, t0 + std::chrono::seconds(3));
  EXPECT_EQ(ended, std::vector<Clock::duration>{std::chrono::seconds(2)});
  EXPECT_EQ(t.size(), 0u);
}

TEST(Metrics, FollowTheReport) {
  prometheus::Registry registry;
  CoherenceMetrics metrics(registry);
  Report r = CleanReport();
  r.nodes[1].reachable = false;
  r.keys_within_grace = 2;
  r.divergent.push_back(Finding(KeyClass::kBehind));
  r.divergent.push_back(Finding(KeyClass::kUnexplainable));
  r.repairs_attempted = 3;
  r.repairs_failed = 1;
  r.figures.max_divergence_seconds = 4.5;
  metrics.Observe(r, {std::chrono::milliseconds(1500)}, 1000);
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  for (const char* line : {
           "converge_coherence_scans_total 1",
           "converge_coherence_keys_scanned 3",
           "converge_coherence_nodes_unreachable 1",
           "converge_coherence_keys_divergent{reason=\"behind\"} 1",
           "converge_coherence_keys_divergent{reason=\"concurrent\"} 0",
           "converge_coherence_keys_divergent{reason=\"unexplainable\"} 1",
           "converge_coherence_keys_within_grace 2",
           "converge_coherence_key_divergence_seconds 4.5",
           "converge_coherence_repairs_total{result=\"ok\"} 2",
           "converge_coherence_repairs_total{result=\"failed\"} 1",
           "converge_coherence_needs_person 1",
           "converge_coherence_scan_incomplete 1",
           "converge_coherence_divergence_resolved_seconds_count 1",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(Metrics, UnreachableNodeIsAnIncompleteScanNotADataProblem) {
  prometheus::Registry registry;
  CoherenceMetrics metrics(registry);
  Report r = CleanReport();
  r.nodes[1].reachable = false;
  metrics.Observe(r, {}, 1000);
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("converge_coherence_needs_person 0"), std::string::npos) << text;
  EXPECT_NE(text.find("converge_coherence_scan_incomplete 1"), std::string::npos) << text;
}

}  // namespace
}  // namespace converge::cart::coherence
