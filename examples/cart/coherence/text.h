// Small text helpers of coherence-check: hexadecimal digests, strict
// base64, making untrusted bytes safe to print, and durations in flags.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_TEXT_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace converge::cart::coherence {

// 16 lowercase hex digits.
std::string Hex16(std::uint64_t v);

// 1-16 hex digits (either case), nothing else; nullopt otherwise.
std::optional<std::uint64_t> ParseHex64(std::string_view text);

// Standard base64 (RFC 4648 §4) with padding.
std::string Base64Encode(std::string_view bytes);

// Strict base64: the standard alphabet, length a multiple of 4, '=' only as
// the final one or two characters, zero bits after the last byte, no
// whitespace; so one encoding per byte string. nullopt when `text` breaks
// any rule or would decode to more than `max_bytes`.
std::optional<std::string> Base64Decode(std::string_view text, std::size_t max_bytes);

// `text` for a terminal or a log line: valid UTF-8 without control
// characters is kept; otherwise every byte outside printable ASCII becomes
// \xNN. At most `max_bytes` of input are shown ("..." marks a cut).
std::string Printable(std::string_view text, std::size_t max_bytes = 256);

// A number of seconds as a flag gives it: decimal digits with an optional
// fraction ("2", "0.5", ".25", "30."), nothing else (no sign, exponent,
// spaces, "inf" or "nan"); nullopt otherwise.
std::optional<double> ParseSeconds(std::string_view text);

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_TEXT_H_
