#include "crdt/codec/context_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "crdt/crdt.h"

namespace converge::codec {
namespace {

using crdt::CausalContext;
using crdt::Dot;
using crdt::ReplicaId;
using Entry = CausalContext::Entry;

CausalContext Ctx(std::vector<Entry> vector, std::vector<Dot> cloud) {
  return CausalContext::FromParts(vector, cloud);
}

// Replica ids as converge mints them: random 64-bit values.
const ReplicaId kA{0x9c1f'2e4a'77d0'1b35};
const ReplicaId kB{0x13a8'0f6c'd2e9'4471};
const ReplicaId kC{0xfe02'5b19'63aa'c0de};

TEST(ContextCodecTest, RoundTripsAndIsCanonical) {
  const std::vector<CausalContext> cases = {
      CausalContext{},
      Ctx({{kA, 1}}, {}),
      Ctx({}, {{kA, 5}}),
      Ctx({{kA, 12}, {kB, 3}}, {{kA, 14}, {kA, 15}, {kA, 16}, {kB, 9}, {kC, 2}}),
      Ctx({{kA, std::uint64_t{1} << 19}}, {{kB, std::uint64_t{1} << 62}}),
  };
  for (const CausalContext& c : cases) {
    const std::string bytes = EncodeContext(c);
    const StatusOr<CausalContext> back = DecodeContext(bytes);
    ASSERT_TRUE(back.ok()) << back.status() << " for " << c;
    EXPECT_EQ(*back, c);
    EXPECT_EQ(EncodeContext(*back), bytes);
  }
}

TEST(ContextCodecTest, ACartLineOfAHandfulOfReplicasTakesAFewBytes) {
  // The whole context of a cart written at five replicas: a few bytes each.
  const CausalContext cart =
      Ctx({{kA, 40}, {kB, 12}, {kC, 7}, {ReplicaId{4}, 3}, {ReplicaId{5}, 1}}, {{kA, 44}});
  EXPECT_LT(EncodeContext(cart).size(), 60u);
  // One line added once: its dot.
  EXPECT_LE(EncodeContext(Ctx({}, {{kA, 41}})).size(), 16u);
}

TEST(ContextCodecTest, KeyedContextsRoundTripSortedAndWithoutEmpties) {
  const std::vector<KeyedContext> in = {
      {9, Ctx({}, {{kA, 3}})},
      {2, Ctx({{kB, 1}}, {{kA, 7}, {kA, 8}})},
      {5, CausalContext{}},
  };
  const std::string bytes = EncodeContexts(in);
  const StatusOr<std::vector<KeyedContext>> back = DecodeContexts(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0], in[1]);
  EXPECT_EQ((*back)[1], in[0]);
  EXPECT_TRUE(DecodeContexts(EncodeContexts({})).ok());
  const std::vector<KeyedContext> twice = {{1, Ctx({{kA, 1}}, {})}, {1, Ctx({{kB, 1}}, {})}};
  EXPECT_THROW((void)EncodeContexts(twice), std::invalid_argument);
}

TEST(ContextCodecTest, RefusesEveryPrefixAndEveryAppendage) {
  const std::string one = EncodeContext(Ctx({{kA, 3}}, {{kB, 9}, {kB, 10}}));
  const std::string set =
      EncodeContexts(std::vector<KeyedContext>{{1, Ctx({{kA, 3}}, {})}, {2, Ctx({}, {{kB, 9}})}});
  for (std::size_t n = 0; n < one.size(); ++n) {
    EXPECT_FALSE(DecodeContext(one.substr(0, n)).ok()) << n;
  }
  for (std::size_t n = 0; n < set.size(); ++n) {
    EXPECT_FALSE(DecodeContexts(set.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeContext(one + '\0').ok());
  EXPECT_FALSE(DecodeContexts(set + '\0').ok());
  EXPECT_FALSE(DecodeContext(set).ok()) << "the other shape";
  EXPECT_FALSE(DecodeContexts(one).ok()) << "the other shape";
}

// Hand-made inputs that break one rule each.
TEST(ContextCodecTest, RefusesNonCanonicalAndOutOfRangeInputs) {
  using namespace std::string_literals;  // NOLINT(google-build-using-namespace)
  const auto fixed = [](std::uint64_t v) {
    std::string s;
    for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  };
  const std::string a = fixed(1), b = fixed(2);
  const std::string head = std::string("\x01\x00", 2);
  struct Case {
    std::string bytes;
    const char* why;
  };
  const std::vector<Case> cases = {
      {std::string("\x02\x00\x00\x00\x00", 5), "version 2"},
      {std::string("\x01\x07\x00\x00\x00", 5), "unknown kind"},
      {head + "\x02"s + b + a + "\x00\x00"s, "replicas out of order"},
      {head + "\x01"s + a + "\x00\x00"s, "a replica nobody uses"},
      {head + "\x01"s + a + "\x01\x00\x00\x00"s, "a vector entry of 0"},
      {head + "\x01"s + a + "\x01\x01\x01\x00"s, "a replica index out of range"},
      {head + "\x01"s + a + "\x01\x00\x80\x01\x00"s, "fine (control)"},
      {head + "\x01"s + a + "\x01\x00\x81\x00\x00"s, "a varint not in shortest form"},
      {head + "\x01"s + a + "\x00\x01\x00\x01\x00"s, "a run from dot 1 (the vector's)"},
      {head + "\x01"s + a + "\x01\x00\x03\x01\x00\x04\x00"s, "a run touching the vector entry"},
      {head + "\x01"s + a + "\x00\x02\x00\x05\x00\x00\x06\x00"s, "two runs that touch"},
      {head + "\x01"s + a + "\x00\x02\x00\x09\x00\x00\x05\x00"s, "runs out of order"},
      {head + "\x01"s + a + "\x00\x01\x00\x00\x00"s, "a run from dot 0"},
      {head + "\x01"s + a + "\x00\x01\x00\x05\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s,
       "a run past 2^64"},
  };
  for (const Case& c : cases) {
    const StatusOr<CausalContext> got = DecodeContext(c.bytes);
    if (std::string(c.why) == "fine (control)") {
      EXPECT_TRUE(got.ok()) << got.status();
      continue;
    }
    EXPECT_FALSE(got.ok()) << c.why;
    if (!got.ok()) {
      EXPECT_FALSE(got.status().message().empty()) << c.why;
    }
  }
}

TEST(ContextCodecTest, EnforcesItsLimits) {
  ContextLimits small;
  small.max_bytes = 40;
  small.max_replicas = 2;
  small.max_dots = 100;
  small.max_entries = 2;
  EXPECT_FALSE(DecodeContext(EncodeContext(Ctx({{kA, 1}, {kB, 1}, {kC, 1}}, {})), small).ok());
  EXPECT_FALSE(DecodeContext(EncodeContext(Ctx({{kA, 101}}, {})), small).ok());
  EXPECT_TRUE(DecodeContext(EncodeContext(Ctx({{kA, 100}}, {})), small).ok());
  std::vector<Dot> cloud;
  for (std::uint64_t c = 3; c < 40; c += 2) cloud.push_back({kA, c});
  EXPECT_FALSE(DecodeContext(EncodeContext(Ctx({}, cloud)), small).ok()) << "over 40 bytes";
  const std::vector<KeyedContext> three = {
      {1, Ctx({{kA, 1}}, {})}, {2, Ctx({{kA, 1}}, {})}, {3, Ctx({{kA, 1}}, {})}};
  EXPECT_FALSE(DecodeContexts(EncodeContexts(three), small).ok());
  // A run claiming 2^40 dots is refused before any is made.
  ContextLimits defaults;
  const std::string huge = EncodeContext(Ctx({}, {{kA, 5}}));
  std::string forged = huge.substr(0, huge.size() - 1);
  forged += std::string("\x80\x80\x80\x80\x80\x20", 6);  // extra = 2^40
  const StatusOr<CausalContext> got = DecodeContext(forged, defaults);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kResourceExhausted);
}

// Random contexts, random byte flips: a flip either is refused or decodes to
// a value that encodes back to exactly those bytes.
TEST(ContextCodecTest, RandomContextsAndFlipsKeepTheContract) {
  std::mt19937_64 rng(20261207);
  for (int round = 0; round < 2000; ++round) {
    std::vector<Entry> vector;
    std::vector<Dot> cloud;
    const int replicas = static_cast<int>(rng() % 5);
    for (int r = 0; r < replicas; ++r) {
      const ReplicaId id{rng()};
      if (rng() % 2) vector.push_back({id, 1 + rng() % 50});
      for (int k = 0; k < static_cast<int>(rng() % 4); ++k) cloud.push_back({id, 1 + rng() % 80});
    }
    const CausalContext c = Ctx(vector, cloud);
    std::string bytes = EncodeContext(c);
    ASSERT_EQ(*DecodeContext(bytes), c);
    bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    const StatusOr<CausalContext> flipped = DecodeContext(bytes);
    if (flipped.ok()) {
      EXPECT_EQ(EncodeContext(*flipped), bytes);
    }
  }
}

}  // namespace
}  // namespace converge::codec
