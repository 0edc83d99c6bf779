#include "examples/cart/server/request_parsing.h"

#include <set>
#include <vector>

#include "examples/cart/cart.h"

namespace converge::cart {

using nlohmann::json;

std::string Hex64(std::uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = digits[v & 0xf];
    v >>= 4;
  }
  return out;
}

// --- base64 (RFC 4648, with padding) -------------------------------------------

std::string Base64Encode(std::string_view bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const auto v = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                   (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                   static_cast<unsigned char>(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out += alphabet[(v >> (6 * k)) & 0x3f];
  }
  if (i < bytes.size()) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (i + 1 < bytes.size()) v |= std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out += alphabet[(v >> 18) & 0x3f];
    out += alphabet[(v >> 12) & 0x3f];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 0x3f] : '=';
    out += '=';
  }
  return out;
}

// Strict: canonical padding, no whitespace, no stray bits.
std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + static_cast<std::size_t>(k)];
      if (c == '=' && last && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;
      v[k] = value(c);
      if (v[k] < 0) return std::nullopt;
    }
    const std::uint32_t n =
        (static_cast<std::uint32_t>(v[0]) << 18) | (static_cast<std::uint32_t>(v[1]) << 12) |
        (static_cast<std::uint32_t>(v[2]) << 6) | static_cast<std::uint32_t>(v[3]);
    if ((pad == 1 && (n & 0xff) != 0) || (pad == 2 && (n & 0xffff) != 0)) return std::nullopt;
    out += static_cast<char>((n >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(n & 0xff);
  }
  return out;
}

// --- strict JSON bodies -------------------------------------------------------------

// The body as one JSON object whose fields are all in `allowed`; the error
// message otherwise.
StatusOr<json> ParseObject(std::string_view body, std::initializer_list<std::string_view> allowed) {
  // JSON text never holds a raw NUL (strings escape control characters); the
  // parser would stop at one and ignore what follows.
  if (body.find('\0') != std::string_view::npos) return InvalidArgument("body is not valid JSON");
  // Depth first, without recursion: the parser itself recurses.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        return InvalidArgument("JSON nested deeper than " + std::to_string(kMaxJsonDepth));
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  std::vector<std::set<std::string>> keys;
  std::optional<std::string> duplicate;
  const json::parser_callback_t callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() && parsed.is_string()) {
      if (!keys.back().insert(parsed.get<std::string>()).second && !duplicate) {
        duplicate = parsed.get<std::string>();
      }
    }
    return true;
  };
  json j = json::parse(body.begin(), body.end(), callback, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument("body is not valid JSON");
  if (duplicate) return InvalidArgument("duplicate key '" + *duplicate + "' in the JSON body");
  if (!j.is_object()) return InvalidArgument("body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const std::string_view a : allowed) known = known || key == a;
    if (!known) return InvalidArgument("unknown field '" + key + "'");
  }
  return j;
}

// A quantity field: a JSON integer in [min, kMaxQuantity].
StatusOr<std::uint64_t> Quantity(const json& body, std::uint64_t min) {
  const auto it = body.find("quantity");
  if (it == body.end()) return InvalidArgument("field 'quantity' is missing");
  const std::string range = std::to_string(min) + ".." + std::to_string(kMaxQuantity);
  if (!it->is_number_integer()) {
    return InvalidArgument("'quantity' must be an integer in " + range);
  }
  if (it->is_number_unsigned()) {
    const auto q = it->get<std::uint64_t>();
    if (q >= min && q <= kMaxQuantity) return q;
  } else {
    const auto q = it->get<std::int64_t>();
    if (q >= 0 && static_cast<std::uint64_t>(q) >= min &&
        static_cast<std::uint64_t>(q) <= kMaxQuantity)
      return static_cast<std::uint64_t>(q);
  }
  return InvalidArgument("'quantity' must be an integer in " + range);
}

StatusOr<std::string> SkuField(const json& body) {
  const auto it = body.find("sku");
  if (it == body.end()) return InvalidArgument("field 'sku' is missing");
  if (!it->is_string()) return InvalidArgument("'sku' must be a string");
  std::string sku = it->get<std::string>();
  if (const auto why = CheckSku(sku)) return InvalidArgument(*why);
  return sku;
}

}  // namespace converge::cart
