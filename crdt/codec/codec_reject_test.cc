// Decoding untrusted bytes (TESTPLAN S2, S4): malformed input and
// well-formed but illegal states are rejected with a reason, never a crash
// or an exception, and non-canonical encodings are rejected unless the
// caller trusts the bytes. Resource limits (S3): decode_limits_test.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/codec/testing/sample_states.h"

namespace converge::codec {
namespace {

using crdt::CausalCounter;
using crdt::EwFlag;
using crdt::GCounter;
using crdt::HlcTimestamp;
using crdt::LwwRegister;
using crdt::MvRegister;
using crdt::OrMap;
using crdt::OrSet;
using crdt::PnCounter;
using crdt::ReplicaId;

constexpr ReplicaId kR{0x9e3779b97f4a7c15ULL};
constexpr ReplicaId kS{0x243f6a8885a308d3ULL};

using StringSet = OrSet<std::string>;
using Cart = OrMap<std::string, CausalCounter>;
using MapOfSets = OrMap<int, OrSet<std::string>>;

template <class T>
Columns ColumnsOf(const T& value) {
  Columns c;
  c.type_id = TypeIdOf<T>();
  TypeCodec<T>::Write(value, c);
  return c;
}

DecodeOptions Trusted() {
  DecodeOptions options;
  options.trusted = true;
  return options;
}

// Decodes `bytes` as T, which must fail with `code` and a message containing
// `reason`, and must not throw.
template <class T>
void ExpectRejectedBytes(const std::string& bytes, std::string_view reason,
                         const DecodeOptions& options = {},
                         StatusCode code = StatusCode::kInvalidArgument) {
  std::optional<StatusOr<T>> decoded;
  EXPECT_NO_THROW(decoded.emplace(Decode<T>(bytes, options)));
  ASSERT_TRUE(decoded.has_value());
  ASSERT_FALSE(decoded->ok()) << "accepted: " << decoded->value();
  EXPECT_EQ(decoded->status().code(), code) << decoded->status();
  EXPECT_NE(decoded->status().message().find(reason), std::string::npos)
      << "expected a reason containing \"" << reason << "\", got: " << decoded->status();
}

// An illegal state: rejected whether or not the bytes are trusted.
template <class T>
void ExpectIllegal(const Columns& c, std::string_view reason) {
  const std::string bytes = EncodeColumns(c);
  ExpectRejectedBytes<T>(bytes, reason);
  ExpectRejectedBytes<T>(bytes, reason, Trusted());
}

// A legal state spelt in a way Encode never writes: rejected from untrusted
// input; a trusted decode reads it as `meant`.
template <class T>
void ExpectNonCanonical(const Columns& c, const T& meant) {
  const std::string bytes = EncodeColumns(c);
  ASSERT_NE(bytes, Encode(meant));
  ExpectRejectedBytes<T>(bytes, "not the canonical encoding");
  const StatusOr<T> trusted = Decode<T>(bytes, Trusted());
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(*trusted, meant);
}

// ---------------------------------------------------------------------------
// Malformed bytes.

TEST(RejectTest, EmptyInput) {
  ExpectRejectedBytes<StringSet>("", "empty input");
  ExpectRejectedBytes<GCounter>("", "empty input");
}

template <class T>
class RejectTypedTest : public ::testing::Test {};
template <class Tuple>
struct ToGTestTypes;
template <class... T>
struct ToGTestTypes<std::tuple<T...>> {
  using type = ::testing::Types<T...>;
};
TYPED_TEST_SUITE(RejectTypedTest, ToGTestTypes<testing::CodecTypes>::type);

TYPED_TEST(RejectTypedTest, EveryTruncationIsRejected) {
  for (const auto& sample : testing::Samples<TypeParam>()) {
    SCOPED_TRACE(sample.name);
    const std::string bytes = Encode(sample.value);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      std::optional<StatusOr<TypeParam>> decoded;
      ASSERT_NO_THROW(decoded.emplace(Decode<TypeParam>(bytes.substr(0, n))));
      ASSERT_FALSE(decoded->ok()) << "prefix of " << n << " of " << bytes.size() << " bytes";
      EXPECT_FALSE(decoded->status().message().empty());
    }
  }
}

TYPED_TEST(RejectTypedTest, TrailingBytesAreRejected) {
  const auto samples = testing::Samples<TypeParam>();
  const std::string bytes = Encode(samples.back().value);
  for (const std::string& tail :
       {std::string(1, '\0'), std::string(1, '\x01'), std::string(8, '\0'), std::string(2, '\0'),
        std::string("\xff\x01\x02\x03\x04\x05\x06\x07\x08\x00", 10), bytes}) {
    ExpectRejectedBytes<TypeParam>(bytes + tail, "trailing bytes");
    ExpectRejectedBytes<TypeParam>(bytes + tail, "trailing bytes", Trusted());
  }
}

// Every byte of a real encoding replaced by every other value: the result
// is rejected with a reason, or it is the canonical encoding of another
// state (and then decodes to that state).
TYPED_TEST(RejectTypedTest, EverySingleByteCorruptionIsRejectedOrCanonical) {
  std::size_t tried = 0;
  std::size_t accepted = 0;
  for (const auto& sample : testing::Samples<TypeParam>()) {
    if (sample.name != "all-deltas" && sample.name != "last-delta") continue;
    const std::string bytes = Encode(sample.value);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      std::string corrupt = bytes;
      for (int v = 0; v < 256; ++v) {
        if (static_cast<char>(v) == bytes[i]) continue;
        corrupt[i] = static_cast<char>(v);
        ++tried;
        std::optional<StatusOr<TypeParam>> decoded;
        ASSERT_NO_THROW(decoded.emplace(Decode<TypeParam>(corrupt)));
        if (!decoded->ok()) {
          ASSERT_FALSE(decoded->status().message().empty());
          continue;
        }
        ++accepted;
        ASSERT_EQ(Encode(decoded->value()), corrupt) << sample.name << " byte " << i;
        ASSERT_FALSE(decoded->value() == sample.value);
      }
    }
  }
  std::cout << "[ figure   ] " << tried << " corruptions, " << accepted
            << " accepted as the canonical encoding of another state\n";
}

