// The request-parsing pieces of the cart API (docs/cart-api.md, "Limits and
// input rules"), apart from the service so that they are unit-tested and
// fuzzed alone (examples/cart/fuzz/). Everything here treats its input as
// untrusted and reports a reason instead of throwing.

#ifndef CONVERGE_EXAMPLES_CART_SERVER_REQUEST_PARSING_H_
#define CONVERGE_EXAMPLES_CART_SERVER_REQUEST_PARSING_H_

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "crdt/codec/status.h"

namespace converge::cart {

inline constexpr int kMaxJsonDepth = 8;

// The body as one JSON object whose fields are all in `allowed`: nesting at
// most kMaxJsonDepth (checked before parsing, without recursion), no
// duplicate keys, valid UTF-8. InvalidArgument with the reason otherwise.
StatusOr<nlohmann::json> ParseObject(std::string_view body,
                                     std::initializer_list<std::string_view> allowed);

// Field "quantity": a JSON integer (no fraction, exponent or string) in
// [min, kMaxQuantity].
StatusOr<std::uint64_t> Quantity(const nlohmann::json& body, std::uint64_t min);

// Field "sku": a string that CheckSku accepts.
StatusOr<std::string> SkuField(const nlohmann::json& body);

// 16 lower-case hex digits.
std::string Hex64(std::uint64_t v);

// RFC 4648 base64 with padding; decoding is strict (canonical padding and
// bits, no whitespace) and gives nullopt otherwise.
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_SERVER_REQUEST_PARSING_H_
