// Encode and decode every converge CRDT type: the wire and disk format.
//
//   std::string bytes = converge::codec::Encode(state);         // canonical
//   converge::StatusOr<OrSet<std::string>> s =
//       converge::codec::Decode<OrSet<std::string>>(bytes);      // never throws
//
// Encoding is canonical: equal states encode to equal bytes, so digests of
// encodings can be compared across replicas. Decoding treats its input as
// untrusted: it is bounded by DecodeLimits, checks every invariant (sorted,
// unique replicas, keys and dots; every reference in range; dot counters and
// counter amounts positive; no dot stored twice) and, unless told the input
// is trusted, that the input is the canonical encoding of what it decoded.
// Any failure is a Status with the reason.
//
// Element, key and register value types are written through ValueCodec<T>;
// std::string, integers and bool are provided, and a specialization adds a
// type of your own (see docs/wire-format.md).

#ifndef CONVERGE_CRDT_CODEC_CODEC_H_
#define CONVERGE_CRDT_CODEC_CODEC_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "crdt/codec/columns.h"
#include "crdt/codec/status.h"
#include "crdt/crdt.h"

namespace converge::codec {

// ---------------------------------------------------------------------------
// ValueCodec<T>: elements, keys and register values as bytes.
//
// A specialization provides
//   static constexpr std::string_view kName;              // part of type ids
//   static std::string Encode(const T&);
//   static std::optional<T> Decode(std::string_view);     // canonical input only
// Decode must accept exactly the outputs of Encode (one spelling per value),
// so that distinct bytes mean distinct values.
template <class T>
struct ValueCodec;

template <>
struct ValueCodec<std::string> {
  static constexpr std::string_view kName = "bytes";
  static std::string Encode(const std::string& v) { return v; }
  static std::optional<std::string> Decode(std::string_view bytes) { return std::string(bytes); }
};

template <>
struct ValueCodec<bool> {
  static constexpr std::string_view kName = "bool";
  static std::string Encode(bool v) { return std::string(1, v ? '\1' : '\0'); }
  static std::optional<bool> Decode(std::string_view bytes) {
    if (bytes.size() != 1 || static_cast<unsigned char>(bytes[0]) > 1) return std::nullopt;
    return bytes[0] == '\1';
  }
};

// Integers: fixed width, little-endian.
template <std::integral T>
requires(!std::same_as<T, bool>) struct ValueCodec<T> {
  static constexpr std::string_view kName = std::is_signed_v<T> ? (sizeof(T) == 8   ? "i64"
                                                                   : sizeof(T) == 4 ? "i32"
                                                                   : sizeof(T) == 2 ? "i16"
                                                                                    : "i8")
                                                                : (sizeof(T) == 8   ? "u64"
                                                                   : sizeof(T) == 4 ? "u32"
                                                                   : sizeof(T) == 2 ? "u16"
                                                                                    : "u8");
  static std::string Encode(T v) {
    using U = std::make_unsigned_t<T>;
    auto u = static_cast<U>(v);
    std::string out(sizeof(T), '\0');
    for (std::size_t i = 0; i < sizeof(T); ++i) {
      out[i] = static_cast<char>(static_cast<unsigned char>(u & 0xffu));
      u = static_cast<U>(u >> 8);
    }
    return out;
  }
  static std::optional<T> Decode(std::string_view bytes) {
    using U = std::make_unsigned_t<T>;
    if (bytes.size() != sizeof(T)) return std::nullopt;
    U u = 0;
    for (std::size_t i = sizeof(T); i-- > 0;) {
      u = static_cast<U>((u << 8) | static_cast<unsigned char>(bytes[i]));
    }
    return static_cast<T>(u);
  }
};

namespace internal {

using crdt::CausalContext;
using crdt::Dot;
using crdt::ReplicaId;

// The replica ids one state mentions, sorted; columns refer to them by
// position.
class ReplicaTable {
 public:
  void Add(ReplicaId replica) { ids_.push_back(replica.value()); }
  void Finish() {
    std::sort(ids_.begin(), ids_.end());
    ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
  }
  [[nodiscard]] std::uint32_t IndexOf(ReplicaId replica) const {
    return static_cast<std::uint32_t>(std::lower_bound(ids_.begin(), ids_.end(), replica.value()) -
                                      ids_.begin());
  }
  [[nodiscard]] const std::vector<std::uint64_t>& ids() const { return ids_; }