// ---------------------------------------------------------------------------
// Header: version and type.

TEST(RejectTest, UnknownVersions) {
  StringSet s;
  s.Add(kR, "a");
  for (const std::uint16_t version : {std::uint16_t{0}, std::uint16_t{2}, std::uint16_t{0xffff}}) {
    Columns c = ColumnsOf(s);
    c.version = version;
    ExpectIllegal<StringSet>(c, "format version " + std::to_string(version) +
                                    " is not supported (this build reads version 1)");
  }
}

TEST(RejectTest, UnknownTypeId) {
  Columns c = ColumnsOf(StringSet{});
  c.type_id = 0x12345678;
  ExpectIllegal<StringSet>(c, "encoded type id 305419896 is not or_set<bytes>");
  c.type_id = TypeIdOf("or_set<utf8>");  // a type this build does not have
  ExpectIllegal<StringSet>(c, "is not or_set<bytes>");
}

// ---------------------------------------------------------------------------
// Replicas and dots.

TEST(RejectTest, ReplicasUnsortedOrDuplicated) {
  GCounter g;
  g.Increment(kR, 1);
  g.Increment(kS, 2);
  Columns c = ColumnsOf(g);
  ASSERT_EQ(c.replicas.size(), 2u);
  std::swap(c.replicas[0], c.replicas[1]);
  ExpectIllegal<GCounter>(c, "replica ids not sorted and unique");
  c.replicas[1] = c.replicas[0];
  ExpectIllegal<GCounter>(c, "replica ids not sorted and unique");

  StringSet s;
  s.Add(kR, "a");
  s.Add(kS, "b");
  Columns d = ColumnsOf(s);
  d.replicas = {d.replicas[1], d.replicas[0]};
  ExpectIllegal<StringSet>(d, "replica ids not sorted and unique");
}

