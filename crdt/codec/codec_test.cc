// Round trips, canonical encoding, value codecs, type ids and encoded sizes
// (DESIGN.md §3, TESTPLAN R1). Rejection of bad input: codec_reject_test.cc
// and decode_limits_test.cc.

#include "crdt/codec/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

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
using testing::CodecTypes;
using testing::Rng;

// A random-looking replica id, as the storage layer mints them.
constexpr ReplicaId kR{0x9e3779b97f4a7c15ULL};
constexpr ReplicaId kS{0x243f6a8885a308d3ULL};

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

// Decodes what Encode wrote and checks that nothing was lost: the value is
// equal, its encoding is the input again, and a trusted decode agrees.
template <class T>
void ExpectRoundTrip(const T& value) {
  const std::string bytes = Encode(value);
  const StatusOr<T> decoded = Decode<T>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status() << "\n  value: " << value
                            << "\n  bytes: " << Hex(bytes);
  EXPECT_EQ(*decoded, value) << "bytes: " << Hex(bytes);
  EXPECT_EQ(Encode(*decoded), bytes);
  DecodeOptions trusted_options;
  trusted_options.trusted = true;
  const StatusOr<T> trusted = Decode<T>(bytes, trusted_options);
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(*trusted, value);
}

template <class Tuple>
struct ToGTestTypes;
template <class... T>
struct ToGTestTypes<std::tuple<T...>> {
  using type = ::testing::Types<T...>;
};

// ---------------------------------------------------------------------------
// Every type: samples and random histories round-trip; join orders do not
// change the bytes.

template <class T>
class CodecTypedTest : public ::testing::Test {};
TYPED_TEST_SUITE(CodecTypedTest, ToGTestTypes<CodecTypes>::type);

TYPED_TEST(CodecTypedTest, SamplesRoundTrip) {
  for (const auto& sample : testing::Samples<TypeParam>()) {
    SCOPED_TRACE(sample.name);
    ExpectRoundTrip(sample.value);
  }
}

TYPED_TEST(CodecTypedTest, BottomRoundTripsAndIsTiny) {
  ExpectRoundTrip(TypeParam{});
  // Header only: segment table, root pointer, version and type id.
  EXPECT_LE(Encode(TypeParam{}).size(), 16u);
}

TYPED_TEST(CodecTypedTest, RandomHistoriesRoundTrip) {
  const std::uint64_t base_seed = std::random_device{}();
  std::cout << "[ seed     ] " << base_seed << " (random histories; replay by hard-coding it)\n";
  for (std::uint64_t i = 0; i < 100; ++i) {
    const std::uint64_t seed = base_seed + i;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const auto h = testing::RandomHistory<TypeParam>(rng, 1 + testing::Uniform(rng, 3), 30);
    for (const TypeParam& s : h.replicas) ExpectRoundTrip(s);
    for (const TypeParam& d : h.deltas) ExpectRoundTrip(d);
    if (::testing::Test::HasFailure()) return;
  }
}

TYPED_TEST(CodecTypedTest, JoinOrderDoesNotChangeTheBytes) {
  const std::uint64_t base_seed = std::random_device{}();
  std::cout << "[ seed     ] " << base_seed << "\n";
  for (std::uint64_t i = 0; i < 50; ++i) {
    const std::uint64_t seed = base_seed + i;
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const auto h = testing::RandomHistory<TypeParam>(rng, 3, 40);

    // The same deltas joined in order, in reverse and shuffled.
    TypeParam forward;
    for (const auto& d : h.deltas) forward.Join(d);
    TypeParam backward;
    for (auto it = h.deltas.rbegin(); it != h.deltas.rend(); ++it) backward.Join(*it);
    std::vector<TypeParam> shuffled = h.deltas;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    TypeParam mixed;
    for (const auto& d : shuffled) mixed.Join(d);
    // The replicas' full states, grouped differently: every delta is in the
    // state of the replica that made it, so this is the same state.
    TypeParam left = h.replicas[0];
    left.Join(h.replicas[1]);
    left.Join(h.replicas[2]);
    TypeParam right = h.replicas[1];
    right.Join(h.replicas[2]);
    TypeParam grouped = h.replicas[0];
    grouped.Join(right);
    TypeParam reversed = h.replicas[2];
    reversed.Join(h.replicas[1]);
    reversed.Join(h.replicas[0]);

    const std::string bytes = Encode(forward);
    for (const TypeParam* other : {&backward, &mixed, &left, &grouped, &reversed}) {
      ASSERT_EQ(*other, forward);
      ASSERT_EQ(Encode(*other), bytes);
    }
  }
}