 private:
  std::vector<std::uint64_t> ids_;
};

// Reads columns in order, checking every reference.
class ColumnReader {
 public:
  explicit ColumnReader(const Columns& c) : c_(c) {}

  // Lengths that must agree before any column is indexed.
  [[nodiscard]] Status CheckShape() const {
    if (!c_.dot_replica.empty() && c_.dot_replica.size() != c_.dot_counter.size()) {
      return InvalidArgument("dot replica and counter columns differ in length");
    }
    return Status::Ok();
  }

  Status NextDot(Dot* dot) {
    if (dot_ >= c_.dot_counter.size())
      return InvalidArgument("store refers to more dots than listed");
    const std::size_t replica = c_.dot_replica.empty() ? 0 : c_.dot_replica[dot_];
    const std::uint64_t counter = c_.dot_counter[dot_];
    ++dot_;
    CONVERGE_RETURN_IF_ERROR(CheckDot(replica, counter, "store dot"));
    *dot = Dot{ReplicaId{c_.replicas[replica]}, counter};
    dots_.push_back(*dot);
    return Status::Ok();
  }

  Status CheckDot(std::size_t replica, std::uint64_t counter, const char* what) const {
    if (replica >= c_.replicas.size()) {
      return InvalidArgument(std::string(what) + " names replica #" + std::to_string(replica) +
                             " of " + std::to_string(c_.replicas.size()));
    }
    if (counter == 0) return InvalidArgument(std::string(what) + " has counter 0");
    return Status::Ok();
  }

  [[nodiscard]] std::size_t RemainingDots() const { return c_.dot_counter.size() - dot_; }

  Status NextKey(std::string_view* key) {
    if (key_ >= c_.keys.size()) return InvalidArgument("map refers to more keys than listed");
    *key = c_.keys[key_++];
    return Status::Ok();
  }
  [[nodiscard]] bool KeysLeft() const { return key_ < c_.keys.size(); }
  [[nodiscard]] std::size_t KeysRemaining() const { return c_.keys.size() - key_; }

  Status NextMapSize(std::size_t* n) {
    if (map_size_ >= c_.map_sizes.size()) return InvalidArgument("missing nested map size");
    *n = c_.map_sizes[map_size_++];
    if (*n == 0) return InvalidArgument("nested map of size 0 (empty values are not stored)");
    if (*n > c_.keys.size() - key_) return InvalidArgument("nested map larger than the keys left");
    return Status::Ok();
  }

  Status NextLeafSize(std::size_t* n) {
    std::uint64_t extra = 0;
    if (!c_.leaf_extra.empty()) {
      if (leaf_ >= c_.leaf_extra.size()) return InvalidArgument("missing leaf size");
      extra = c_.leaf_extra[leaf_];
    }
    ++leaf_;
    if (extra >= RemainingDots()) return InvalidArgument("leaf larger than the dots left");
    *n = static_cast<std::size_t>(extra) + 1;
    return Status::Ok();
  }

  Status NextValue(std::string_view* value) {
    if (value_ >= c_.values.size()) return InvalidArgument("missing value for a dot");
    *value = c_.values[value_++];
    return Status::Ok();
  }

  Status NextAmount(std::uint64_t* amount) {
    if (amount_ >= c_.amounts.size()) return InvalidArgument("missing amount for a dot");
    *amount = c_.amounts[amount_++];
    if (*amount == 0) return InvalidArgument("counter increment of 0 (never written)");
    return Status::Ok();
  }

