// Columns <-> canonical packed Cap'n Proto bytes.

#include "crdt/codec/columns.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <string>

#include "crdt/codec/converge.capnp.h"

namespace converge::codec {
namespace {

template <class Builder, class T>
void SetList(Builder list, const std::vector<T>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, values[i]);
}

template <class T, class Reader>
std::vector<T> GetList(Reader list) {
  std::vector<T> out;
  out.reserve(list.size());
  for (const auto v : list) out.push_back(v);
  return out;
}

capnp::Data::Reader AsData(const std::string& bytes) {
  return {reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()};
}

std::string AsString(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}

unsigned ListSize(std::size_t n) {
  // Columns are built from in-memory states; a state with 2^29 elements in
  // one column does not fit a Cap'n Proto list.
  KJ_REQUIRE(n < (1u << 29), "column too long for one Cap'n Proto list", n);
  return static_cast<unsigned>(n);
}

}  // namespace

std::string EncodeColumns(const Columns& c) {
  capnp::MallocMessageBuilder builder;
  auto s = builder.initRoot<wire::State>();
  s.setVersion(c.version);
  s.setTypeId(c.type_id);
  // Empty columns stay null pointers: never initialise an empty list, so the
  // canonical form has one spelling.
  if (!c.replicas.empty()) SetList(s.initReplicas(ListSize(c.replicas.size())), c.replicas);
  if (!c.counts.empty()) SetList(s.initCounts(ListSize(c.counts.size())), c.counts);
  if (!c.neg_counts.empty()) SetList(s.initNegCounts(ListSize(c.neg_counts.size())), c.neg_counts);
  if (!c.vector.empty()) SetList(s.initVector(ListSize(c.vector.size())), c.vector);
  if (!c.cloud_replica.empty()) {
    SetList(s.initCloudReplica(ListSize(c.cloud_replica.size())), c.cloud_replica);
  }
  if (!c.cloud_counter.empty()) {
    SetList(s.initCloudCounter(ListSize(c.cloud_counter.size())), c.cloud_counter);
  }
  if (!c.keys.empty()) {
    auto keys = s.initKeys(ListSize(c.keys.size()));
    for (unsigned i = 0; i < c.keys.size(); ++i) keys.set(i, AsData(c.keys[i]));
  }
  if (!c.map_sizes.empty()) SetList(s.initMapSizes(ListSize(c.map_sizes.size())), c.map_sizes);
  if (!c.leaf_extra.empty()) SetList(s.initLeafExtra(ListSize(c.leaf_extra.size())), c.leaf_extra);
  if (!c.dot_replica.empty())
    SetList(s.initDotReplica(ListSize(c.dot_replica.size())), c.dot_replica);
  if (!c.dot_counter.empty())
    SetList(s.initDotCounter(ListSize(c.dot_counter.size())), c.dot_counter);
  if (!c.values.empty()) {
    auto values = s.initValues(ListSize(c.values.size()));
    for (unsigned i = 0; i < c.values.size(); ++i) values.set(i, AsData(c.values[i]));
  }
  if (!c.amounts.empty()) SetList(s.initAmounts(ListSize(c.amounts.size())), c.amounts);
  s.setLwwPresent(c.lww_present);
  s.setLwwLogical(c.lww_logical);
  s.setLwwPhysicalMs(c.lww_physical_ms);
  s.setLwwWriter(c.lww_writer);
  if (!c.lww_value.empty()) s.setLwwValue(AsData(c.lww_value));

  const kj::Array<capnp::word> words = capnp::canonicalize(s.asReader());
  const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
  kj::VectorOutputStream out(words.size() * sizeof(capnp::word) + 16);
  capnp::writePackedMessage(out, kj::arrayPtr(&segment, 1));
  const kj::ArrayPtr<kj::byte> packed = out.getArray();
  return {reinterpret_cast<const char*>(packed.begin()), packed.size()};
}

