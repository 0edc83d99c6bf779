#include "examples/cart/cart.h"

#include <gtest/gtest.h>

#include <string>

namespace converge::cart {
namespace {

TEST(CartIdTest, AcceptsUnreservedCharactersOnly) {
  EXPECT_FALSE(CheckCartId("alice"));
  EXPECT_FALSE(CheckCartId("A-z_0.9~"));
  EXPECT_FALSE(CheckCartId(std::string(128, 'a')));
  EXPECT_TRUE(CheckCartId(""));
  EXPECT_TRUE(CheckCartId(std::string(129, 'a')));
  for (const char* bad : {"a b", "a/b", "a%2F", "caf\xc3\xa9", "a\nb", "a:b", "a?b"}) {
    EXPECT_TRUE(CheckCartId(bad)) << bad;
  }
}

TEST(SkuTest, AcceptsWellFormedUtf8WithoutControlsOrNoncharacters) {
  for (const char* good : {"apple", "caf\xc3\xa9",     // café
                           "\xe2\x82\xac",             // €
                           "\xf0\x9f\x8d\x8e",         // 🍎 (4 bytes)
                           "a b", "x\xef\xbf\xbd"}) {  // U+FFFD is a character
    EXPECT_FALSE(CheckSku(good)) << good;
  }
  EXPECT_FALSE(CheckSku(std::string(128, 'x')));
  EXPECT_TRUE(CheckSku(""));
  EXPECT_TRUE(CheckSku(std::string(129, 'x')));
  EXPECT_TRUE(CheckSku(std::string(43, '\xe2') + "x"));  // truncated sequences
  const char* bad[] = {
      "a\tb",              // C0 control
      "a\x7f",             // DEL
      "\xc2\x85",          // C1 control (NEL)
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong
      "\xed\xa0\x80",      // surrogate U+D800
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\xef\xb7\x90",      // U+FDD0 noncharacter
      "\xef\xbf\xbe",      // U+FFFE
      "\xf0\x9f\xbf\xbf",  // U+1FFFF
      "\xff",              // never valid
      "\xe2\x82",          // truncated
  };
  for (const char* b : bad) EXPECT_TRUE(CheckSku(b)) << testing::PrintToString(b);
  EXPECT_TRUE(CheckSku(std::string("a\0b", 3)));  // NUL
}

TEST(CartJsonTest, SortsLinesBySku) {
  CartState cart;
  const crdt::ReplicaId r{1};
  cart.Update("pear", [&](crdt::CausalCounter& q) { return q.Increment(r, 1); });
  cart.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(r, 2); });
  EXPECT_EQ(
      CartJson("alice", cart),
      R"({"cart":"alice","items":[{"sku":"apple","quantity":2},{"sku":"pear","quantity":1}]})");
  EXPECT_EQ(CartJson("empty", CartState{}), R"({"cart":"empty","items":[]})");
}

TEST(DomainRulesTest, ConcurrentAdditionsPastTheLimitAreReported) {
  const crdt::ReplicaId a{1}, b{2};
  CartState on_a, on_b;
  on_a.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(a, 600'000); });
  on_b.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(b, 600'000); });
  EXPECT_TRUE(DomainViolations(on_a).empty());
  on_a.Join(on_b);
  const auto v = DomainViolations(on_a);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("1200000"), std::string::npos) << v[0];
}

}  // namespace
}  // namespace converge::cart