TYPED_TEST(CodecTypedTest, EqualBytesIffEqualStates) {
  std::vector<std::pair<TypeParam, std::string>> all;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    for (auto& sample : testing::Samples<TypeParam>(seed)) {
      std::string bytes = Encode(sample.value);
      all.emplace_back(std::move(sample.value), std::move(bytes));
    }
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      ASSERT_EQ(all[i].first == all[j].first, all[i].second == all[j].second)
          << all[i].first << " vs " << all[j].first;
    }
  }
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Particular states.

TEST(CodecTest, OrSetWithRemovedElementsRoundTrips) {
  OrSet<std::string> s;
  s.Add(kR, "apple");
  s.Add(kS, "pear");
  s.Add(kR, "plum");
  s.Remove("apple");
  s.Remove("plum");
  ExpectRoundTrip(s);
  // The removed elements are gone, their dots stay in the context.
  const auto decoded = Decode<OrSet<std::string>>(Encode(s));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->Elements(), std::vector<std::string>{"pear"});
  EXPECT_TRUE(decoded->context().Contains(crdt::Dot{kR, 1}));
}

TEST(CodecTest, OutOfOrderDotsRoundTrip) {
  OrSet<std::string> source;
  std::vector<OrSet<std::string>> deltas;
  for (int i = 0; i < 6; ++i) deltas.push_back(source.Add(kR, "e" + std::to_string(i)));
  deltas.push_back(source.Remove("e4"));
  OrSet<std::string> receiver;
  receiver.Join(deltas[5]);  // (r,6): in the cloud, and stored
  receiver.Join(deltas[2]);  // (r,3)
  receiver.Join(deltas[6]);  // remove of e4: (r,5) only in the context
  ASSERT_FALSE(receiver.context().cloud().empty());
  ExpectRoundTrip(receiver);
  // A delta whose context has a dot that is not stored (the remove).
  ExpectRoundTrip(deltas[6]);
}

TEST(CodecTest, CartWithConcurrentUpdatesRoundTrips) {
  OrMap<std::string, CausalCounter> a;
  OrMap<std::string, CausalCounter> b;
  a.Update("apple", [](CausalCounter& q) { return q.Increment(kR, 2); });
  b.Join(a);
  a.Update("apple", [](CausalCounter& q) { return q.Increment(kR, 1); });
  b.Update("apple", [](CausalCounter& q) { return q.Increment(kS, 5); });
  b.Update("pear", [](CausalCounter& q) { return q.Set(kS, 9); });
  const auto removal = a.Remove("apple");
  a.Join(b);
  ExpectRoundTrip(a);
  ExpectRoundTrip(b);
  ExpectRoundTrip(removal);
  EXPECT_EQ(a.Get("apple")->Value(), 5u);
}

TEST(CodecTest, NestedMapsRoundTrip) {
  OrMap<std::string, OrMap<int, MvRegister<std::string>>> m;
  for (int i = 0; i < 20; ++i) {
    m.Update("user-" + std::to_string(i % 3), [&](OrMap<int, MvRegister<std::string>>& inner) {
      return inner.Update(i - 10, [&](MvRegister<std::string>& r) {
        return r.Assign(i % 2 == 0 ? kR : kS, std::string(static_cast<std::size_t>(i), 'x'));
      });
    });
  }
  m.Update("user-1", [](auto& inner) { return inner.Remove(-9); });
  ExpectRoundTrip(m);
}

TEST(CodecTest, MultiValueRegisterKeepsConcurrentValues) {
  MvRegister<std::string> a;
  MvRegister<std::string> b;
  a.Assign(kR, "left");
  b.Assign(kS, std::string("\0right\xff", 7));
  a.Join(b);
  ASSERT_EQ(a.Values().size(), 2u);
  ExpectRoundTrip(a);
}