  // Every column consumed exactly, and no dot stored twice.
  Status Finish() {
    if (key_ != c_.keys.size()) return InvalidArgument("unused keys");
    if (map_size_ != c_.map_sizes.size()) return InvalidArgument("unused nested map sizes");
    if (!c_.leaf_extra.empty() && leaf_ != c_.leaf_extra.size()) {
      return InvalidArgument("leaf sizes do not match the leaves");
    }
    if (dot_ != c_.dot_counter.size()) return InvalidArgument("unused store dots");
    if (value_ != c_.values.size()) return InvalidArgument("unused values");
    if (amount_ != c_.amounts.size()) return InvalidArgument("unused amounts");
    std::sort(dots_.begin(), dots_.end());
    if (std::adjacent_find(dots_.begin(), dots_.end()) != dots_.end()) {
      return InvalidArgument("a dot is stored twice (one dot is one write)");
    }
    return Status::Ok();
  }

  // The store dots read so far, sorted once Finish() has run.
  [[nodiscard]] const std::vector<Dot>& dots() const { return dots_; }

 private:
  const Columns& c_;
  std::size_t dot_ = 0, key_ = 0, map_size_ = 0, leaf_ = 0, value_ = 0, amount_ = 0;
  std::vector<Dot> dots_;
};

// Dot store codecs: write and read one dot store in preorder. A codec is
// chosen by the CRDT type (StoreCodec<T> below), not by the store type: a
// CausalCounter and an MvRegister<std::uint64_t> share the store type
// DotFun<std::uint64_t>, but the counter's payloads are amounts (positive,
// in `amounts`) and the register's are values (in `values`).

inline void PushDot(const Dot& d, const ReplicaTable& table, Columns& c) {
  c.dot_replica.push_back(table.IndexOf(d.replica));
  c.dot_counter.push_back(d.counter);
}

// A set of dots: EwFlag, and each element of an OrSet.
struct DotSetCodec {
  using Store = crdt::DotSet;
  static constexpr bool kLeaf = true;
  static void WriteLeaf(const Store& s, const ReplicaTable& table, Columns& c) {
    for (const Dot& d : s.dots()) PushDot(d, table, c);
  }
  static Status ReadLeaf(ColumnReader& r, std::size_t n, Store* out) {
    Store set;
    Dot previous;
    for (std::size_t i = 0; i < n; ++i) {
      Dot dot;
      CONVERGE_RETURN_IF_ERROR(r.NextDot(&dot));
      if (i > 0 && !(previous < dot)) return InvalidArgument("dots of a set not sorted");
      previous = dot;
      set.Insert(dot);  // sorted input: appends
    }
    *out = std::move(set);
    return Status::Ok();
  }
};

// Dots mapped to payloads: counter amounts (kAmounts, CausalCounter) or
// values written through ValueCodec<V> (MvRegister<V>).
template <class V, bool kAmounts>
struct DotFunCodec {
  using Store = crdt::DotFun<V>;
  static_assert(!kAmounts || std::is_same_v<V, std::uint64_t>, "amounts are 64-bit counts");
  static constexpr bool kLeaf = true;

  static void WriteLeaf(const Store& s, const ReplicaTable& table, Columns& c) {
    for (const auto& item : s.items()) {
      PushDot(item.dot, table, c);
      if constexpr (kAmounts) {
        c.amounts.push_back(item.value);
      } else {
        c.values.push_back(ValueCodec<V>::Encode(item.value));
      }
    }
  }
  static Status ReadLeaf(ColumnReader& r, std::size_t n, Store* out) {
    Store fun;
    Dot previous;
    for (std::size_t i = 0; i < n; ++i) {
      Dot dot;
      CONVERGE_RETURN_IF_ERROR(r.NextDot(&dot));
      if (i > 0 && !(previous < dot)) return InvalidArgument("dots of a register not sorted");
      previous = dot;
      if constexpr (kAmounts) {
        std::uint64_t amount = 0;
        CONVERGE_RETURN_IF_ERROR(r.NextAmount(&amount));
        fun.Insert(dot, amount);
      } else {
        std::string_view bytes;
        CONVERGE_RETURN_IF_ERROR(r.NextValue(&bytes));
        std::optional<V> value = ValueCodec<V>::Decode(bytes);
        if (!value)
          return InvalidArgument("value not decodable as " + std::string(ValueCodec<V>::kName));
        fun.Insert(dot, std::move(*value));
      }
    }
    *out = std::move(fun);
    return Status::Ok();
  }
};

// Keys mapped to non-empty stores, each written by Inner (a leaf codec, or
// another DotMapCodec for a nested map).
template <class K, class Inner>
struct DotMapCodec {
  using Store = crdt::DotMap<K, typename Inner::Store>;
  using S = typename Inner::Store;
  static constexpr bool kLeaf = false;

