// TypeRegistry: joins encoded states without knowing their C++ type at the
// call site.
//
// Every encoding carries its type id (codec.h). The storage layer's merge
// operator and the replication layer handle states of many types as bytes;
// the registry maps a type id to the decode/join/encode of that type. Types
// are registered explicitly — WithBuiltins() registers every converge type
// over the common element types, and Register<T>() adds any other (for
// example a CRDT over your own ValueCodec). Immutable after set-up, so it
// can be shared by threads (RocksDB calls merge operators from many).

#ifndef CONVERGE_CRDT_CODEC_REGISTRY_H_
#define CONVERGE_CRDT_CODEC_REGISTRY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/codec/codec.h"
#include "crdt/codec/columns.h"
#include "crdt/codec/status.h"
#include "crdt/relabel.h"

namespace converge::codec {

class TypeRegistry {
 public:
  // Joins `operands` (encodings of one type) into `base` (or into bottom
  // when absent) and returns the encoding of the result.
  using JoinFn = std::function<StatusOr<std::string>(const std::optional<std::string_view>& base,
                                                     std::span<const std::string_view> operands,
                                                     const DecodeOptions& options)>;
  // Decodes and validates; returns the canonical re-encoding.
  using ValidateFn = std::function<Status(std::string_view bytes, const DecodeOptions& options)>;

  // For last-writer-wins types: the timestamp of the winning write, which a
  // receiver checks against its clock (far-future writes are rejected).
  using TimestampFn = std::function<std::optional<crdt::HlcTimestamp>(std::string_view bytes)>;

  // Pruning retired replica ids (crdt/relabel.h), on trusted encodings:
  // the ids a state names; its figures for `ids` (what members compare
  // before renaming); and the renaming (or stripping) of a key's state and
  // of deltas of it, rewritten in place, with the plan of the state. To
  // restore, `state` is the state before the renaming (left as it is) and
  // `deltas` are states after it.
  using ReplicasFn = std::function<StatusOr<std::vector<crdt::ReplicaId>>(std::string_view bytes)>;
  using FiguresFn = std::function<StatusOr<std::vector<std::uint64_t>>(
      std::string_view bytes, std::span<const crdt::ReplicaId> ids)>;
  using RelabelFn =
      std::function<Status(std::string& state, std::span<std::string> deltas,
                           std::span<const crdt::ReplicaId> retired, crdt::RelabelMode mode)>;

  struct Entry {
    std::string descriptor;
    JoinFn join;
    ValidateFn validate;
    TimestampFn timestamp;  // empty for types without timestamps
    ReplicasFn replicas;
    FiguresFn figures;
    RelabelFn relabel;
  };

  TypeRegistry() = default;

  // Every converge CRDT type over std::string, int64 and uint64 elements,
  // and the cart's OrMap<std::string, CausalCounter>.
  static TypeRegistry WithBuiltins();

  template <class T>
  void Register() {
    const std::uint32_t id = TypeIdOf<T>();
    Entry entry{TypeCodec<T>::Descriptor(),
                &JoinAs<T>,
                &ValidateAs<T>,
                {},
                &ReplicasAs<T>,
                &FiguresAs<T>,
                &RelabelAs<T>};
    if constexpr (requires(const T& t) { t.write()->timestamp; }) entry.timestamp = &TimestampAs<T>;
    const auto [it, fresh] = types_.emplace(id, std::move(entry));
    // Two descriptors with one 32-bit id would make encodings ambiguous.
    if (!fresh && it->second.descriptor != TypeCodec<T>::Descriptor()) {
      collisions_.push_back(it->second.descriptor + " / " + TypeCodec<T>::Descriptor());
    }
  }

  // Descriptors whose type ids collided (must be empty for a usable registry).
  [[nodiscard]] const std::vector<std::string>& collisions() const { return collisions_; }

