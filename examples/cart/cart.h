// The cart domain: what a cart is, its limits, and its rules
// (docs/cart-api.md). Shared by cart-server and coherence-check.
//
// A cart is one key "cart:<id>" holding an OrMap<Sku, CausalCounter>: each
// line's quantity is a causal counter, so concurrent additions sum, a remove
// removes only what the remover had seen, and a quantity set on one replica
// keeps the increments it had not seen (docs/semantics.md).

#ifndef CONVERGE_EXAMPLES_CART_CART_H_
#define CONVERGE_EXAMPLES_CART_CART_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/causal_counter.h"
#include "crdt/or_map.h"

namespace converge::cart {

using CartState = crdt::OrMap<std::string, crdt::CausalCounter>;

inline constexpr std::string_view kKeyPrefix = "cart:";
inline constexpr std::size_t kMaxCartIdBytes = 128;
inline constexpr std::size_t kMaxSkuBytes = 128;
inline constexpr std::uint64_t kMaxQuantity = 1'000'000;  // per request and per line
inline constexpr std::size_t kMaxLines = 500;

// "alice" -> "cart:alice".
inline std::string CartKey(std::string_view id) {
  return std::string(kKeyPrefix) + std::string(id);
}

// The reason a cart id is refused, or nullopt when it is valid: 1-128
// characters from A-Z a-z 0-9 . _ ~ - (URL-safe without escaping).
std::optional<std::string> CheckCartId(std::string_view id);

// The reason a SKU is refused, or nullopt when it is valid: 1-128 bytes of
// well-formed UTF-8 (shortest forms, no surrogates), no control characters
// (C0, DEL, C1), no noncharacters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF).
std::optional<std::string> CheckSku(std::string_view sku);

struct Line {
  std::string sku;
  std::uint64_t quantity = 0;
  friend bool operator==(const Line&, const Line&) = default;
};

// The cart's lines, sorted by SKU (byte order). A line whose counter sum
// overflows 64 bits (possible only through concurrent additions far past
// the limits) is reported with quantity UINT64_MAX.
std::vector<Line> Lines(const CartState& cart);

// {"cart":"alice","items":[{"sku":"apple","quantity":2}]}
std::string CartJson(std::string_view id, const CartState& cart);
// The same with "context": the cart's sealed context, or null when it has
// none (cart-server's answers; docs/cart-api.md).
std::string CartJson(std::string_view id, const CartState& cart,
                     const std::optional<std::string>& context);

// The domain rules a converged cart must keep (coherence-check reports
// violations): every SKU valid, every quantity 1..kMaxQuantity, at most
// kMaxLines lines. Concurrent additions on different replicas can push a
// line past the limit, which each replica alone refuses; one description per
// violation, empty when the cart keeps every rule.
std::vector<std::string> DomainViolations(const CartState& cart);

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_CART_H_