  static void WriteMap(const Store& m, bool root, const ReplicaTable& table, Columns& c) {
    if (!root) c.map_sizes.push_back(static_cast<std::uint32_t>(m.size()));
    // Canonical order: by encoded key bytes. Sorts positions, not strings.
    const std::span<const typename Store::Entry> entries = m.entries();
    std::vector<std::string> keys;
    keys.reserve(entries.size());
    for (const auto& e : entries) keys.push_back(ValueCodec<K>::Encode(e.key));
    std::vector<std::uint32_t> order(entries.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::uint32_t a, std::uint32_t b) { return keys[a] < keys[b]; });
    for (const std::uint32_t i : order) {
      c.keys.push_back(std::move(keys[i]));
      const S& store = entries[i].store;
      if constexpr (Inner::kLeaf) {
        c.leaf_extra.push_back(static_cast<std::uint32_t>(store.DotCount() - 1));
        Inner::WriteLeaf(store, table, c);
      } else {
        Inner::WriteMap(store, /*root=*/false, table, c);
      }
    }
  }

  static Status ReadMap(ColumnReader& r, bool root, Store* out) {
    Store map;
    std::size_t n = 0;
    if (!root) CONVERGE_RETURN_IF_ERROR(r.NextMapSize(&n));
    // Every key left is this map's when its values are leaves.
    map.reserve(!root ? n : Inner::kLeaf ? r.KeysRemaining() : 0);
    std::string_view previous;
    for (std::size_t i = 0; root ? r.KeysLeft() : i < n; ++i) {
      std::string_view bytes;
      CONVERGE_RETURN_IF_ERROR(r.NextKey(&bytes));
      if (i > 0 && !(previous < bytes)) return InvalidArgument("map keys not sorted and unique");
      previous = bytes;
      std::optional<K> key = ValueCodec<K>::Decode(bytes);
      if (!key) return InvalidArgument("key not decodable as " + std::string(ValueCodec<K>::kName));
      // Distinct bytes are distinct keys for a ValueCodec that keeps its
      // contract; one that does not must not corrupt the map.
      if (map.Contains(*key)) return InvalidArgument("two map keys decode to the same key");
      S store;
      if constexpr (Inner::kLeaf) {
        std::size_t dots = 0;
        CONVERGE_RETURN_IF_ERROR(r.NextLeafSize(&dots));
        CONVERGE_RETURN_IF_ERROR(Inner::ReadLeaf(r, dots, &store));
      } else {
        CONVERGE_RETURN_IF_ERROR(Inner::ReadMap(r, /*root=*/false, &store));
      }
      map.Insert(std::move(*key), std::move(store));
    }
    *out = std::move(map);
    return Status::Ok();
  }
};

// StoreCodec<T>: the codec of the store of the causal CRDT type T.
template <class T>
struct StoreCodec;
template <>
struct StoreCodec<crdt::EwFlag> : DotSetCodec {};
template <>
struct StoreCodec<crdt::CausalCounter> : DotFunCodec<std::uint64_t, /*kAmounts=*/true> {};
template <class V>
struct StoreCodec<crdt::MvRegister<V>> : DotFunCodec<V, /*kAmounts=*/false> {};
template <class E>
struct StoreCodec<crdt::OrSet<E>> : DotMapCodec<E, DotSetCodec> {};
template <class K, class V>
struct StoreCodec<crdt::OrMap<K, V>> : DotMapCodec<K, StoreCodec<V>> {};

// Columns with all-zero contents are omitted (one spelling per state).
template <class T>
void DropIfAllZero(std::vector<T>& column) {
  if (std::all_of(column.begin(), column.end(), [](const T& v) { return v == T{}; }))
    column.clear();
}

// Writes a causal state: replicas, store, context.
template <class T>
void WriteCausal(const T& value, Columns& c) {
  using Codec = StoreCodec<T>;
  static_assert(std::is_same_v<typename Codec::Store, typename T::Store>);
  const CausalContext& context = value.context();
  ReplicaTable table;
  value.store().ForEachDot([&](const Dot& d) { table.Add(d.replica); });
  for (const auto& e : context.vector()) table.Add(e.replica);
  for (const Dot& d : context.cloud()) table.Add(d.replica);
  table.Finish();
  c.replicas = table.ids();

  if constexpr (Codec::kLeaf) {
    Codec::WriteLeaf(value.store(), table, c);
  } else {
    Codec::WriteMap(value.store(), /*root=*/true, table, c);
  }
  DropIfAllZero(c.leaf_extra);
  DropIfAllZero(c.dot_replica);

  // Context: the vector per replica, and the cloud minus the store's dots.
  c.vector.reserve(table.ids().size());
  for (const std::uint64_t id : table.ids())
    c.vector.push_back(context.VectorCounter(ReplicaId{id}));
  DropIfAllZero(c.vector);
  if (!context.cloud().empty()) {
    std::vector<Dot> stored;
    value.store().ForEachDot([&](const Dot& d) { stored.push_back(d); });
    std::sort(stored.begin(), stored.end());
    for (const Dot& d : context.cloud()) {
      if (std::binary_search(stored.begin(), stored.end(), d)) continue;
      c.cloud_replica.push_back(table.IndexOf(d.replica));
      c.cloud_counter.push_back(d.counter);
    }
  }
}

template <class T>
Status ReadCausal(const Columns& c, T* out) {
  using Codec = StoreCodec<T>;
  using Store = typename T::Store;
  if (!c.counts.empty() || !c.neg_counts.empty() || c.lww_present || !c.lww_value.empty()) {
    return InvalidArgument("counter or register columns in a causal state");
  }
  ColumnReader r(c);
  CONVERGE_RETURN_IF_ERROR(r.CheckShape());
  Store store;
  if constexpr (Codec::kLeaf) {
    CONVERGE_RETURN_IF_ERROR(Codec::ReadLeaf(r, c.dot_counter.size(), &store));
    if (!c.keys.empty() || !c.leaf_extra.empty() || !c.map_sizes.empty()) {
      return InvalidArgument("map columns in a state that has no map");
    }
  } else {
    CONVERGE_RETURN_IF_ERROR(Codec::ReadMap(r, /*root=*/true, &store));
  }
  CONVERGE_RETURN_IF_ERROR(r.Finish());

  if (!c.vector.empty() && c.vector.size() != c.replicas.size()) {
    return InvalidArgument("version vector length differs from the replica table");
  }
  if (c.cloud_replica.size() != c.cloud_counter.size()) {
    return InvalidArgument("cloud replica and counter columns differ in length");
  }
  std::vector<CausalContext::Entry> vector;
  for (std::size_t i = 0; i < c.vector.size(); ++i) {
    if (c.vector[i] != 0) vector.push_back({ReplicaId{c.replicas[i]}, c.vector[i]});
  }
  // The context's dots: the store's and the cloud's, each sorted (the
  // replica table is sorted, so positions order like ids). Building the
  // context from sorted dots appends; from unsorted ones it would insert in
  // the middle and take quadratic time.
  std::vector<Dot> cloud = r.dots();
  cloud.reserve(cloud.size() + c.cloud_counter.size());
  for (std::size_t i = 0; i < c.cloud_counter.size(); ++i) {
    CONVERGE_RETURN_IF_ERROR(r.CheckDot(c.cloud_replica[i], c.cloud_counter[i], "context dot"));
    if (i > 0 && std::pair(c.cloud_replica[i - 1], c.cloud_counter[i - 1]) >=
                     std::pair(c.cloud_replica[i], c.cloud_counter[i])) {
      return InvalidArgument("context dots not sorted and unique");
    }
    cloud.push_back(Dot{ReplicaId{c.replicas[c.cloud_replica[i]]}, c.cloud_counter[i]});
  }
  std::inplace_merge(cloud.begin(), cloud.begin() + static_cast<std::ptrdiff_t>(r.dots().size()),
                     cloud.end());
  *out = T::FromParts(std::move(store), CausalContext::FromParts(vector, cloud));
  return Status::Ok();
}

}  // namespace internal

