// The causal-context format (context_codec.h; docs/wire-format.md):
//
//   context  = version:u8 kind:u8 replicas body          (kind 0)
//   contexts = version:u8 kind:u8 replicas count:varint
//              (key:u64le body){count}                    (kind 1, keys ascending)
//   replicas = count:varint (id:u64le){count}             (ascending, every one used)
//   body     = vector:varint (replica:varint counter:varint){vector}
//              runs:varint (replica:varint first:varint extra:varint){runs}
//
// `replica` indexes the replica table. A vector entry (r, n) holds dots
// (r, 1..n), n > 0, entries by ascending replica. A run holds dots (r, first
// .. first + extra); runs sort by (replica, first), never touch one another
// or the replica's vector entry (first > vector counter + 1): the canonical
// form of CausalContext, so equal contexts have equal bytes. Varints are
// LEB128, shortest form.

#include "crdt/codec/context_codec.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

namespace converge::codec {
namespace {

using crdt::CausalContext;
using crdt::Dot;
using crdt::ReplicaId;

enum Kind : std::uint8_t { kOne = 0, kKeyed = 1 };

void PutVarint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutFixed64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// The replica table of a set of contexts: sorted ids and their positions.
class ReplicaTable {
 public:
  void Add(const CausalContext& c) {
    for (const auto& e : c.vector()) ids_.push_back(e.replica.value());
    for (const Dot& d : c.cloud()) ids_.push_back(d.replica.value());
  }
  void Seal() {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  }
  void Write(std::string& out) const {
    PutVarint(out, ids_.size());
    for (const std::uint64_t id : ids_) PutFixed64(out, id);
  }
  [[nodiscard]] std::uint64_t IndexOf(ReplicaId r) const {
    return static_cast<std::uint64_t>(std::lower_bound(ids_.begin(), ids_.end(), r.value()) -
                                      ids_.begin());
  }

 private:
  std::vector<std::uint64_t> ids_;
};

void WriteBody(const CausalContext& c, const ReplicaTable& table, std::string& out) {
  PutVarint(out, c.vector().size());
  for (const auto& e : c.vector()) {
    PutVarint(out, table.IndexOf(e.replica));
    PutVarint(out, e.counter);
  }
  // The cloud is sorted by (replica, counter): cut it into runs.
  std::string runs;
  std::uint64_t count = 0;
  const auto cloud = c.cloud();
  for (std::size_t i = 0; i < cloud.size();) {
    std::size_t j = i + 1;
    while (j < cloud.size() && cloud[j].replica == cloud[i].replica &&
           cloud[j].counter == cloud[j - 1].counter + 1) {
      ++j;
    }
    PutVarint(runs, table.IndexOf(cloud[i].replica));
    PutVarint(runs, cloud[i].counter);
    PutVarint(runs, j - i - 1);
    ++count;
    i = j;
  }
  PutVarint(out, count);
  out += runs;
}

class Reader {
 public:
  Reader(std::string_view bytes, const ContextLimits& limits) : in_(bytes), limits_(limits) {}

  Status Header(std::uint8_t kind) {
    if (in_.size() > limits_.max_bytes) {
      return ResourceExhausted("a causal context of " + std::to_string(in_.size()) +
                               " bytes is over the limit of " + std::to_string(limits_.max_bytes));
    }
    std::uint8_t version = 0, got = 0;
    if (!Byte(&version) || !Byte(&got)) return Truncated();
    if (version != kContextFormatVersion) {
      return InvalidArgument("causal context format version " + std::to_string(version) +
                             " is not supported (this build reads version " +
                             std::to_string(kContextFormatVersion) + ")");
    }
    if (got != kind) {
      return InvalidArgument(got == kOne || got == kKeyed
                                 ? "a causal context of the other shape (one vs keyed)"
                                 : "unknown causal context kind " + std::to_string(got));
    }
    std::uint64_t n = 0;
    if (!Varint(&n)) return Truncated();
    if (n > limits_.max_replicas) {
      return ResourceExhausted("a causal context naming " + std::to_string(n) +
                               " replicas is over the limit of " +
                               std::to_string(limits_.max_replicas));
    }
    if (n * 8 > in_.size()) return Truncated();
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t id = 0;
      if (!Fixed64(&id)) return Truncated();
      if (!replicas_.empty() && id <= replicas_.back()) {
        return InvalidArgument("the replica table is not in ascending order");
      }
      replicas_.push_back(id);
    }
    return {};
  }