TEST(RejectTest, ReplicaIndexOutOfRange) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kS, "b");
  Columns c = ColumnsOf(s);
  ASSERT_EQ(c.dot_replica.size(), 2u);
  c.dot_replica[1] = 2;
  ExpectIllegal<StringSet>(c, "store dot names replica #2 of 2");

  Columns none = ColumnsOf(s);
  none.replicas.clear();
  none.vector.clear();
  ExpectIllegal<StringSet>(none, "of 0");

  StringSet source;
  source.Add(kR, "a");
  source.Add(kR, "b");
  StringSet gap;
  gap.Join(source.Add(kR, "c"));  // (r,3) without (r,1), (r,2)
  gap.Join(source.Remove("c"));
  Columns cloud = ColumnsOf(gap);
  ASSERT_EQ(cloud.cloud_replica.size(), 1u);
  cloud.cloud_replica[0] = 7;
  ExpectIllegal<StringSet>(cloud, "context dot names replica #7 of 1");

  LwwRegister<std::string> reg;
  reg.Assign(kR, HlcTimestamp{1, 0}, "v");
  Columns lww = ColumnsOf(reg);
  lww.lww_writer = 1;
  ExpectIllegal<LwwRegister<std::string>>(lww, "register writer out of range");
}

TEST(RejectTest, DotCounterZero) {
  EwFlag f;
  f.Enable(kR);
  Columns c = ColumnsOf(f);
  c.dot_counter[0] = 0;
  ExpectIllegal<EwFlag>(c, "store dot has counter 0");

  StringSet s;
  s.Add(kR, "a");
  Columns cloud = ColumnsOf(s);
  cloud.cloud_replica = {0};
  cloud.cloud_counter = {0};
  ExpectIllegal<StringSet>(cloud, "context dot has counter 0");
}

TEST(RejectTest, AmountZero) {
  CausalCounter q;
  q.Increment(kR, 3);
  Columns c = ColumnsOf(q);
  c.amounts[0] = 0;
  ExpectIllegal<CausalCounter>(c, "counter increment of 0");

  Cart cart;
  cart.Update("apple", [](CausalCounter& n) { return n.Increment(kR, 1); });
  Columns in_map = ColumnsOf(cart);
  in_map.amounts[0] = 0;
  ExpectIllegal<Cart>(in_map, "counter increment of 0");
}

TEST(RejectTest, SameDotStoredTwice) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kR, "b");
  Columns c = ColumnsOf(s);
  c.dot_counter = {1, 1};
  ExpectIllegal<StringSet>(c, "a dot is stored twice");

  Cart cart;
  cart.Update("a", [](CausalCounter& n) { return n.Increment(kR, 1); });
  cart.Update("b", [](CausalCounter& n) { return n.Increment(kR, 1); });
  Columns d = ColumnsOf(cart);
  d.dot_counter = {2, 2};
  ExpectIllegal<Cart>(d, "a dot is stored twice");

  // Twice in one element's dot set, or one register.
  StringSet one;
  one.Add(kR, "a");
  Columns e = ColumnsOf(one);
  e.leaf_extra = {1};
  e.dot_counter = {1, 1};
  ExpectIllegal<StringSet>(e, "dots of a set not sorted");
  MvRegister<std::string> reg;
  reg.Assign(kR, "x");
  Columns r = ColumnsOf(reg);
  r.dot_counter = {1, 1};
  r.values = {"x", "y"};
  ExpectIllegal<MvRegister<std::string>>(r, "dots of a register not sorted");
}

TEST(RejectTest, ContextDotsUnsorted) {
  StringSet source;
  for (int i = 0; i < 6; ++i) source.Add(kR, std::to_string(i));
  StringSet gaps;
  gaps.Join(source.Remove("2"));
  gaps.Join(source.Remove("4"));
  Columns c = ColumnsOf(gaps);
  ASSERT_EQ(c.cloud_counter.size(), 2u);
  std::swap(c.cloud_counter[0], c.cloud_counter[1]);
  ExpectIllegal<StringSet>(c, "context dots not sorted and unique");
  c.cloud_counter[1] = c.cloud_counter[0];
  ExpectIllegal<StringSet>(c, "context dots not sorted and unique");
}

// ---------------------------------------------------------------------------
// Maps.