// ---------------------------------------------------------------------------
// TypeCodec<T>: the type descriptor and the columns of each CRDT type.
template <class T>
struct TypeCodec;

template <>
struct TypeCodec<crdt::GCounter> {
  static std::string Descriptor() { return "g_counter"; }
  static void Write(const crdt::GCounter& v, Columns& c) {
    for (const auto& e : v.entries()) {
      c.replicas.push_back(e.replica.value());
      c.counts.push_back(e.count);
    }
  }
  static Status Read(const Columns& c, crdt::GCounter* out) {
    if (c.counts.size() != c.replicas.size()) return InvalidArgument("counts differ from replicas");
    std::vector<crdt::GCounter::Entry> entries;
    for (std::size_t i = 0; i < c.counts.size(); ++i) {
      if (c.counts[i] == 0) return InvalidArgument("zero count listed");
      entries.push_back({crdt::ReplicaId{c.replicas[i]}, c.counts[i]});
    }
    *out = crdt::GCounter::FromEntries(entries);
    return Status::Ok();
  }
};

template <>
struct TypeCodec<crdt::PnCounter> {
  static std::string Descriptor() { return "pn_counter"; }
  static void Write(const crdt::PnCounter& v, Columns& c) {
    internal::ReplicaTable table;
    for (const auto& e : v.increments().entries()) table.Add(e.replica);
    for (const auto& e : v.decrements().entries()) table.Add(e.replica);
    table.Finish();
    c.replicas = table.ids();
    c.counts.assign(c.replicas.size(), 0);
    c.neg_counts.assign(c.replicas.size(), 0);
    for (const auto& e : v.increments().entries()) c.counts[table.IndexOf(e.replica)] = e.count;
    for (const auto& e : v.decrements().entries()) c.neg_counts[table.IndexOf(e.replica)] = e.count;
    internal::DropIfAllZero(c.counts);
    internal::DropIfAllZero(c.neg_counts);
  }
  static Status Read(const Columns& c, crdt::PnCounter* out) {
    const auto read = [&](const std::vector<std::uint64_t>& counts, crdt::GCounter* g) -> Status {
      if (!counts.empty() && counts.size() != c.replicas.size()) {
        return InvalidArgument("counts differ from replicas");
      }
      std::vector<crdt::GCounter::Entry> entries;
      for (std::size_t i = 0; i < counts.size(); ++i) {
        entries.push_back({crdt::ReplicaId{c.replicas[i]}, counts[i]});
      }
      *g = crdt::GCounter::FromEntries(entries);
      return Status::Ok();
    };
    crdt::GCounter p, n;
    CONVERGE_RETURN_IF_ERROR(read(c.counts, &p));
    CONVERGE_RETURN_IF_ERROR(read(c.neg_counts, &n));
    *out = crdt::PnCounter::FromParts(std::move(p), std::move(n));
    return Status::Ok();
  }
};