  Status Body(CausalContext* out) {
    std::uint64_t entries = 0;
    if (!Varint(&entries)) return Truncated();
    if (entries > replicas_.size()) return InvalidArgument("more vector entries than replicas");
    std::vector<CausalContext::Entry> vector;
    for (std::uint64_t i = 0; i < entries; ++i) {
      std::uint64_t r = 0, counter = 0;
      if (!Varint(&r) || !Varint(&counter)) return Truncated();
      if (r >= replicas_.size()) return InvalidArgument("a replica index out of range");
      if (counter == 0) return InvalidArgument("a vector entry of 0");
      if (!vector.empty() && ReplicaId{replicas_[r]} <= vector.back().replica) {
        return InvalidArgument("vector entries not in ascending replica order");
      }
      if (Status s = Count(counter); !s.ok()) return s;
      vector.push_back({ReplicaId{replicas_[r]}, counter});
    }
    std::uint64_t runs = 0;
    if (!Varint(&runs)) return Truncated();
    if (runs > in_.size()) return Truncated();  // each run takes 3 bytes at least
    std::vector<Dot> cloud;
    for (std::uint64_t i = 0; i < runs; ++i) {
      std::uint64_t r = 0, first = 0, extra = 0;
      if (!Varint(&r) || !Varint(&first) || !Varint(&extra)) return Truncated();
      if (r >= replicas_.size()) return InvalidArgument("a replica index out of range");
      if (first == 0 || extra >= std::numeric_limits<std::uint64_t>::max() - first) {
        return InvalidArgument("a run of dots out of range");
      }
      if (Status s = Count(extra + 1); !s.ok()) return s;
      for (std::uint64_t k = 0; k <= extra; ++k)
        cloud.push_back(Dot{ReplicaId{replicas_[r]}, first + k});
    }
    *out = CausalContext::FromParts(vector, cloud);
    return {};
  }

  bool Fixed64(std::uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) {
      *v |= std::uint64_t{static_cast<unsigned char>(in_[static_cast<std::size_t>(i)])} << (8 * i);
    }
    in_.remove_prefix(8);
    return true;
  }
  bool Varint(std::uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) return false;
      const auto b = static_cast<unsigned char>(in_.front());
      in_.remove_prefix(1);
      if (shift == 63 && b > 1) return false;
      *v |= std::uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  [[nodiscard]] bool done() const { return in_.empty(); }
  [[nodiscard]] std::size_t left() const { return in_.size(); }

  static Status Truncated() { return InvalidArgument("a causal context cut short or malformed"); }

 private:
  bool Byte(std::uint8_t* b) {
    if (in_.empty()) return false;
    *b = static_cast<std::uint8_t>(in_.front());
    in_.remove_prefix(1);
    return true;
  }
  Status Count(std::uint64_t dots) {
    if (dots > limits_.max_dots || dots_ > limits_.max_dots - dots) {
      return ResourceExhausted("a causal context of more than " + std::to_string(limits_.max_dots) +
                               " dots");
    }
    dots_ += dots;
    return {};
  }

  std::string_view in_;
  const ContextLimits& limits_;
  std::vector<std::uint64_t> replicas_;
  std::uint64_t dots_ = 0;
};

Status NotCanonical() { return InvalidArgument("a causal context not in its canonical encoding"); }

}  // namespace

std::string EncodeContext(const CausalContext& context) {
  ReplicaTable table;
  table.Add(context);
  table.Seal();
  std::string out;
  out.push_back(static_cast<char>(kContextFormatVersion));
  out.push_back(static_cast<char>(kOne));
  table.Write(out);
  WriteBody(context, table, out);
  return out;
}

StatusOr<CausalContext> DecodeContext(std::string_view bytes, const ContextLimits& limits) {
  Reader reader(bytes, limits);
  if (Status s = reader.Header(kOne); !s.ok()) return s;
  CausalContext context;
  if (Status s = reader.Body(&context); !s.ok()) return s;
  if (!reader.done()) return InvalidArgument("bytes after the causal context");
  if (EncodeContext(context) != bytes) return NotCanonical();
  return context;
}

std::string EncodeContexts(std::span<const KeyedContext> entries) {
  std::vector<const KeyedContext*> sorted;
  sorted.reserve(entries.size());
  for (const KeyedContext& e : entries) {
    if (!e.context.empty()) sorted.push_back(&e);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const KeyedContext* a, const KeyedContext* b) { return a->key < b->key; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->key == sorted[i - 1]->key) {
      throw std::invalid_argument("EncodeContexts: two contexts under one key");
    }
  }
  ReplicaTable table;
  for (const KeyedContext* e : sorted) table.Add(e->context);
  table.Seal();
  std::string out;
  out.push_back(static_cast<char>(kContextFormatVersion));
  out.push_back(static_cast<char>(kKeyed));
  table.Write(out);
  PutVarint(out, sorted.size());
  for (const KeyedContext* e : sorted) {
    PutFixed64(out, e->key);
    WriteBody(e->context, table, out);
  }
  return out;
}

StatusOr<std::vector<KeyedContext>> DecodeContexts(std::string_view bytes,
                                                   const ContextLimits& limits) {
  Reader reader(bytes, limits);
  if (Status s = reader.Header(kKeyed); !s.ok()) return s;
  std::uint64_t count = 0;
  if (!reader.Varint(&count)) return Reader::Truncated();
  if (count > limits.max_entries) {
    return ResourceExhausted("a set of " + std::to_string(count) +
                             " causal contexts is over the limit of " +
                             std::to_string(limits.max_entries));
  }
  if (count > reader.left()) return Reader::Truncated();
  std::vector<KeyedContext> entries;
  entries.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    KeyedContext e;
    if (!reader.Fixed64(&e.key)) return Reader::Truncated();
    if (!entries.empty() && e.key <= entries.back().key) {
      return InvalidArgument("causal contexts not in ascending key order");
    }
    if (Status s = reader.Body(&e.context); !s.ok()) return s;
    if (e.context.empty()) return InvalidArgument("an empty causal context in a set");
    entries.push_back(std::move(e));
  }
  if (!reader.done()) return InvalidArgument("bytes after the causal contexts");
  if (EncodeContexts(entries) != bytes) return NotCanonical();
  return entries;
}

}  // namespace converge::codec