namespace {

// Walks packed bytes (the format of capnp/serialize-packed.h) without
// unpacking them and checks that they hold exactly one single-segment
// message: the segment table's first word declares the message's size, and
// the input must unpack to that many words, no fewer (truncated) and no
// more (trailing bytes). Sets *message_words to the declared size, segment
// table included. Runs before Cap'n Proto sees the input, so that the
// segment Cap'n Proto allocates is never larger than what the input holds.
Status CheckPackedFrame(std::string_view bytes, const DecodeLimits& limits,
                        std::uint64_t* message_words) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  std::uint64_t words = 0;     // words unpacked so far
  std::uint64_t expected = 0;  // words the segment table declares, once read
  while (i < n) {
    if (words != 0 && words >= expected) {
      return InvalidArgument(std::to_string(n - i) + " trailing bytes after the encoded state");
    }
    const unsigned tag = b[i++];
    std::uint64_t group = 1;  // words this tag unpacks to
    std::uint64_t first = 0;  // the tag's word, when it is the segment table
    if (tag == 0) {
      if (i == n) return InvalidArgument("encoded state is truncated inside a run of zero words");
      group += b[i++];
    } else {
      const auto present = static_cast<std::size_t>(__builtin_popcount(tag));
      if (n - i < present) return InvalidArgument("encoded state is truncated inside a word");
      for (unsigned bit = 0; bit < 8; ++bit) {
        if ((tag & (1u << bit)) != 0) first |= std::uint64_t{b[i++]} << (8 * bit);
      }
      if (tag == 0xff) {
        if (i == n) return InvalidArgument("encoded state is truncated before a literal run");
        const std::size_t run = b[i++];
        if ((n - i) / 8 < run) {
          return InvalidArgument("encoded state is truncated inside a literal run");
        }
        i += 8 * run;
        group += run;
      }
    }
    if (words == 0) {
      // The segment table: segment count - 1, then the first segment's size.
      const std::uint64_t segments = (first & 0xffffffffu) + 1;
      if (segments != 1) {
        return InvalidArgument("encoded state has " + std::to_string(segments) +
                               " segments; a state is always written as one");
      }
      expected = 1 + (first >> 32);
      if (expected > limits.max_words) {
        return ResourceExhausted("encoded state declares " + std::to_string(expected) +
                                 " words; the limit is " + std::to_string(limits.max_words));
      }
    }
    words += group;
    if (words > expected) {
      return InvalidArgument("packed run extends past the end of the encoded state");
    }
  }
  if (words < expected) {
    return InvalidArgument("encoded state is truncated: its segment table declares " +
                           std::to_string(expected) + " words, the input holds " +
                           std::to_string(words));
  }
  *message_words = expected;
  return Status::Ok();
}

}  // namespace

