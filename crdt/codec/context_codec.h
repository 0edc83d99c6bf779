// A causal context as compact bytes: what a client carries between a read and
// a write that acts on what it read (docs/semantics.md, "Client causal
// contexts"; the format in docs/wire-format.md).
//
//   std::string bytes = converge::codec::EncodeContext(cart.DotsOf("apple"));
//   StatusOr<CausalContext> seen = converge::codec::DecodeContext(bytes);
//
// Two shapes share one format: one context, or a set of contexts keyed by
// 64-bit ids (one per element or map key, e.g. a hash of a cart line's SKU)
// with one replica table for all. Both are a version vector plus its
// exceptions, written as runs of dots; a context of a handful of replicas
// takes a few bytes per replica. The encoding is canonical (one spelling per
// value) and versioned; decoding treats its input as untrusted: bounded by
// ContextLimits, every invariant checked, and the input must be the
// canonical encoding of what it decoded. Never throws.
//
// The bytes carry no authentication: a service handing contexts to clients
// seals them (the cart server uses a MAC; docs/cart-api.md).

#ifndef CONVERGE_CRDT_CODEC_CONTEXT_CODEC_H_
#define CONVERGE_CRDT_CODEC_CONTEXT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/causal_context.h"
#include "crdt/codec/status.h"

namespace converge::codec {

// The format version written and the only one read.
inline constexpr std::uint8_t kContextFormatVersion = 1;

struct ContextLimits {
  std::size_t max_bytes = 64 * 1024;
  std::size_t max_replicas = 1024;
  std::size_t max_entries = 4096;  // contexts in a keyed set
  // Dots over all contexts, a version-vector entry of n counting n: bounds
  // the work of operations that walk a context's dots.
  std::uint64_t max_dots = std::uint64_t{1} << 20;
};

std::string EncodeContext(const crdt::CausalContext& context);
StatusOr<crdt::CausalContext> DecodeContext(std::string_view bytes,
                                            const ContextLimits& limits = {});

struct KeyedContext {
  std::uint64_t key = 0;
  crdt::CausalContext context;
  friend bool operator==(const KeyedContext&, const KeyedContext&) = default;
};

// Entries in any order; keys must be distinct (checked: a duplicate key is
// std::invalid_argument). Empty contexts are left out. Decoding returns the
// entries sorted by key, none empty.
std::string EncodeContexts(std::span<const KeyedContext> entries);
StatusOr<std::vector<KeyedContext>> DecodeContexts(std::string_view bytes,
                                                   const ContextLimits& limits = {});

}  // namespace converge::codec

#endif  // CONVERGE_CRDT_CODEC_CONTEXT_CODEC_H_