TEST(RejectTest, MapKeysUnsortedOrDuplicated) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kR, "b");
  Columns c = ColumnsOf(s);
  std::swap(c.keys[0], c.keys[1]);
  ExpectIllegal<StringSet>(c, "map keys not sorted and unique");
  c.keys[0] = c.keys[1];
  ExpectIllegal<StringSet>(c, "map keys not sorted and unique");

  MapOfSets m;
  m.Update(1, [](StringSet& inner) { return inner.Add(kR, "x"); });
  m.Update(1, [](StringSet& inner) { return inner.Add(kR, "y"); });
  Columns nested = ColumnsOf(m);
  ASSERT_EQ(nested.keys.size(), 3u);  // 1, then "x", "y"
  std::swap(nested.keys[1], nested.keys[2]);
  ExpectIllegal<MapOfSets>(nested, "map keys not sorted and unique");
}

TEST(RejectTest, KeysAndValuesNotDecodable) {
  OrSet<int> s;
  s.Add(kR, 5);
  Columns c = ColumnsOf(s);
  c.keys[0] = "abc";
  ExpectIllegal<OrSet<int>>(c, "key not decodable as i32");

  LwwRegister<std::int64_t> reg;
  reg.Assign(kR, HlcTimestamp{1, 0}, 7);
  Columns lww = ColumnsOf(reg);
  lww.lww_value.pop_back();
  ExpectIllegal<LwwRegister<std::int64_t>>(lww, "register value not decodable as i64");

  MvRegister<int> mv;
  mv.Assign(kR, 1);
  Columns v = ColumnsOf(mv);
  v.values[0] = "12345";
  ExpectIllegal<MvRegister<int>>(v, "value not decodable as i32");

  MvRegister<bool> flag;
  flag.Assign(kR, true);
  Columns b = ColumnsOf(flag);
  b.values[0] = std::string(1, '\x02');
  ExpectIllegal<MvRegister<bool>>(b, "value not decodable as bool");
}

TEST(RejectTest, LeafSizesInconsistent) {
  StringSet s;
  s.Add(kR, "a");
  StringSet t;
  t.Add(kS, "a");
  s.Join(t);  // concurrent adds: two dots on "a"
  s.Add(kR, "b");
  Columns c = ColumnsOf(s);
  ASSERT_FALSE(c.leaf_extra.empty());

  Columns too_big = c;
  too_big.leaf_extra[0] = 5;
  ExpectIllegal<StringSet>(too_big, "leaf larger than the dots left");
  Columns missing = c;
  missing.leaf_extra.pop_back();
  ExpectIllegal<StringSet>(missing, "missing leaf size");
  Columns extra = c;
  extra.leaf_extra.push_back(0);
  ExpectIllegal<StringSet>(extra, "leaf sizes do not match the leaves");
  Columns unused = c;
  unused.leaf_extra.assign(unused.leaf_extra.size(), 0);
  ExpectIllegal<StringSet>(unused, "unused store dots");
}

TEST(RejectTest, MapSizesInconsistent) {
  MapOfSets m;
  m.Update(1, [](StringSet& inner) { return inner.Add(kR, "x"); });
  m.Update(2, [](StringSet& inner) { return inner.Add(kR, "y"); });
  Columns c = ColumnsOf(m);
  ASSERT_EQ(c.map_sizes.size(), 2u);

  Columns zero = c;
  zero.map_sizes[0] = 0;
  ExpectIllegal<MapOfSets>(zero, "nested map of size 0");
  Columns too_big = c;
  too_big.map_sizes[0] = 1000;
  ExpectIllegal<MapOfSets>(too_big, "nested map larger than the keys left");
  Columns missing = c;
  missing.map_sizes.pop_back();
  ExpectIllegal<MapOfSets>(missing, "missing nested map size");
  Columns extra = c;
  extra.map_sizes.push_back(1);
  ExpectIllegal<MapOfSets>(extra, "unused nested map sizes");
  Columns swallowed = c;
  swallowed.map_sizes[0] = 2;  // the inner map takes the next outer key
  ExpectIllegal<MapOfSets>(swallowed, "");
}

