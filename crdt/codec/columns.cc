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

Status DecodeColumns(std::string_view bytes, const DecodeLimits& limits, Columns* out) {
  if (bytes.size() > limits.max_bytes) {
    return ResourceExhausted("encoded state of " + std::to_string(bytes.size()) +
                             " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  }
  if (bytes.empty()) return InvalidArgument("empty input is not an encoded state");
  try {
    kj::ArrayInputStream input(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    capnp::ReaderOptions options;
    options.traversalLimitInWords =
        std::min<std::uint64_t>(limits.max_words, std::max<std::uint64_t>(64, 16 * bytes.size()));
    options.nestingLimit = limits.max_nesting;
    capnp::PackedMessageReader reader(input, options);
    if (input.tryGetReadBuffer().size() != 0) {
      return InvalidArgument("trailing bytes after the encoded state");
    }
    const auto s = reader.getRoot<wire::State>();
    Columns c;
    c.version = s.getVersion();
    c.type_id = s.getTypeId();
    if (s.getReplicas().size() > limits.max_replicas) {
      return ResourceExhausted("state names " + std::to_string(s.getReplicas().size()) +
                               " replicas; the limit is " + std::to_string(limits.max_replicas));
    }
    c.replicas = GetList<std::uint64_t>(s.getReplicas());
    c.counts = GetList<std::uint64_t>(s.getCounts());
    c.neg_counts = GetList<std::uint64_t>(s.getNegCounts());
    c.vector = GetList<std::uint64_t>(s.getVector());
    c.cloud_replica = GetList<std::uint32_t>(s.getCloudReplica());
    c.cloud_counter = GetList<std::uint64_t>(s.getCloudCounter());
    for (const auto key : s.getKeys()) c.keys.push_back(AsString(key));
    c.map_sizes = GetList<std::uint32_t>(s.getMapSizes());
    c.leaf_extra = GetList<std::uint32_t>(s.getLeafExtra());
    c.dot_replica = GetList<std::uint32_t>(s.getDotReplica());
    c.dot_counter = GetList<std::uint64_t>(s.getDotCounter());
    for (const auto value : s.getValues()) c.values.push_back(AsString(value));
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
        reason.find("traversal limit") != std::string::npos) {
      return ResourceExhausted("encoded state exceeds the decoding limits: " + reason);
    }
    return InvalidArgument("malformed encoded state: " + reason);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed encoded state: ") + e.what());
  }
}

}  // namespace converge::codec
