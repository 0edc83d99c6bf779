// Cart contexts: what a client saw of a cart, sealed so that it cannot be
// forged (docs/cart-api.md, "Cart contexts"; docs/semantics.md).
//
// A GET answers a context: for every line, the dots of the additions the
// client is shown (a codec::EncodeContexts set keyed by a 64-bit hash of the
// SKU). A PUT or DELETE that sends it back acts on exactly those additions,
// at any replica, received there or not.
//
// Sealing: HMAC-SHA256 (truncated to 128 bits) over the context and the cart
// id, under a 256-bit key. Every member makes its key once (kept in its
// store, so it survives restarts), advertises it in its member metadata over
// the authenticated gossip channel, and keeps every key it learns from the
// others (also in its store): a context sealed by any member opens at every
// member, and no new flag or file is needed.
//
//   token = base64( version:u8 key-id:u32be contexts tag:16 )

#ifndef CONVERGE_EXAMPLES_CART_SERVER_CART_CONTEXT_H_
#define CONVERGE_EXAMPLES_CART_SERVER_CART_CONTEXT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/codec/context_codec.h"
#include "crdt/codec/status.h"
#include "examples/cart/cart.h"
#include "storage/store.h"

namespace converge::cart {

// The longest token a GET answers and a write accepts (base64 characters): a
// request header must fit the server's 8 KiB header limit. Carts whose
// context is longer (hundreds of lines with several additions each) answer
// no context, and writes to them act on what their replica has seen.
inline constexpr std::size_t kMaxContextChars = 6144;

struct ContextKey {
  std::uint32_t id = 0;
  std::array<unsigned char, 32> secret{};
  friend bool operator==(const ContextKey&, const ContextKey&) = default;
};

// This member's key and the keys learned from the others. Not thread-safe:
// one thread (the HTTP thread) uses it.
class ContextKeyring {
 public:
  // Loads this member's key from `store`'s auxiliary space, or makes one and
  // stores it; loads every key learned before.
  static StatusOr<ContextKeyring> Open(storage::Store& store);

  [[nodiscard]] const ContextKey& own() const { return keys_.front(); }
  // "<id hex>.<secret base64>", for the member metadata ("ctx_key").
  [[nodiscard]] std::string Advertised() const;
  // Learns a key another member advertised; stores it when new. InvalidArgument
  // for a malformed advertisement; true when the key was new.
  StatusOr<bool> Learn(std::string_view advertised, storage::Store& store);
  // Every known key with this id (ids are random: almost always one).
  [[nodiscard]] std::vector<const ContextKey*> Find(std::uint32_t id) const;
  [[nodiscard]] std::size_t size() const { return keys_.size(); }

 private:
  std::vector<ContextKey> keys_;  // own first
};

// The key a line's dots are filed under: 64 bits of SHA-256 of the SKU.
std::uint64_t LineKey(std::string_view sku);

// The sealed context of `cart` (the dots of each line), or nullopt when it
// would be longer than kMaxContextChars.
std::optional<std::string> SealContext(const ContextKey& key, std::string_view cart_id,
                                       const CartState& cart);

// What a client saw of a cart.
class SeenCart {
 public:
  explicit SeenCart(std::vector<codec::KeyedContext> lines) : lines_(std::move(lines)) {}
  // The dots of the line `sku` the client saw (empty when it saw none).
  [[nodiscard]] crdt::CausalContext Line(std::string_view sku) const;
  // Every dot the client saw.
  [[nodiscard]] crdt::CausalContext All() const;
  [[nodiscard]] std::size_t lines() const { return lines_.size(); }

 private:
  std::vector<codec::KeyedContext> lines_;
};

// Opens a token for `cart_id`: InvalidArgument (with the reason) when it is
// malformed, over the limits, sealed for another cart, altered, or sealed by
// a key no member advertised.
StatusOr<SeenCart> OpenContext(const ContextKeyring& keyring, std::string_view cart_id,
                               std::string_view token);

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_SERVER_CART_CONTEXT_H_