  [[nodiscard]] const Entry* Find(std::uint32_t type_id) const {
    const auto it = types_.find(type_id);
    return it == types_.end() ? nullptr : &it->second;
  }

  // The type id in an encoding (parses the message header and columns).
  static StatusOr<std::uint32_t> PeekTypeId(std::string_view bytes,
                                            const DecodeLimits& limits = {}) {
    return codec::PeekTypeId(bytes, limits);
  }

  // The registered type of an encoding (reads only its header).
  [[nodiscard]] StatusOr<const Entry*> Lookup(std::string_view bytes,
                                              const DecodeLimits& limits = {}) const {
    const StatusOr<std::uint32_t> id = PeekTypeId(bytes, limits);
    if (!id.ok()) return id.status();
    const Entry* entry = Find(*id);
    if (entry == nullptr) return InvalidArgument("unregistered type id " + std::to_string(*id));
    return entry;
  }

  // Joins encodings of one registered type; the type comes from the bytes.
  [[nodiscard]] StatusOr<std::string> Join(const std::optional<std::string_view>& base,
                                           std::span<const std::string_view> operands,
                                           const DecodeOptions& options = {}) const {
    const std::string_view first =
        base ? *base : (operands.empty() ? std::string_view{} : operands[0]);
    if (first.empty()) return InvalidArgument("nothing to join");
    const StatusOr<const Entry*> entry = Lookup(first, options.limits);
    if (!entry.ok()) return entry.status();
    return JoinWith(**entry, base, operands, options);
  }

  // Join with the type already looked up (the operands must be of it).
  [[nodiscard]] static StatusOr<std::string> JoinWith(const Entry& entry,
                                                      const std::optional<std::string_view>& base,
                                                      std::span<const std::string_view> operands,
                                                      const DecodeOptions& options) {
    // Bottom joined with one state is that state: an untrusted decode has
    // checked that the bytes are its canonical encoding, so they are the
    // result as they are (a key a peer sends us first, a bootstrap).
    if (!base && operands.size() == 1 && !options.trusted) {
      CONVERGE_RETURN_IF_ERROR(entry.validate(operands[0], options));
      return std::string(operands[0]);
    }
    return entry.join(base, operands, options);
  }

  // The write timestamp in `bytes` when its type has one.
  [[nodiscard]] std::optional<crdt::HlcTimestamp> TimestampOf(std::string_view bytes) const {
    const StatusOr<std::uint32_t> id = PeekTypeId(bytes);
    if (!id.ok()) return std::nullopt;
    const Entry* entry = Find(*id);
    if (entry == nullptr || !entry->timestamp) return std::nullopt;
    return entry->timestamp(bytes);
  }

  // Decodes `bytes` as whatever registered type it names; ok if valid.
  [[nodiscard]] Status Validate(std::string_view bytes, const DecodeOptions& options = {}) const {
    const StatusOr<std::uint32_t> id = PeekTypeId(bytes, options.limits);
    if (!id.ok()) return id.status();
    const Entry* entry = Find(*id);
    if (entry == nullptr) return InvalidArgument("unregistered type id " + std::to_string(*id));
    return entry->validate(bytes, options);
  }

 private:
  template <class T>
  static StatusOr<std::string> JoinAs(const std::optional<std::string_view>& base,
                                      std::span<const std::string_view> operands,
                                      const DecodeOptions& options) {
    T state;
    if (base) {
      DecodeOptions base_options = options;
      base_options.trusted = options.trusted || options.base_trusted;
      StatusOr<T> decoded = Decode<T>(*base, base_options);
      if (!decoded.ok()) return decoded.status().WithContext("base state");
      state = std::move(decoded).value();
    }
    for (const std::string_view operand : operands) {
      StatusOr<T> decoded = Decode<T>(operand, options);
      if (!decoded.ok()) return decoded.status().WithContext("operand");
      if constexpr (crdt::CausalCrdt<T>) {
        if (options.reject_conflicting_writes) {
          CONVERGE_RETURN_IF_ERROR(
              internal::CheckSameWrites(state.store(), decoded->store()).WithContext("operand"));
        }
      }
      state.Join(*decoded);
    }
    return Encode(state);
  }