template <class V>
struct TypeCodec<crdt::LwwRegister<V>> {
  using T = crdt::LwwRegister<V>;
  static std::string Descriptor() {
    return "lww_register<" + std::string(ValueCodec<V>::kName) + ">";
  }
  static void Write(const T& v, Columns& c) {
    if (!v.write()) return;
    const auto& w = *v.write();
    c.replicas = {w.writer.value()};
    c.lww_present = true;
    c.lww_physical_ms = w.timestamp.physical_ms;
    c.lww_logical = w.timestamp.logical;
    c.lww_writer = 0;
    c.lww_value = ValueCodec<V>::Encode(w.value);
  }
  static Status Read(const Columns& c, T* out) {
    if (!c.lww_present) {
      *out = T{};
      return Status::Ok();
    }
    if (c.lww_writer >= c.replicas.size()) return InvalidArgument("register writer out of range");
    std::optional<V> value = ValueCodec<V>::Decode(c.lww_value);
    if (!value)
      return InvalidArgument("register value not decodable as " +
                             std::string(ValueCodec<V>::kName));
    *out = T::FromWrite(typename T::Write{std::move(*value),
                                          crdt::HlcTimestamp{c.lww_physical_ms, c.lww_logical},
                                          crdt::ReplicaId{c.replicas[c.lww_writer]}});
    return Status::Ok();
  }
};

