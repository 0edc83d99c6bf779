#include "examples/cart/cart.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace converge::cart {

std::optional<std::string> CheckCartId(std::string_view id) {
  if (id.empty()) return "cart id is empty";
  if (id.size() > kMaxCartIdBytes) {
    return "cart id is longer than " + std::to_string(kMaxCartIdBytes) + " characters";
  }
  for (const char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '~' || c == '-';
    if (!ok) return "cart id may contain only A-Z a-z 0-9 . _ ~ -";
  }
  return std::nullopt;
}

namespace {

// Decodes one UTF-8 sequence at s[i]; nullopt when malformed (overlong,
// surrogate, beyond U+10FFFF, truncated).
std::optional<char32_t> NextCodePoint(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  std::size_t length = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if (b0 < 0x80) {
    ++i;
    return b0;
  } else if ((b0 & 0xe0) == 0xc0) {
    length = 2, cp = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    length = 3, cp = b0 & 0x0f, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    length = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;
  }
  if (i + length > s.size()) return std::nullopt;
  for (std::size_t k = 1; k < length; ++k) {
    const unsigned char b = byte(i + k);
    if ((b & 0xc0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return std::nullopt;
  i += length;
  return cp;
}

}  // namespace

std::optional<std::string> CheckSku(std::string_view sku) {
  if (sku.empty()) return "sku is empty";
  if (sku.size() > kMaxSkuBytes) {
    return "sku is longer than " + std::to_string(kMaxSkuBytes) + " bytes (UTF-8)";
  }
  for (std::size_t i = 0; i < sku.size();) {
    const std::optional<char32_t> cp = NextCodePoint(sku, i);
    if (!cp) return "sku is not well-formed UTF-8";
    if (*cp < 0x20 || (*cp >= 0x7f && *cp <= 0x9f)) return "sku contains a control character";
    if ((*cp >= 0xfdd0 && *cp <= 0xfdef) || (*cp & 0xfffe) == 0xfffe) {
      return "sku contains a Unicode noncharacter";
    }
  }
  return std::nullopt;
}

std::vector<Line> Lines(const CartState& cart) {
  std::vector<Line> lines;
  lines.reserve(cart.size());
  cart.ForEach([&](const std::string& sku, const crdt::CausalCounter& quantity) {
    lines.push_back(
        Line{sku, quantity.TryValue().value_or(std::numeric_limits<std::uint64_t>::max())});
  });
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) { return a.sku < b.sku; });
  return lines;
}

namespace {

nlohmann::ordered_json CartObject(std::string_view id, const CartState& cart) {
  // Ordered: "sku" before "quantity", as the API documents them.
  nlohmann::ordered_json items = nlohmann::ordered_json::array();
  for (const Line& line : Lines(cart)) {
    items.push_back({{"sku", line.sku}, {"quantity", line.quantity}});
  }
  return nlohmann::ordered_json{{"cart", std::string(id)}, {"items", std::move(items)}};
}

// A state that went wrong (coherence-check reads any) may hold bytes that
// are not UTF-8: replace them rather than fail.
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::string CartJson(std::string_view id, const CartState& cart) {
  return Dump(CartObject(id, cart));
}

std::string CartJson(std::string_view id, const CartState& cart,
                     const std::optional<std::string>& context) {
  nlohmann::ordered_json j = CartObject(id, cart);
  j["context"] = context ? nlohmann::ordered_json(*context) : nlohmann::ordered_json(nullptr);
  return Dump(j);
}

std::vector<std::string> DomainViolations(const CartState& cart) {
  std::vector<std::string> out;
  if (cart.size() > kMaxLines) {
    out.push_back(std::to_string(cart.size()) + " lines, more than " + std::to_string(kMaxLines));
  }
  for (const Line& line : Lines(cart)) {
    if (const auto why = CheckSku(line.sku)) out.push_back("line '" + line.sku + "': " + *why);
    if (line.quantity == 0 || line.quantity > kMaxQuantity) {
      out.push_back("line '" + line.sku + "': quantity " + std::to_string(line.quantity) +
                    " outside 1.." + std::to_string(kMaxQuantity));
    }
  }
  return out;
}

}  // namespace converge::cart
