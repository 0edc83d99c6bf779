// The answers of cart-server's endpoints that coherence-check reads
// (docs/cart-api.md, "Internal (for coherence-check)" and /cluster), parsed
// from untrusted bodies: bounded, type-checked, every field validated. A
// body that breaks the contract is an InvalidArgument naming the rule.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_WIRE_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/codec/status.h"

namespace converge::cart::coherence {

inline constexpr std::size_t kMaxKeyBytes = 1024;                // longer keys are refused
inline constexpr std::size_t kMaxJsonDepth = 16;                 // nesting of any answer
inline constexpr std::size_t kMaxNameBytes = 256;                // node and member names
inline constexpr std::size_t kMaxMembers = 4096;                 // members in /cluster
inline constexpr std::size_t kDefaultMaxStateBytes = 16u << 20;  // decoded state

// "HOST:PORT" as cart-server prints addresses (an IPv6 host in brackets).
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};
// Parses "HOST:PORT", "http://HOST:PORT" or "http://HOST:PORT/"; https and
// paths are refused (coherence-check speaks plain HTTP).
StatusOr<HostPort> ParseNodeAddress(std::string_view text);
std::string ToString(const HostPort& a);  // "HOST:PORT"

// GET /cluster
struct ClusterMember {
  std::string name;
  std::string http;   // "HOST:PORT", may be empty when the member gossips none
  std::string state;  // alive | suspect | dead | left
};
struct ClusterInfo {
  std::string node;
  std::optional<std::uint64_t> replica;  // absent or unparsable: unknown
  std::vector<ClusterMember> members;
};
StatusOr<ClusterInfo> ParseCluster(std::string_view body);

// GET /internal/keys
struct KeyDigest {
  std::string key;
  std::uint64_t digest = 0;
};
struct KeyPage {
  std::vector<KeyDigest> keys;
  std::optional<std::string> next;
};
// Checks that every key starts with `prefix`, comes after `after` (when not
// empty) and after the previous one in byte order, and that there are at
// most `limit`.
StatusOr<KeyPage> ParseKeyPage(std::string_view body, std::string_view prefix,
                               std::string_view after, std::size_t limit);

// GET /internal/state
struct StateAnswer {
  std::string state;  // the decoded base64: the encoded CRDT state
  std::uint64_t digest = 0;
};
StatusOr<StateAnswer> ParseState(std::string_view body, std::string_view key,
                                 std::size_t max_state_bytes);

// POST /internal/merge
struct MergeAnswer {
  bool changed = false;
  std::optional<std::uint64_t> digest;
};
StatusOr<MergeAnswer> ParseMerge(std::string_view body);
std::string MergeBody(std::string_view key, std::string_view state);

// {"error": "..."} of an error answer, made printable; empty when absent.
std::string ErrorOf(std::string_view body);

// Percent-encodes a query value (everything but A-Z a-z 0-9 - . _ ~ :).
std::string QueryEscape(std::string_view value);

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_WIRE_H_
