// The columns of one encoded state, as plain C++ (no Cap'n Proto types).
//
// codec.h turns a CRDT into Columns and back (templates, per type);
// columns.cc turns Columns into canonical packed Cap'n Proto bytes and back
// (compiled once). The field meanings are those of crdt/codec/converge.capnp
// and docs/wire-format.md.

#ifndef CONVERGE_CRDT_CODEC_COLUMNS_H_
#define CONVERGE_CRDT_CODEC_COLUMNS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/codec/status.h"

namespace converge::codec {

inline constexpr std::uint16_t kFormatVersion = 1;

struct Columns {
  std::uint16_t version = kFormatVersion;
  std::uint32_t type_id = 0;
  std::vector<std::uint64_t> replicas;
  std::vector<std::uint64_t> counts;
  std::vector<std::uint64_t> neg_counts;
  std::vector<std::uint64_t> vector;
  std::vector<std::uint32_t> cloud_replica;
  std::vector<std::uint64_t> cloud_counter;
  std::vector<std::string> keys;
  std::vector<std::uint32_t> map_sizes;
  std::vector<std::uint32_t> leaf_extra;
  std::vector<std::uint32_t> dot_replica;
  std::vector<std::uint64_t> dot_counter;
  std::vector<std::string> values;
  std::vector<std::uint64_t> amounts;
  bool lww_present = false;
  std::uint32_t lww_logical = 0;
  std::uint64_t lww_physical_ms = 0;
  std::uint32_t lww_writer = 0;
  std::string lww_value;

  friend bool operator==(const Columns&, const Columns&) = default;
};

// Bounds for decoding untrusted bytes. The defaults suit states of tens of
// millions of elements; the replication layer sets lower ones for frames.
struct DecodeLimits {
  // Input larger than this is rejected before anything is parsed.
  std::size_t max_bytes = std::size_t{256} << 20;
  // Cap on the unpacked message, in 8-byte words, checked against the size
  // its segment table declares before anything is allocated. The declared
  // size must also be what the packed input really unpacks to, so the
  // memory a decode allocates is bounded by the content of its input, and
  // Cap'n Proto's traversal limit is set to that size: a message whose
  // pointers lead the reader over more words than it has (amplification)
  // is rejected.
  std::uint64_t max_words = std::uint64_t{64} << 20;
  // Cap'n Proto nesting limit; a State is flat, so 4 is ample.
  int max_nesting = 4;
  // Replica ids one state may mention.
  std::size_t max_replicas = std::size_t{1} << 16;
};

// Canonical packed bytes of `columns`: equal Columns give equal bytes.
std::string EncodeColumns(const Columns& columns);

// Parses packed bytes into `columns` within `limits`. Never throws; a
// malformed or oversized input gives kInvalidArgument (or kResourceExhausted
// for a limit) with the reason. The input must be exactly one
// single-segment message (what EncodeColumns writes): more segments,
// truncation and trailing bytes are rejected. Checks only the Cap'n Proto
// layer: column meanings are validated by the typed decoder in codec.h.
Status DecodeColumns(std::string_view bytes, const DecodeLimits& limits, Columns* columns);

// The type id of an encoding, reading only the message header (the same
// limits apply; the columns are not decoded).
StatusOr<std::uint32_t> PeekTypeId(std::string_view bytes, const DecodeLimits& limits = {});

// How many replica ids an encoding names (its replica column), without
// decoding the rest and without applying limits.max_replicas: a writer asks
// before storing a state its peers could not decode.
StatusOr<std::size_t> PeekReplicaCount(std::string_view bytes, const DecodeLimits& limits = {});

// 32-bit FNV-1a of a type descriptor: the typeId written in every state.
constexpr std::uint32_t TypeIdOf(std::string_view descriptor) {
  std::uint32_t hash = 2166136261u;
  for (const char c : descriptor) {
    hash ^= static_cast<std::uint8_t>(c);
    hash *= 16777619u;
  }
  return hash;
}

}  // namespace converge::codec

#endif  // CONVERGE_CRDT_CODEC_COLUMNS_H_