TEST(RejectTest, ColumnsOfAnotherShape) {
  EwFlag f;
  f.Enable(kR);
  Columns keys = ColumnsOf(f);
  keys.keys = {"k"};
  ExpectIllegal<EwFlag>(keys, "map columns in a state that has no map");
  Columns counts = ColumnsOf(f);
  counts.counts = {1};
  ExpectIllegal<EwFlag>(counts, "counter or register columns in a causal state");
  Columns lww = ColumnsOf(f);
  lww.lww_present = true;
  ExpectIllegal<EwFlag>(lww, "counter or register columns in a causal state");
  Columns values = ColumnsOf(f);
  values.values = {"v"};
  ExpectIllegal<EwFlag>(values, "unused values");
  Columns amounts = ColumnsOf(f);
  amounts.amounts = {1};
  ExpectIllegal<EwFlag>(amounts, "unused amounts");
}

// ---------------------------------------------------------------------------
// Columns of mismatched lengths.

TEST(RejectTest, MismatchedLengths) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kS, "b");
  Columns c = ColumnsOf(s);
  Columns dots = c;
  dots.dot_replica.pop_back();
  ExpectIllegal<StringSet>(dots, "dot replica and counter columns differ in length");
  Columns store = c;
  store.dot_counter.push_back(9);
  store.dot_replica.push_back(0);
  ExpectIllegal<StringSet>(store, "unused store dots");
  Columns vector = c;
  vector.vector.push_back(1);
  ExpectIllegal<StringSet>(vector, "version vector length differs from the replica table");
  Columns cloud = c;
  cloud.cloud_replica = {0, 1};
  cloud.cloud_counter = {5};
  ExpectIllegal<StringSet>(cloud, "cloud replica and counter columns differ in length");
  Columns few_dots = c;
  few_dots.dot_counter.pop_back();
  few_dots.dot_replica.pop_back();
  ExpectIllegal<StringSet>(few_dots, "leaf larger than the dots left");

  GCounter g;
  g.Increment(kR, 1);
  g.Increment(kS, 1);
  Columns counts = ColumnsOf(g);
  counts.counts.pop_back();
  ExpectIllegal<GCounter>(counts, "counts differ from replicas");
  Columns zero = ColumnsOf(g);
  zero.counts[0] = 0;
  ExpectIllegal<GCounter>(zero, "zero count listed");

  PnCounter p;
  p.Increment(kR, 1);
  p.Decrement(kS, 1);
  Columns neg = ColumnsOf(p);
  neg.neg_counts.push_back(3);
  ExpectIllegal<PnCounter>(neg, "counts differ from replicas");

  MvRegister<std::string> mv;
  mv.Assign(kR, "x");
  Columns few_values = ColumnsOf(mv);
  few_values.values.clear();
  ExpectIllegal<MvRegister<std::string>>(few_values, "missing value for a dot");
  Columns many_values = ColumnsOf(mv);
  many_values.values.push_back("y");
  ExpectIllegal<MvRegister<std::string>>(many_values, "unused values");

  CausalCounter q;
  q.Increment(kR, 1);
  Columns few_amounts = ColumnsOf(q);
  few_amounts.amounts.clear();
  ExpectIllegal<CausalCounter>(few_amounts, "missing amount for a dot");
  Columns many_amounts = ColumnsOf(q);
  many_amounts.amounts.push_back(1);
  ExpectIllegal<CausalCounter>(many_amounts, "unused amounts");
}

// ---------------------------------------------------------------------------
// Limits of a well-formed state.

TEST(RejectTest, HugeVersionVector) {
  constexpr std::size_t kReplicas = (std::size_t{1} << 16) + 1;  // one over the default
  Columns c = ColumnsOf(StringSet{});
  for (std::size_t i = 0; i < kReplicas; ++i) {
    c.replicas.push_back(0x9e3779b97f4a7c15ULL * (i + 1));
    c.vector.push_back(i + 1);
  }
  std::sort(c.replicas.begin(), c.replicas.end());
  const std::string bytes = EncodeColumns(c);
  // A writer can count them without decoding (and without the limit).
  const StatusOr<std::size_t> peeked = PeekReplicaCount(bytes);
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  EXPECT_EQ(*peeked, kReplicas);
  EXPECT_FALSE(PeekReplicaCount(bytes.substr(0, bytes.size() / 2)).ok());
  EXPECT_FALSE(PeekReplicaCount("").ok());
  ExpectRejectedBytes<StringSet>(bytes, "state names 65537 replicas; the limit is 65536", {},
                                 StatusCode::kResourceExhausted);
  ExpectRejectedBytes<StringSet>(bytes, "the limit is 65536", Trusted(),
                                 StatusCode::kResourceExhausted);
  // At the limit a version vector that size is legal.
  c.replicas.pop_back();
  c.vector.pop_back();
  const auto decoded = Decode<StringSet>(EncodeColumns(c));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->context().vector().size(), kReplicas - 1);
  // A caller's own, lower limit.
  DecodeOptions strict;
  strict.limits.max_replicas = 2;
  StringSet three;
  for (const std::uint64_t r : {1u, 2u, 3u}) three.Add(ReplicaId{r}, "x");
  ExpectRejectedBytes<StringSet>(Encode(three), "state names 3 replicas; the limit is 2", strict,
                                 StatusCode::kResourceExhausted);
}