TEST(CodecTest, LwwRegisterEmptyValueIsNotBottom) {
  LwwRegister<std::string> empty_value;
  empty_value.Assign(kR, HlcTimestamp{1, 0}, "");
  ExpectRoundTrip(empty_value);
  EXPECT_NE(Encode(empty_value), Encode(LwwRegister<std::string>{}));
}

TEST(CodecTest, LwwRegisterExtremesRoundTrip) {
  for (const std::int64_t v : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1},
                               std::int64_t{0}, std::numeric_limits<std::int64_t>::max()}) {
    LwwRegister<std::int64_t> reg;
    reg.Assign(ReplicaId{std::numeric_limits<std::uint64_t>::max()},
               HlcTimestamp{std::numeric_limits<std::uint64_t>::max(),
                            std::numeric_limits<std::uint32_t>::max()},
               v);
    ExpectRoundTrip(reg);
  }
}

TEST(CodecTest, CountersNearTheLimitRoundTrip) {
  GCounter g;
  g.Increment(kR, std::numeric_limits<std::uint64_t>::max());
  g.Increment(ReplicaId{0}, 1);
  ExpectRoundTrip(g);
  PnCounter p;
  p.Decrement(kS, std::numeric_limits<std::uint64_t>::max());
  ExpectRoundTrip(p);  // decrements only: the increments column is omitted
  p.Increment(kR, 3);
  ExpectRoundTrip(p);
}