namespace {

// Checks the packed frame of `bytes` within `limits` and calls
// `read(root)` on its State with a reader bounded by the frame's size: what
// the header peeks share.
template <typename T, typename Read>
StatusOr<T> PeekState(std::string_view bytes, const DecodeLimits& limits, Read read) {
  if (bytes.size() > limits.max_bytes)
    return ResourceExhausted("encoded state exceeds the size limit");
  if (bytes.empty()) return InvalidArgument("empty input is not an encoded state");
  std::uint64_t message_words = 0;
  CONVERGE_RETURN_IF_ERROR(CheckPackedFrame(bytes, limits, &message_words));
  try {
    kj::ArrayInputStream input(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    capnp::ReaderOptions options;
    options.traversalLimitInWords = message_words;
    options.nestingLimit = limits.max_nesting;
    capnp::PackedMessageReader reader(input, options);
    return read(reader.getRoot<wire::State>());
  } catch (const kj::Exception& e) {
    return InvalidArgument(std::string("malformed encoded state: ") + e.getDescription().cStr());
  }
}

}  // namespace

StatusOr<std::uint32_t> PeekTypeId(std::string_view bytes, const DecodeLimits& limits) {
  return PeekState<std::uint32_t>(
      bytes, limits, [](wire::State::Reader s) -> StatusOr<std::uint32_t> {
        if (s.getVersion() != kFormatVersion) {
          return InvalidArgument("format version " + std::to_string(s.getVersion()) +
                                 " is not supported");
        }
        return s.getTypeId();
      });
}

StatusOr<std::size_t> PeekReplicaCount(std::string_view bytes, const DecodeLimits& limits) {
  return PeekState<std::size_t>(bytes, limits, [](wire::State::Reader s) -> StatusOr<std::size_t> {
    return static_cast<std::size_t>(s.getReplicas().size());
  });
}

Status DecodeColumns(std::string_view bytes, const DecodeLimits& limits, Columns* out) {
  if (bytes.size() > limits.max_bytes) {
    return ResourceExhausted("encoded state of " + std::to_string(bytes.size()) +
                             " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  if (bytes.empty()) return InvalidArgument("empty input is not an encoded state");
  std::uint64_t message_words = 0;
  CONVERGE_RETURN_IF_ERROR(CheckPackedFrame(bytes, limits, &message_words));
  try {
    kj::ArrayInputStream input(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    capnp::ReaderOptions options;
    // Reading every field of a message once visits fewer words than the
    // message has; a message whose pointers make the reader visit more
    // (several pointers to one large list: amplification) is rejected.
    options.traversalLimitInWords = message_words;
    options.nestingLimit = limits.max_nesting;
    capnp::PackedMessageReader reader(input, options);
    if (input.tryGetReadBuffer().size() != 0) {
      return InvalidArgument("trailing bytes after the encoded state");
    }
    const auto s = reader.getRoot<wire::State>();
    Columns c;
    c.version = s.getVersion();
    c.type_id = s.getTypeId();
    // Each list is fetched once: every fetch counts against the traversal
    // limit.
    const auto replicas = s.getReplicas();
    if (replicas.size() > limits.max_replicas) {
      return ResourceExhausted("state names " + std::to_string(replicas.size()) +
                               " replicas; the limit is " + std::to_string(limits.max_replicas));
    }
    c.replicas = GetList<std::uint64_t>(replicas);
    c.counts = GetList<std::uint64_t>(s.getCounts());
    c.neg_counts = GetList<std::uint64_t>(s.getNegCounts());
    c.vector = GetList<std::uint64_t>(s.getVector());
    c.cloud_replica = GetList<std::uint32_t>(s.getCloudReplica());
    c.cloud_counter = GetList<std::uint64_t>(s.getCloudCounter());
    const auto keys = s.getKeys();
    c.keys.reserve(keys.size());
    for (const auto key : keys) c.keys.push_back(AsString(key));
    c.map_sizes = GetList<std::uint32_t>(s.getMapSizes());
    c.leaf_extra = GetList<std::uint32_t>(s.getLeafExtra());
    c.dot_replica = GetList<std::uint32_t>(s.getDotReplica());
    c.dot_counter = GetList<std::uint64_t>(s.getDotCounter());
    const auto values = s.getValues();
    c.values.reserve(values.size());
    for (const auto value : values) c.values.push_back(AsString(value));
    c.amounts = GetList<std::uint64_t>(s.getAmounts());
    c.lww_present = s.getLwwPresent();
    c.lww_logical = s.getLwwLogical();
    c.lww_physical_ms = s.getLwwPhysicalMs();
    c.lww_writer = s.getLwwWriter();
    c.lww_value = AsString(s.getLwwValue());
    *out = std::move(c);
    return Status::Ok();
  } catch (const kj::Exception& e) {
    const std::string reason(e.getDescription().cStr());
    if (reason.find("too large") != std::string::npos ||
        reason.find("traversal limit") != std::string::npos ||
        reason.find("too deeply") != std::string::npos) {
      return ResourceExhausted("encoded state exceeds the decoding limits: " + reason);
    }
    return InvalidArgument("malformed encoded state: " + reason);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed encoded state: ") + e.what());
  }
}

}  // namespace converge::codec