// ---------------------------------------------------------------------------
// Non-canonical spellings of legal states.

TEST(NonCanonicalTest, AllZeroVectorPresent) {
  StringSet source;
  source.Add(kR, "a");
  const StringSet delta = source.Add(kR, "b");  // (r,2): no vector entry
  Columns c = ColumnsOf(delta);
  ASSERT_TRUE(c.vector.empty());
  c.vector = {0};
  ExpectNonCanonical(c, delta);
}

TEST(NonCanonicalTest, CloudDotThatIsAlsoAStoreDot) {
  StringSet source;
  source.Add(kR, "a");
  const StringSet delta = source.Add(kR, "b");
  Columns c = ColumnsOf(delta);
  c.cloud_replica = {0};
  c.cloud_counter = {2};  // the stored dot (r,2)
  ExpectNonCanonical(c, delta);
}

TEST(NonCanonicalTest, CloudDotCoveredByTheVector) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kR, "b");
  Columns c = ColumnsOf(s);
  ASSERT_EQ(c.vector, std::vector<std::uint64_t>{2});
  c.cloud_replica = {0};
  c.cloud_counter = {1};
  ExpectNonCanonical(c, s);
  c.cloud_counter = {3};  // contiguous with the vector: belongs in it
  StringSet more = s;
  more.Join(
      StringSet::FromParts({}, crdt::CausalContext::FromParts({}, std::vector{crdt::Dot{kR, 3}})));
  ExpectNonCanonical(c, more);
}

TEST(NonCanonicalTest, RedundantColumnsAndEntries) {
  StringSet s;
  s.Add(kR, "a");
  s.Add(kR, "b");
  Columns zeros = ColumnsOf(s);
  ASSERT_TRUE(zeros.dot_replica.empty());
  zeros.dot_replica = {0, 0};
  ExpectNonCanonical(zeros, s);
  Columns extra = ColumnsOf(s);
  ASSERT_TRUE(extra.leaf_extra.empty());
  extra.leaf_extra = {0, 0};
  ExpectNonCanonical(extra, s);
  Columns unused_replica = ColumnsOf(s);
  unused_replica.replicas.push_back(std::numeric_limits<std::uint64_t>::max());
  unused_replica.vector.push_back(0);
  ExpectNonCanonical(unused_replica, s);
  Columns foreign = ColumnsOf(s);
  foreign.lww_physical_ms = 5;  // a register field in a set
  ExpectNonCanonical(foreign, s);

  GCounter g;
  g.Increment(kR, 1);
  Columns g_vector = ColumnsOf(g);
  g_vector.vector = {1};
  ExpectNonCanonical(g_vector, g);

  PnCounter p;
  p.Decrement(kR, 1);
  Columns zero_counts = ColumnsOf(p);
  ASSERT_TRUE(zero_counts.counts.empty());
  zero_counts.counts = {0};
  ExpectNonCanonical(zero_counts, p);
  Columns idle_replica = ColumnsOf(p);
  idle_replica.replicas.push_back(kR.value() + 1);
  idle_replica.neg_counts.push_back(0);
  ExpectNonCanonical(idle_replica, p);

  LwwRegister<std::string> empty;
  Columns stray = ColumnsOf(empty);
  stray.lww_value = "stray";
  ExpectNonCanonical(stray, empty);
}

}  // namespace
}  // namespace converge::codec