// Regression: the traversal limit was capped at 16 words per input byte, and
// packed zeros expand up to 128 times, so zero-heavy values did not decode.
TEST(CodecTest, HighlyCompressibleValuesRoundTrip) {
  LwwRegister<std::string> reg;
  reg.Assign(kR, HlcTimestamp{5, 0}, std::string(1 << 20, '\0'));
  EXPECT_LT(Encode(reg).size(), 10'000u);
  ExpectRoundTrip(reg);
  OrSet<std::string> set;
  set.Add(kR, std::string(100'000, '\0'));
  set.Add(kR, std::string(100'001, '\0'));
  ExpectRoundTrip(set);
}

// Regression: MvRegister<std::uint64_t> shares its store type with
// CausalCounter, and its values were written as (positive) counter amounts,
// so a register holding 0 did not decode.
TEST(CodecTest, RegisterOfUnsignedIntegersHoldsZero) {
  MvRegister<std::uint64_t> reg;
  reg.Assign(kR, 0);
  ExpectRoundTrip(reg);
  OrMap<int, MvRegister<std::uint64_t>> map;
  map.Update(3, [](MvRegister<std::uint64_t>& r) { return r.Assign(kS, 0); });
  ExpectRoundTrip(map);
  Columns c;
  TypeCodec<MvRegister<std::uint64_t>>::Write(reg, c);
  EXPECT_TRUE(c.amounts.empty());
  EXPECT_EQ(c.values, std::vector<std::string>{std::string(8, '\0')});
}

// ---------------------------------------------------------------------------
// Canonical: one state, one encoding.

TEST(CodecCanonicalTest, SameCounterThroughDifferentIncrements) {
  GCounter one_step;
  one_step.Increment(kR, 5);
  one_step.Increment(kS, 1);
  GCounter two_steps;
  two_steps.Increment(kS, 1);
  two_steps.Increment(kR, 2);
  two_steps.Increment(kR, 3);
  EXPECT_EQ(Encode(one_step), Encode(two_steps));
}

TEST(CodecCanonicalTest, ConcurrentAddsInEitherOrder) {
  OrSet<std::string> a;
  OrSet<std::string> b;
  const auto da = a.Add(kR, "apple");
  const auto db = b.Add(kS, "banana");
  a.Join(db);
  b.Join(da);
  EXPECT_EQ(a, b);
  EXPECT_EQ(Encode(a), Encode(b));
  // The element order of the set's storage differs; the encoding sorts.
  OrSet<std::string> c;
  for (const char* e : {"z", "a", "m", "b"}) c.Add(kR, e);
  OrSet<std::string> e;
  const std::vector<OrSet<std::string>> deltas = [&] {
    std::vector<OrSet<std::string>> out;
    OrSet<std::string> source;
    for (const char* x : {"z", "a", "m", "b"}) out.push_back(source.Add(kR, x));
    return out;
  }();
  for (auto it = deltas.rbegin(); it != deltas.rend(); ++it) e.Join(*it);
  EXPECT_EQ(c, e);
  EXPECT_EQ(Encode(c), Encode(e));
}

TEST(CodecCanonicalTest, OutOfOrderDeliveryConvergesToTheSameBytes) {
  OrSet<int> source;
  std::vector<OrSet<int>> deltas;
  for (int i = 0; i < 10; ++i) deltas.push_back(source.Add(kR, i * 7 - 20));
  deltas.push_back(source.Remove(1));
  deltas.push_back(source.Remove(-20));
  OrSet<int> in_order;
  for (const auto& d : deltas) in_order.Join(d);
  OrSet<int> reversed;
  for (auto it = deltas.rbegin(); it != deltas.rend(); ++it) reversed.Join(*it);
  EXPECT_EQ(in_order, source);
  EXPECT_EQ(Encode(in_order), Encode(source));
  EXPECT_EQ(Encode(reversed), Encode(source));
}

// Integer keys are ordered by their encoded (little-endian) bytes, not by
// value: the order is part of the format.
TEST(CodecCanonicalTest, IntegerKeysInByteOrder) {
  OrSet<int> s;
  for (const int v : {256, 1, -1, 0}) s.Add(kR, v);
  Columns c;
  TypeCodec<OrSet<int>>::Write(s, c);
  ASSERT_EQ(c.keys.size(), 4u);
  EXPECT_TRUE(std::is_sorted(c.keys.begin(), c.keys.end()));
  EXPECT_EQ(c.keys.front(), ValueCodec<int>::Encode(0));
  EXPECT_EQ(c.keys[1], ValueCodec<int>::Encode(256));
  EXPECT_EQ(c.keys.back(), ValueCodec<int>::Encode(-1));
}

// ---------------------------------------------------------------------------
// ValueCodec.

template <class T>
void ExpectValueRoundTrip(const T& v, std::size_t size) {
  const std::string bytes = ValueCodec<T>::Encode(v);
  EXPECT_EQ(bytes.size(), size);
  const std::optional<T> back = ValueCodec<T>::Decode(bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, v);
}

TEST(ValueCodecTest, IntegersAreFixedWidthLittleEndian) {
  EXPECT_EQ(ValueCodec<std::int32_t>::Encode(1), std::string("\x01\x00\x00\x00", 4));
  EXPECT_EQ(ValueCodec<std::int32_t>::Encode(-2), std::string("\xfe\xff\xff\xff", 4));
  EXPECT_EQ(ValueCodec<std::uint16_t>::Encode(0x1234), std::string("\x34\x12", 2));
  for (const std::int64_t v : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1},
                               std::int64_t{0}, std::numeric_limits<std::int64_t>::max()}) {
    ExpectValueRoundTrip(v, 8);
  }
  ExpectValueRoundTrip(std::numeric_limits<std::uint64_t>::max(), 8);
  ExpectValueRoundTrip(std::numeric_limits<std::int8_t>::min(), 1);
  ExpectValueRoundTrip(std::numeric_limits<std::uint8_t>::max(), 1);
  ExpectValueRoundTrip(std::numeric_limits<std::int16_t>::min(), 2);
  ExpectValueRoundTrip(std::numeric_limits<std::uint32_t>::max(), 4);
  // One spelling per value: any other width is rejected.
  EXPECT_FALSE(ValueCodec<std::int32_t>::Decode(std::string(3, '\0')).has_value());
  EXPECT_FALSE(ValueCodec<std::int32_t>::Decode(std::string(8, '\0')).has_value());
  EXPECT_FALSE(ValueCodec<std::uint64_t>::Decode("").has_value());
}

TEST(ValueCodecTest, BoolIsOneByteZeroOrOne) {
  ExpectValueRoundTrip(true, 1);
  ExpectValueRoundTrip(false, 1);
  EXPECT_FALSE(ValueCodec<bool>::Decode(std::string(1, '\2')).has_value());
  EXPECT_FALSE(ValueCodec<bool>::Decode("").has_value());
  EXPECT_FALSE(ValueCodec<bool>::Decode(std::string(2, '\0')).has_value());
}

TEST(ValueCodecTest, StringsAreTheirBytes) {
  ExpectValueRoundTrip(std::string(), 0);
  ExpectValueRoundTrip(std::string("\0\xff\x80 binary", 10), 10);
  ExpectValueRoundTrip(std::string(1000, 'x'), 1000);
}

TEST(ValueCodecTest, NamesArePartOfTypeIds) {
  EXPECT_EQ(ValueCodec<std::string>::kName, "bytes");
  EXPECT_EQ(ValueCodec<bool>::kName, "bool");
  EXPECT_EQ(ValueCodec<std::int8_t>::kName, "i8");
  EXPECT_EQ(ValueCodec<std::int16_t>::kName, "i16");
  EXPECT_EQ(ValueCodec<std::int32_t>::kName, "i32");
  EXPECT_EQ(ValueCodec<std::int64_t>::kName, "i64");
  EXPECT_EQ(ValueCodec<std::uint8_t>::kName, "u8");
  EXPECT_EQ(ValueCodec<std::uint16_t>::kName, "u16");
  EXPECT_EQ(ValueCodec<std::uint32_t>::kName, "u32");
  EXPECT_EQ(ValueCodec<std::uint64_t>::kName, "u64");
}

TEST(ValueCodecTest, ValuesOfEveryBuiltInCodecRoundTripInStates) {
  LwwRegister<bool> flag;
  flag.Assign(kR, HlcTimestamp{1, 1}, false);
  ExpectRoundTrip(flag);
  OrSet<std::uint8_t> bytes;
  for (int i = 0; i < 256; i += 17) bytes.Add(kS, static_cast<std::uint8_t>(i));
  ExpectRoundTrip(bytes);
  OrSet<std::int64_t> wide;
  wide.Add(kR, std::numeric_limits<std::int64_t>::min());
  wide.Add(kR, -1);
  ExpectRoundTrip(wide);
  MvRegister<std::int16_t> small;
  small.Assign(kR, -300);
  ExpectRoundTrip(small);
  OrMap<bool, EwFlag> by_bool;
  by_bool.Update(true, [](EwFlag& f) { return f.Enable(kR); });
  by_bool.Update(false, [](EwFlag& f) { return f.Enable(kS); });
  ExpectRoundTrip(by_bool);
  OrSet<std::string> strings;
  strings.Add(kR, "");
  strings.Add(kR, std::string("\0", 1));
  strings.Add(kR, std::string("\xff\xfe", 2));
  ExpectRoundTrip(strings);
}

}  // namespace
}  // namespace converge::codec

// A type of the application's own, as docs/wire-format.md shows it.
namespace shop {
struct Sku {
  std::string code;
  friend bool operator==(const Sku&, const Sku&) = default;
};
}  // namespace shop

template <>
struct std::hash<shop::Sku> {
  std::size_t operator()(const shop::Sku& s) const noexcept {
    return std::hash<std::string>{}(s.code);
  }
};

template <>
struct converge::codec::ValueCodec<shop::Sku> {
  static constexpr std::string_view kName = "sku";
  static std::string Encode(const shop::Sku& s) { return s.code; }
  static std::optional<shop::Sku> Decode(std::string_view bytes) {
    if (bytes.empty()) return std::nullopt;  // an SKU code is never empty
    return shop::Sku{std::string(bytes)};
  }
};

namespace converge::codec {
namespace {

TEST(ValueCodecTest, UserTypeAsMapKey) {
  OrMap<shop::Sku, CausalCounter> cart;
  cart.Update(shop::Sku{"A-1"}, [](CausalCounter& q) { return q.Increment(kR, 2); });
  cart.Update(shop::Sku{"B-7"}, [](CausalCounter& q) { return q.Increment(kS, 1); });
  ExpectRoundTrip(cart);
  EXPECT_EQ((TypeCodec<OrMap<shop::Sku, CausalCounter>>::Descriptor()),
            "or_map<sku,causal_counter>");
  // A key the type's codec refuses is a decoding error.
  Columns c;
  c.type_id = TypeIdOf<OrMap<shop::Sku, CausalCounter>>();
  TypeCodec<OrMap<shop::Sku, CausalCounter>>::Write(cart, c);
  c.keys[0] = "";
  const auto decoded = Decode<OrMap<shop::Sku, CausalCounter>>(EncodeColumns(c));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("key not decodable as sku"), std::string::npos)
      << decoded.status();
}

// ---------------------------------------------------------------------------
// Type ids: part of the format, pinned.

TEST(TypeIdTest, DescriptorsAndIdsArePinned) {
  const std::vector<std::pair<std::string, std::uint32_t>> expected = {
      {"g_counter", 0xc1d196fdu},
      {"pn_counter", 0x2849fa18u},
      {"lww_register<bytes>", 0x21ed96deu},
      {"lww_register<i64>", 0x6c8e5db8u},
      {"mv_register<bytes>", 0xde13ba45u},
      {"ew_flag", 0x1c8d5ed0u},
      {"causal_counter", 0xae4f2f1bu},
      {"or_set<bytes>", 0xab0f4272u},
      {"or_set<i32>", 0xd662f665u},
      {"or_map<bytes,causal_counter>", 0x004f26deu},
      {"or_map<i32,or_set<bytes>>", 0xf983b760u},
      {"or_map<bytes,or_map<i32,mv_register<bytes>>>", 0x8b417a84u},
  };
  std::vector<std::pair<std::string, std::uint32_t>> actual;
  testing::ForEachCodecType([&]<class T>(std::size_t) {
    actual.emplace_back(TypeCodec<T>::Descriptor(), TypeIdOf<T>());
  });
  EXPECT_EQ(actual, expected);
  std::set<std::uint32_t> ids;
  for (const auto& [descriptor, id] : actual) {
    EXPECT_EQ(id, TypeIdOf(descriptor));
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), actual.size()) << "type ids collide";
}

TEST(TypeIdTest, DecodingAsAnotherTypeIsRejected) {
  testing::ForEachCodecType([&]<class A>(std::size_t a) {
    for (const auto& sample : testing::Samples<A>()) {
      const std::string bytes = Encode(sample.value);
      testing::ForEachCodecType([&]<class B>(std::size_t b) {
        if (a == b) return;
        const StatusOr<B> decoded = Decode<B>(bytes);
        ASSERT_FALSE(decoded.ok())
            << TypeCodec<A>::Descriptor() << " decoded as " << TypeCodec<B>::Descriptor();
        EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument);
        EXPECT_NE(decoded.status().message().find("is not " + TypeCodec<B>::Descriptor()),
                  std::string::npos)
            << decoded.status();
      });
    }
  });
}