// The causal types share one layout; only their descriptors differ.
template <class T, class Derived>
struct CausalTypeCodec {
  static void Write(const T& v, Columns& c) { internal::WriteCausal(v, c); }
  static Status Read(const Columns& c, T* out) { return internal::ReadCausal(c, out); }
};

template <>
struct TypeCodec<crdt::EwFlag> : CausalTypeCodec<crdt::EwFlag, TypeCodec<crdt::EwFlag>> {
  static std::string Descriptor() { return "ew_flag"; }
};
template <>
struct TypeCodec<crdt::CausalCounter>
    : CausalTypeCodec<crdt::CausalCounter, TypeCodec<crdt::CausalCounter>> {
  static std::string Descriptor() { return "causal_counter"; }
};
template <class V>
struct TypeCodec<crdt::MvRegister<V>>
    : CausalTypeCodec<crdt::MvRegister<V>, TypeCodec<crdt::MvRegister<V>>> {
  static std::string Descriptor() {
    return "mv_register<" + std::string(ValueCodec<V>::kName) + ">";
  }
};
template <class V>
struct TypeCodec<crdt::OrSet<V>> : CausalTypeCodec<crdt::OrSet<V>, TypeCodec<crdt::OrSet<V>>> {
  static std::string Descriptor() { return "or_set<" + std::string(ValueCodec<V>::kName) + ">"; }
};
template <class K, class V>
struct TypeCodec<crdt::OrMap<K, V>>
    : CausalTypeCodec<crdt::OrMap<K, V>, TypeCodec<crdt::OrMap<K, V>>> {
  static std::string Descriptor() {
    return "or_map<" + std::string(ValueCodec<K>::kName) + "," + TypeCodec<V>::Descriptor() + ">";
  }
};

// The type id written in every encoding of T.
template <class T>
std::uint32_t TypeIdOf() {
  static const std::uint32_t id = TypeIdOf(TypeCodec<T>::Descriptor());
  return id;
}

// ---------------------------------------------------------------------------
// The API.

template <class T>
std::string Encode(const T& value) {
  Columns c;
  c.type_id = TypeIdOf<T>();
  TypeCodec<T>::Write(value, c);
  return EncodeColumns(c);
}

struct DecodeOptions {
  DecodeLimits limits;
  // Skip the check that the input is the canonical encoding of its value
  // (a second encode). Only for bytes this process wrote itself.
  bool trusted = false;
  // For TypeRegistry::Join of causal types: refuse an operand that stores a
  // dot the state already stores with another payload or under another key
  // (internal::CheckSameWrites). Replication sets it for peers' deltas.
  bool reject_conflicting_writes = false;
  // For TypeRegistry::Join: the base is this process's own state (its store),
  // so it is decoded as trusted even when the operands are not.
  bool base_trusted = false;
};

// Decodes a T from untrusted bytes; never throws past the caller.
template <class T>
StatusOr<T> Decode(std::string_view bytes, const DecodeOptions& options = {}) {
  try {
    Columns c;
    CONVERGE_RETURN_IF_ERROR(DecodeColumns(bytes, options.limits, &c));
    if (c.version != kFormatVersion) {
      return InvalidArgument("format version " + std::to_string(c.version) +
                             " is not supported (this build reads version " +
                             std::to_string(kFormatVersion) + ")");
    }
    if (c.type_id != TypeIdOf<T>()) {
      return InvalidArgument("encoded type id " + std::to_string(c.type_id) + " is not " +
                             TypeCodec<T>::Descriptor());
    }
    for (std::size_t i = 1; i < c.replicas.size(); ++i) {
      if (c.replicas[i - 1] >= c.replicas[i])
        return InvalidArgument("replica ids not sorted and unique");
    }
    T value;
    CONVERGE_RETURN_IF_ERROR(TypeCodec<T>::Read(c, &value));
    if (!options.trusted && Encode(value) != bytes) {
      return InvalidArgument("not the canonical encoding of the state it describes");
    }
    return value;
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("out of memory while decoding");
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("decoding failed: ") + e.what());
  } catch (...) {
    return InvalidArgument("decoding failed");
  }
}

