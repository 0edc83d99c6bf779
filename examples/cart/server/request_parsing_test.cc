#include "examples/cart/server/request_parsing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "examples/cart/server/http_server.h"

namespace converge::cart {
namespace {

TEST(ParseObjectTest, AcceptsAnObjectOfKnownFields) {
  StatusOr<nlohmann::json> j = ParseObject(R"({"sku":"apple","quantity":2})", {"sku", "quantity"});
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["sku"], "apple");
}

TEST(ParseObjectTest, RefusesWhatTheContractRefuses) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not valid JSON"},
      {"nope", "not valid JSON"},
      {R"({"sku":"a",})", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {"3", "must be a JSON object"},
      {R"({"sku":"a","sku":"b"})", "duplicate key 'sku'"},
      {R"({"sku":{"x":1,"x":2}})", "duplicate key 'x'"},
      {R"({"sku":"a","colour":"red"})", "unknown field 'colour'"},
      {R"({"sku":[[[[[[[[[1]]]]]]]]]})", "nested deeper than 8"},
      {"{\"sku\":\"\xff\"}", "not valid JSON"},   // not UTF-8
      {R"({"sku":"\ud800"})", "not valid JSON"},  // lone surrogate
      {R"({"quantity":NaN})", "not valid JSON"},
      {R"({"quantity":Infinity})", "not valid JSON"},
  };
  for (const auto& [body, reason] : cases) {
    StatusOr<nlohmann::json> j = ParseObject(body, {"sku", "quantity"});
    ASSERT_FALSE(j.ok()) << body;
    EXPECT_NE(j.status().message().find(reason), std::string::npos)
        << body << " -> " << j.status().message();
  }
  // A raw NUL does not end the body (the parser would stop there and take
  // the valid object before it).
  const std::string nul = std::string(R"({"sku":"a","quantity":1})") + '\0' + "trailing";
  EXPECT_FALSE(ParseObject(nul, {"sku", "quantity"}).ok());
  // Brackets inside strings do not count as nesting.
  EXPECT_TRUE(ParseObject(R"({"sku":"[[[[[[[[[[{{{{{{"})", {"sku"}).ok());
  // 8 levels are fine.
  EXPECT_TRUE(ParseObject(R"({"sku":[[[[[[[1]]]]]]]})", {"sku"}).ok());
  // Deep input far past the limit is refused without recursing into it.
  EXPECT_FALSE(ParseObject(std::string(1'000'000, '['), {"sku"}).ok());
}

TEST(QuantityTest, OnlyIntegersInRange) {
  const auto q = [](const char* body, std::uint64_t min) {
    return Quantity(*ParseObject(body, {"quantity"}), min);
  };
  EXPECT_EQ(*q(R"({"quantity":1})", 1), 1u);
  EXPECT_EQ(*q(R"({"quantity":1000000})", 1), 1'000'000u);
  EXPECT_EQ(*q(R"({"quantity":0})", 0), 0u);
  for (const char* bad :
       {R"({"quantity":0})", R"({"quantity":-1})", R"({"quantity":1000001})", R"({"quantity":2.0})",
        R"({"quantity":1e3})", R"({"quantity":"2"})", R"({"quantity":null})",
        R"({"quantity":true})", R"({"quantity":9223372036854775808})",
        R"({"quantity":18446744073709551616})", R"({})"}) {
    StatusOr<nlohmann::json> j = ParseObject(bad, {"quantity"});
    if (!j.ok()) continue;  // refused earlier, as it should be
    EXPECT_FALSE(Quantity(*j, 1).ok()) << bad;
  }
}

TEST(SkuFieldTest, ValidatesTheSku) {
  EXPECT_EQ(*SkuField(*ParseObject(R"({"sku":"caf\u00e9"})", {"sku"})), "caf\xc3\xa9");
  EXPECT_FALSE(SkuField(*ParseObject(R"({"sku":""})", {"sku"})).ok());
  EXPECT_FALSE(SkuField(*ParseObject(R"({"sku":"\u0007"})", {"sku"})).ok());
  EXPECT_FALSE(SkuField(*ParseObject(R"({"sku":"\ufdd0"})", {"sku"})).ok());
  EXPECT_FALSE(SkuField(*ParseObject(R"({"sku":7})", {"sku"})).ok());
  EXPECT_FALSE(SkuField(*ParseObject(R"({})", {"sku"})).ok());
}

TEST(Base64Test, RoundTripsAndIsStrict) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba",
                                                       "foobar", std::string("\0\xff\x10", 3)}) {
    const std::string e = Base64Encode(s);
    EXPECT_EQ(Base64Decode(e), s) << e;
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  for (const char* bad :
       {"Zm8", "Zm9=v", "Zm8==", "Zm!=", "Zm9 YmFy", "Zn==", "Zm9=", "====", "A==="}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;  // "Zn==" and "Zm9=" have stray bits
  }
}

TEST(Hex64Test, SixteenDigits) {
  EXPECT_EQ(Hex64(0), "0000000000000000");
  EXPECT_EQ(Hex64(0xdeadbeefULL), "00000000deadbeef");
}

TEST(PercentDecodeTest, DecodesAndRefusesMalformedEscapes) {
  EXPECT_EQ(PercentDecode("caf%C3%A9"), "caf\xc3\xa9");
  EXPECT_EQ(PercentDecode("a%2Fb"), "a/b");
  EXPECT_EQ(PercentDecode("a+b"), "a+b");
  EXPECT_EQ(PercentDecode(""), "");
  for (const char* bad : {"%", "%2", "a%zz", "%g0", "100%"})
    EXPECT_FALSE(PercentDecode(bad)) << bad;
}

TEST(QueryParamTest, FindsAndDecodes) {
  EXPECT_EQ(*QueryParam("w=majority", "w"), "majority");
  EXPECT_EQ(*QueryParam("a=1&w=all&b=2", "w"), "all");
  EXPECT_EQ(*QueryParam("prefix=cart%3A&after=", "prefix"), "cart:");
  EXPECT_EQ(*QueryParam("q=a+b", "q"), "a b");
  EXPECT_EQ(*QueryParam("w", "w"), "");
  EXPECT_FALSE(QueryParam("ww=1", "w")->has_value());
  EXPECT_FALSE(QueryParam("", "w")->has_value());
  // A malformed value is an error, not "absent" (which would mean local).
  EXPECT_FALSE(QueryParam("w=%zz", "w").ok());
  EXPECT_FALSE(QueryParam("w=%4", "w").ok());
}

}  // namespace
}  // namespace converge::cart