// ---------------------------------------------------------------------------
// Sizes.

TEST(CodecSizeTest, AddDeltaIntoLargeSetIsAtMost64Bytes) {
  OrSet<std::string> s;
  s.reserve(100'001);
  for (int i = 0; i < 100'000; ++i) s.Add(kR, "item-" + std::to_string(i));
  const auto delta = s.Add(kR, "item-100000");
  const std::string bytes = Encode(delta);
  std::cout << "[ figure   ] add delta into a 100,000-element OrSet<std::string>: " << bytes.size()
            << " bytes\n";
  ::testing::Test::RecordProperty("orset_add_delta_encoded_bytes", static_cast<int>(bytes.size()));
  EXPECT_LE(bytes.size(), 64u);
  ExpectRoundTrip(delta);

  // Removing and re-adding an element are as small.
  OrSet<std::string> copy = s;
  const std::string remove = Encode(copy.Remove("item-5"));
  const std::string readd = Encode(copy.Add(kS, "item-6"));
  std::cout << "[ figure   ] remove delta: " << remove.size() << " bytes, re-add delta "
            << readd.size() << " bytes\n";
  EXPECT_LE(remove.size(), 64u);
  EXPECT_LE(readd.size(), 80u);

  const std::string state = Encode(s);
  const double per_element = static_cast<double>(state.size()) / 100'001.0;
  std::cout << "[ figure   ] the 100,001-element state: " << state.size() << " bytes, "
            << per_element << " bytes per element (element names are 10-11 bytes)\n";
  EXPECT_LT(per_element, 32.0);
}

TEST(CodecSizeTest, SmallDeltasOfOtherTypes) {
  OrMap<std::string, CausalCounter> cart;
  for (int i = 0; i < 1000; ++i) {
    cart.Update("sku-" + std::to_string(i), [](CausalCounter& q) { return q.Increment(kR, 1); });
  }
  const auto update = cart.Update("sku-7", [](CausalCounter& q) { return q.Increment(kS, 3); });
  EXPECT_LE(Encode(update).size(), 64u);
  GCounter g;
  for (int i = 0; i < 100; ++i) g.Increment(ReplicaId{static_cast<std::uint64_t>(i) << 40}, 5);
  EXPECT_LE(Encode(g.Increment(kR, 1)).size(), 40u);
}

// The worked example of docs/wire-format.md: if this changes, the format
// changed, and so must the document (and the version).
TEST(CodecGoldenTest, OrSetAddDelta) {
  OrSet<std::string> s;
  s.Add(kR, "pear");
  s.Add(kR, "plum");
  const auto delta = s.Add(kR, "apple");
  EXPECT_EQ(
      Hex(Encode(delta)),
      "101150010bf10172420fab11290d000411150e0002110d0dff157c4a7fb979379e0011012a1f6170706c650103");
  OrSet<std::string> fresh;
  EXPECT_EQ(Hex(Encode(fresh.Add(kR, "apple"))),
            "101250010bf10172420fab11290d000111210d000111190e000211110dff157c4a7fb979379e0001011101"
            "2a1f6170706c650101");
  EXPECT_EQ(Hex(Encode(s.Remove("pear"))),
            "1008500104f10172420fab110d0d000111050dff157c4a7fb979379e000101");
}

// ---------------------------------------------------------------------------
// Decoding cost is linear: context dots interleaved with store dots used to
// be inserted one by one into the middle of the cloud (quadratic).

TEST(CodecCostTest, InterleavedContextDecodesInLinearTime) {
  constexpr std::size_t kN = 200'000;
  Columns c;
  c.type_id = TypeIdOf<OrSet<int>>();
  c.replicas = {kR.value()};
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < kN; ++i) keys.push_back(ValueCodec<int>::Encode(static_cast<int>(i)));
  std::sort(keys.begin(), keys.end());
  for (std::size_t i = 0; i < kN; ++i) {
    c.keys.push_back(keys[i]);
    c.dot_counter.push_back(10 + 2 * i);  // stored
    c.cloud_replica.push_back(0);
    c.cloud_counter.push_back(11 + 2 * i);  // seen, not stored
  }
  const std::string bytes = EncodeColumns(c);
  const auto start = std::chrono::steady_clock::now();
  const auto decoded = Decode<OrSet<int>>(bytes);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), kN);
  EXPECT_EQ(decoded->context().cloud().size(), 2 * kN);
  std::cout << "[ figure   ] decoded " << bytes.size() << " bytes in " << seconds << " s\n";
  EXPECT_LT(seconds, 5.0);
}