namespace internal {

inline std::string DotText(const Dot& d) {
  // Appended, not "(" + string: g++ 12 -O3 warns falsely on that (-Wrestrict).
  std::string text(1, '(');
  text += std::to_string(d.replica.value());
  text += ',';
  text += std::to_string(d.counter);
  text += ')';
  return text;
}

// One dot names one write: a dot that both stores hold must hold the same
// payload, under the same key. Dots of a DotSet carry no payload.
inline Status CheckSameWrites(const crdt::DotSet& /*known*/, const crdt::DotSet& /*delta*/) {
  return Status::Ok();
}

template <class V>
Status CheckSameWrites(const crdt::DotFun<V>& known, const crdt::DotFun<V>& delta) {
  for (const auto& item : delta.items()) {
    const V* value = known.Find(item.dot);
    if (value != nullptr && !(*value == item.value)) {
      return InvalidArgument("dot " + DotText(item.dot) +
                             " carries another payload than the one known here");
    }
  }
  return Status::Ok();
}

template <class K, class S>
Status CheckSameWrites(const crdt::DotMap<K, S>& known, const crdt::DotMap<K, S>& delta) {
  for (const auto& entry : delta.entries()) {
    Status status;
    entry.store.ForEachDot([&](const Dot& d) {
      if (!status.ok()) return;
      const auto* holder = known.FindByDot(d);
      if (holder != nullptr && !(holder->key == entry.key)) {
        status = InvalidArgument("dot " + DotText(d) + " is stored under another key here");
      }
    });
    CONVERGE_RETURN_IF_ERROR(status);
    if (const S* mine = known.Find(entry.key)) {
      CONVERGE_RETURN_IF_ERROR(CheckSameWrites(*mine, entry.store));
    }
  }
  return Status::Ok();
}

}  // namespace internal

// Checks a delta received from a peer against the state known here, for
// what the delta alone cannot show (Decode has checked everything else):
//   - counters: a delta entry below the entry known for the same replica
//     cannot be a newer state of it (counts only grow), so it is stale,
//     replayed or forged;
//   - causal types: a dot the known state stores must be stored by the
//     delta with the same payload and under the same key, since one dot
//     names one write. Two payloads for one dot would make Join keep
//     whichever side it runs on, and replicas would diverge for good.
// LwwRegister accepts any delta (its join orders every pair of writes).
// Cost: O(dots of the delta) lookups in the known state.
template <class T>
Status CheckDeltaAgainst(const T& known, const T& delta) {
  if constexpr (std::is_same_v<T, crdt::GCounter>) {
    for (const auto& e : delta.entries()) {
      if (e.count < known.CountOf(e.replica)) {
        return InvalidArgument(
            "delta decreases the count of replica " + std::to_string(e.replica.value()) + " from " +
            std::to_string(known.CountOf(e.replica)) + " to " + std::to_string(e.count));
      }
    }
    return Status::Ok();
  } else if constexpr (std::is_same_v<T, crdt::PnCounter>) {
    CONVERGE_RETURN_IF_ERROR(
        CheckDeltaAgainst(known.increments(), delta.increments()).WithContext("increments"));
    return CheckDeltaAgainst(known.decrements(), delta.decrements()).WithContext("decrements");
  } else if constexpr (crdt::CausalCrdt<T>) {
    return internal::CheckSameWrites(known.store(), delta.store());
  } else {
    (void)known;
    (void)delta;
    return Status::Ok();
  }
}

}  // namespace converge::codec

#endif  // CONVERGE_CRDT_CODEC_CODEC_H_
