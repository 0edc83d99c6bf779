#include "crdt/codec/codec.h"

#include <gtest/gtest.h>

#include <string>

namespace converge::codec {
namespace {

using crdt::CausalCounter;
using crdt::OrMap;
using crdt::OrSet;
using crdt::ReplicaId;

TEST(CodecTest, OrSetRoundTrip) {
  OrSet<std::string> s;
  s.Add(ReplicaId{7}, "apple");
  s.Add(ReplicaId{9}, "pear");
  s.Remove("apple");
  const std::string bytes = Encode(s);
  const auto decoded = Decode<OrSet<std::string>>(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, s);
}

TEST(CodecTest, AddDeltaIntoLargeSetIsSmall) {
  OrSet<std::string> s;
  const ReplicaId r{0x9e3779b97f4a7c15ULL};
  for (int i = 0; i < 100000; ++i) s.Add(r, "item-" + std::to_string(i));
  const auto delta = s.Add(r, "item-100000");
  const std::string bytes = Encode(delta);
  EXPECT_LE(bytes.size(), 64u);
}

}  // namespace
}  // namespace converge::codec
