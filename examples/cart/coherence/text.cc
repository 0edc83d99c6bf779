#include "examples/cart/coherence/text.h"

#include <array>
#include <charconv>
#include <cmath>

namespace converge::cart::coherence {

namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::array<int, 256> Base64Table() {
  std::array<int, 256> table{};
  for (int& v : table) v = -1;
  for (std::size_t i = 0; i < kBase64.size(); ++i) {
    table[static_cast<unsigned char>(kBase64[i])] = static_cast<int>(i);
  }
  return table;
}
constexpr std::array<int, 256> kBase64Values = Base64Table();

}  // namespace

std::string Hex16(std::uint64_t v) {
  std::string out(16, '0');
  for (std::size_t i = 16; i-- > 0;) {
    out[i] = kHexDigits[v & 0xfu];
    v >>= 4;
  }
  return out;
}

std::optional<std::uint64_t> ParseHex64(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : text) {
    const int d = HexValue(c);
    if (d < 0) return std::nullopt;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto at = [&](std::size_t k) -> std::uint32_t {
    return static_cast<unsigned char>(bytes[k]);
  };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8) | at(i + 2);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += kBase64[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = at(i) << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (at(i) << 16) | (at(i + 1) << 8);
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text, std::size_t max_bytes) {
  if (text.size() % 4 != 0) return std::nullopt;
  if (text.size() / 4 * 3 > max_bytes + 2) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int d = 0;
      if (c == '=') {
        if (!last || k < 4 - padding) return std::nullopt;
      } else {
        d = kBase64Values[static_cast<unsigned char>(c)];
        if (d < 0) return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    const std::size_t keep = last ? 3 - padding : 3;
    // The bits past the last kept byte must be zero (one spelling per value).
    if (keep == 1 && (v & 0xffffu) != 0) return std::nullopt;
    if (keep == 2 && (v & 0xffu) != 0) return std::nullopt;
    out += static_cast<char>((v >> 16) & 0xffu);
    if (keep >= 2) out += static_cast<char>((v >> 8) & 0xffu);
    if (keep == 3) out += static_cast<char>(v & 0xffu);
  }
  if (out.size() > max_bytes) return std::nullopt;
  return out;
}

namespace {

// True when `text` is well-formed UTF-8 (shortest forms, no surrogates)
// without C0, DEL or C1 control characters.
bool PrintableUtf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (b0 < 0x80) {
      if (b0 < 0x20 || b0 == 0x7f) return false;
      ++i;
      continue;
    }
    if ((b0 & 0xe0) == 0xc0) {
      length = 2, cp = b0 & 0x1fu, min = 0x80;
    } else if ((b0 & 0xf0) == 0xe0) {
      length = 3, cp = b0 & 0x0fu, min = 0x800;
    } else if ((b0 & 0xf8) == 0xf0) {
      length = 4, cp = b0 & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (cp >= 0x80 && cp <= 0x9f) return false;
    i += length;
  }
  return true;
}

}  // namespace

std::string Printable(std::string_view text, std::size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  if (cut) text = text.substr(0, max_bytes);
  std::string out;
  if (PrintableUtf8(text) && text.find('\\') == std::string_view::npos) {
    out = std::string(text);
  } else {
    for (const char c : text) {
      const auto b = static_cast<unsigned char>(c);
      if (b >= 0x20 && b < 0x7f && c != '\\') {
        out += c;
      } else {
        out += "\\x";
        out += kHexDigits[b >> 4];
        out += kHexDigits[b & 0xfu];
      }
    }
  }
  if (cut) out += "...";
  return out;
}

std::optional<double> ParseSeconds(std::string_view text) {
  std::size_t digits = 0;
  std::size_t dots = 0;
  for (const char c : text) {
    if (c >= '0' && c <= '9') {
      ++digits;
    } else if (c == '.') {
      ++dots;
    } else {
      return std::nullopt;
    }
  }
  if (digits == 0 || dots > 1 || text.size() > 32) return std::nullopt;
  double v = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

}  // namespace converge::cart::coherence
