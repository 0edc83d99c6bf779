#include "examples/cart/server/cart_context.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "crdt/codec/registry.h"
#include "examples/cart/server/request_parsing.h"
#include "storage/memory_store.h"

namespace converge::cart {
namespace {

using crdt::CausalCounter;
using crdt::ReplicaId;

std::unique_ptr<storage::MemoryStore> NewStore() {
  return std::make_unique<storage::MemoryStore>(
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins()),
      ReplicaId{1});
}

CartState TwoLines() {
  CartState cart;
  (void)cart.Update("apple", [](CausalCounter& q) { return q.Increment(ReplicaId{1}, 1); });
  (void)cart.Update("pear", [](CausalCounter& q) { return q.Increment(ReplicaId{2}, 2); });
  (void)cart.Update("pear", [](CausalCounter& q) { return q.Increment(ReplicaId{1}, 1); });
  return cart;
}

TEST(CartContextTest, SealsAndOpensTheDotsOfEveryLine) {
  auto store = NewStore();
  StatusOr<ContextKeyring> ring = ContextKeyring::Open(*store);
  ASSERT_TRUE(ring.ok()) << ring.status();
  const CartState cart = TwoLines();
  const std::optional<std::string> token = SealContext(ring->own(), "bob", cart);
  ASSERT_TRUE(token.has_value());
  EXPECT_LT(token->size(), 120u);
  StatusOr<SeenCart> seen = OpenContext(*ring, "bob", *token);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->lines(), 2u);
  EXPECT_EQ(seen->Line("apple"), cart.DotsOf("apple"));
  EXPECT_EQ(seen->Line("pear"), cart.DotsOf("pear"));
  EXPECT_TRUE(seen->Line("fig").empty());
  EXPECT_EQ(seen->All(), cart.LiveDots());
  // Deterministic: the same cart seals to the same token.
  EXPECT_EQ(SealContext(ring->own(), "bob", cart), token);
}

TEST(CartContextTest, RefusesTokensForAnotherCartAlteredOrUnknown) {
  auto store = NewStore();
  StatusOr<ContextKeyring> ring = ContextKeyring::Open(*store);
  ASSERT_TRUE(ring.ok());
  const std::string token = *SealContext(ring->own(), "bob", TwoLines());
  EXPECT_EQ(OpenContext(*ring, "alice", token).status().code(), StatusCode::kInvalidArgument);
  std::string bytes = *Base64Decode(token);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::string altered = bytes;
    altered[i] = static_cast<char>(altered[i] ^ 0x10);
    const StatusOr<SeenCart> got = OpenContext(*ring, "bob", Base64Encode(altered));
    EXPECT_FALSE(got.ok()) << "byte " << i;
  }
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(OpenContext(*ring, "bob", Base64Encode(bytes.substr(0, n))).ok()) << n;
  }
  // Sealed by a key this member never learned: NotFound (the service then
  // refreshes the members' keys once and answers 400).
  auto other_store = NewStore();
  StatusOr<ContextKeyring> other = ContextKeyring::Open(*other_store);
  const std::string foreign = *SealContext(other->own(), "bob", TwoLines());
  EXPECT_EQ(OpenContext(*ring, "bob", foreign).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ring->Learn(other->Advertised(), *store).ok());
  EXPECT_TRUE(OpenContext(*ring, "bob", foreign).ok());
  EXPECT_FALSE(OpenContext(*ring, "bob", std::string(kMaxContextChars + 4, 'A')).ok());
  EXPECT_FALSE(OpenContext(*ring, "bob", "").ok());
}

TEST(CartContextTest, KeysSurviveARestartAndLearningIsIdempotent) {
  auto store = NewStore();
  auto peer_store = NewStore();
  StatusOr<ContextKeyring> peer = ContextKeyring::Open(*peer_store);
  std::string advertised;
  ContextKey own;
  {
    StatusOr<ContextKeyring> ring = ContextKeyring::Open(*store);
    ASSERT_TRUE(ring.ok());
    own = ring->own();
    EXPECT_EQ(*ring->Learn(peer->Advertised(), *store), true);
    EXPECT_EQ(*ring->Learn(peer->Advertised(), *store), false);
    EXPECT_EQ(ring->size(), 2u);
    advertised = ring->Advertised();
  }
  StatusOr<ContextKeyring> again = ContextKeyring::Open(*store);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->own(), own);
  EXPECT_EQ(again->Advertised(), advertised);
  EXPECT_EQ(again->size(), 2u);
  EXPECT_EQ(again->Find(peer->own().id).size(), 1u);
}

TEST(CartContextTest, RefusesMalformedAdvertisements) {
  auto store = NewStore();
  StatusOr<ContextKeyring> ring = ContextKeyring::Open(*store);
  const std::string good = ring->Advertised();
  for (const std::string& bad :
       {std::string(), std::string("x"), good.substr(0, 8), "ABCDEF01" + good.substr(8),
        "0123456." + good.substr(8), good.substr(0, 9) + "AAAA", good + "A",
        good.substr(0, 8) + ":" + good.substr(9)}) {
    EXPECT_FALSE(ring->Learn(bad, *store).ok()) << bad;
  }
  EXPECT_EQ(ring->size(), 1u);
}

}  // namespace
}  // namespace converge::cart