// ---------------------------------------------------------------------------
// CheckDeltaAgainst: counters received as deltas from their owner.

TEST(CheckDeltaTest, GCounterDeltaMayNotDecreaseAKnownCount) {
  GCounter known;
  known.Increment(kR, 5);
  GCounter lower;
  lower.Increment(kR, 3);
  const Status status = CheckDeltaAgainst(known, lower);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("decreases the count"), std::string::npos) << status;
  EXPECT_NE(status.message().find("from 5 to 3"), std::string::npos) << status;

  GCounter equal;
  equal.Increment(kR, 5);
  EXPECT_TRUE(CheckDeltaAgainst(known, equal).ok());
  GCounter copy = known;
  EXPECT_TRUE(CheckDeltaAgainst(known, copy.Increment(kR, 1)).ok());
  GCounter other;
  EXPECT_TRUE(CheckDeltaAgainst(known, other.Increment(kS, 1)).ok());
  EXPECT_TRUE(CheckDeltaAgainst(known, GCounter{}).ok());
}

TEST(CheckDeltaTest, PnCounterChecksBothHalves) {
  PnCounter known;
  known.Increment(kR, 5);
  known.Decrement(kR, 4);
  PnCounter fewer_decrements;
  fewer_decrements.Decrement(kR, 2);
  const Status status = CheckDeltaAgainst(known, fewer_decrements);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("decrements: delta decreases"), std::string::npos) << status;
  PnCounter fewer_increments;
  fewer_increments.Increment(kR, 1);
  EXPECT_NE(CheckDeltaAgainst(known, fewer_increments).message().find("increments:"),
            std::string::npos);
  PnCounter copy = known;
  EXPECT_TRUE(CheckDeltaAgainst(known, copy.Decrement(kR, 1)).ok());
}