  template <class T>
  static std::optional<crdt::HlcTimestamp> TimestampAs(std::string_view bytes) {
    DecodeOptions options;
    options.trusted = true;
    StatusOr<T> decoded = Decode<T>(bytes, options);
    if (!decoded.ok() || !decoded->write()) return std::nullopt;
    return decoded->write()->timestamp;
  }

  static DecodeOptions Trusted() {
    DecodeOptions options;
    options.trusted = true;
    return options;
  }

  template <class T>
  static StatusOr<std::vector<crdt::ReplicaId>> ReplicasAs(std::string_view bytes) {
    StatusOr<T> decoded = Decode<T>(bytes, Trusted());
    if (!decoded.ok()) return decoded.status();
    return crdt::ReplicasOf(*decoded);
  }

  template <class T>
  static StatusOr<std::vector<std::uint64_t>> FiguresAs(std::string_view bytes,
                                                        std::span<const crdt::ReplicaId> ids) {
    StatusOr<T> decoded = Decode<T>(bytes, Trusted());
    if (!decoded.ok()) return decoded.status();
    return crdt::RelabelFigures(*decoded, ids);
  }

  template <class T>
  static Status RelabelAs(std::string& state, std::span<std::string> deltas,
                          std::span<const crdt::ReplicaId> retired, crdt::RelabelMode mode) {
    StatusOr<T> decoded = Decode<T>(state, Trusted());
    if (!decoded.ok()) return decoded.status().WithContext("state");
    const crdt::RelabelPlan plan = crdt::PlanRelabel(*decoded, retired, mode);
    const bool restore = mode == crdt::RelabelMode::kRestore;
    std::vector<std::string> renamed;
    renamed.reserve(deltas.size());
    for (const std::string& delta : deltas) {
      StatusOr<T> d = Decode<T>(delta, Trusted());
      if (!d.ok()) return d.status().WithContext("delta");
      renamed.push_back(Encode(crdt::Relabel(*d, plan, /*state=*/restore)));
    }
    if (!restore) state = Encode(crdt::Relabel(*decoded, plan, /*state=*/true));
    for (std::size_t i = 0; i < deltas.size(); ++i) deltas[i] = std::move(renamed[i]);
    return Status::Ok();
  }

  template <class T>
  static Status ValidateAs(std::string_view bytes, const DecodeOptions& options) {
    return Decode<T>(bytes, options).status();
  }

  std::map<std::uint32_t, Entry> types_;
  std::vector<std::string> collisions_;
};

inline TypeRegistry TypeRegistry::WithBuiltins() {
  TypeRegistry r;
  r.Register<crdt::GCounter>();
  r.Register<crdt::PnCounter>();
  r.Register<crdt::EwFlag>();
  r.Register<crdt::CausalCounter>();
  r.Register<crdt::LwwRegister<std::string>>();
  r.Register<crdt::LwwRegister<std::int64_t>>();
  r.Register<crdt::MvRegister<std::string>>();
  r.Register<crdt::MvRegister<std::int64_t>>();
  r.Register<crdt::OrSet<std::string>>();
  r.Register<crdt::OrSet<std::int64_t>>();
  r.Register<crdt::OrSet<std::uint64_t>>();
  r.Register<crdt::OrMap<std::string, crdt::CausalCounter>>();
  r.Register<crdt::OrMap<std::string, crdt::EwFlag>>();
  r.Register<crdt::OrMap<std::string, crdt::MvRegister<std::string>>>();
  r.Register<crdt::OrMap<std::string, crdt::OrSet<std::string>>>();
  return r;
}

}  // namespace converge::codec

#endif  // CONVERGE_CRDT_CODEC_REGISTRY_H_