// One dot names one write: a delta that reuses a dot known here for another
// write (another amount, value or key) is forged or corrupt. Joining it
// would not commute: each side would keep its own write.
TEST(CheckDeltaTest, CausalDeltaMayNotRewriteAKnownDot) {
  CausalCounter known;
  const CausalCounter honest = known.Increment(kR, 3);
  EXPECT_TRUE(CheckDeltaAgainst(known, honest).ok());
  const CausalCounter forged = CausalCounter::FromParts(
      crdt::DotFun<std::uint64_t>(crdt::Dot{kR, 1}, 300), honest.context());
  const Status status = CheckDeltaAgainst(known, forged);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("carries another payload"), std::string::npos) << status;
  CausalCounter a = known;
  a.Join(forged);
  CausalCounter b = forged;
  b.Join(known);
  EXPECT_NE(a, b);  // why it must be refused

  MvRegister<std::string> reg;
  const auto write = reg.Assign(kR, "left");
  const auto other = MvRegister<std::string>::FromParts(
      crdt::DotFun<std::string>(crdt::Dot{kR, 1}, "right"), write.context());
  EXPECT_FALSE(CheckDeltaAgainst(reg, other).ok());
  EXPECT_TRUE(CheckDeltaAgainst(reg, write).ok());

  OrSet<std::string> set;
  set.Add(kR, "apple");
  OrSet<std::string> moved;
  moved.Add(kR, "pear");  // the same dot (r,1), another element
  const Status key = CheckDeltaAgainst(set, moved);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(
      key.message().find("dot (" + std::to_string(kR.value()) + ",1) is stored under another key"),
      std::string::npos)
      << key;

  using Nested = OrMap<std::string, OrMap<int, MvRegister<std::string>>>;
  const auto assign = [](int inner_key, const char* value) {
    Nested m;
    m.Update("u", [&](OrMap<int, MvRegister<std::string>>& inner) {
      return inner.Update(inner_key,
                          [&](MvRegister<std::string>& r) { return r.Assign(kR, value); });
    });
    return m;
  };
  const Nested nested = assign(1, "x");
  EXPECT_FALSE(CheckDeltaAgainst(nested, assign(2, "x")).ok());  // another inner key
  EXPECT_FALSE(CheckDeltaAgainst(nested, assign(1, "y")).ok());  // another value
  EXPECT_TRUE(CheckDeltaAgainst(nested, assign(1, "x")).ok());
}

TEST(CheckDeltaTest, ConsistentHistoriesPass) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    Rng rng(seed);
    const auto h = testing::RandomHistory<OrMap<std::string, CausalCounter>>(rng, 3, 40);
    for (const auto& known : h.replicas) {
      for (const auto& delta : h.deltas) EXPECT_TRUE(CheckDeltaAgainst(known, delta).ok());
      for (const auto& other : h.replicas) EXPECT_TRUE(CheckDeltaAgainst(known, other).ok());
    }
  }
}

TEST(CheckDeltaTest, RegistersAndEmptyDeltasPass) {
  LwwRegister<std::string> known;
  known.Assign(kR, HlcTimestamp{5, 0}, "new");
  LwwRegister<std::string> old;
  old.Assign(kR, HlcTimestamp{1, 0}, "old");
  EXPECT_TRUE(CheckDeltaAgainst(known, old).ok());
  OrSet<std::string> set;
  set.Add(kR, "a");
  EXPECT_TRUE(CheckDeltaAgainst(set, OrSet<std::string>{}).ok());
  EXPECT_TRUE(CheckDeltaAgainst(EwFlag{}, EwFlag{}).ok());
}

}  // namespace
}  // namespace converge::codec
