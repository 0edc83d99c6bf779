// MemoryStore: a Store held in memory, for tests and the simulator.
//
// Same contract as RocksStore except durability: everything is lost with the
// object. Snapshot()/Restore() copy the whole state, which the simulator uses
// to model a data directory rolled back to an earlier copy.

#ifndef CONVERGE_STORAGE_MEMORY_STORE_H_
#define CONVERGE_STORAGE_MEMORY_STORE_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "crdt/codec/registry.h"
#include "storage/store.h"

namespace converge::storage {

class MemoryStore final : public Store {
 public:
  // The whole state, as a value.
  struct Snapshot {
    Identity identity;
    std::uint64_t dot_lease_end = 0;
    crdt::HlcTimestamp hlc_high_water{};
    std::map<std::string, std::string, std::less<>> states;
    std::map<std::string, std::string, std::less<>> aux;
  };

  // A store with identity `replica` (incarnation 1).
  MemoryStore(std::shared_ptr<const codec::TypeRegistry> registry, crdt::ReplicaId replica);
  // A store holding `snapshot` (a restarted replica whose directory survived,
  // possibly rolled back). `id_seed` stands for the new process's entropy:
  // the ReplicaIds it mints at Retire() derive from it, so two stores
  // restored from one copy (a directory rolled back twice to the same
  // backup) never retire to the same id — as RocksStore's random ids do not.
  // Give every restored store its own seed.
  MemoryStore(std::shared_ptr<const codec::TypeRegistry> registry, Snapshot snapshot,
              std::uint64_t id_seed);

  [[nodiscard]] Snapshot TakeSnapshot() const;

  Identity identity() const override;
  Status Write(const WriteBatch& batch) override;
  StatusOr<std::optional<std::string>> Get(std::string_view key) override;
  Status Scan(std::string_view begin, std::string_view end, const ScanFn& fn) override;
  StatusOr<std::optional<std::string>> GetAux(std::string_view key) override;
  Status ScanAux(std::string_view begin, std::string_view end, const ScanFn& fn) override;
  Status EnsureDotLease(std::uint64_t counter) override;
  std::uint64_t dot_lease_end() const override;
  Status EnsureHlcLease(crdt::HlcTimestamp timestamp) override;
  crdt::HlcTimestamp hlc_high_water() const override;
  Status Retire() override;
  StatusOr<std::optional<std::string>> ReadRaw(std::string_view key) override;
  Status OverwriteRaw(std::string_view key, std::string_view bytes) override;
  Status Close() override;

 private:
  std::shared_ptr<const codec::TypeRegistry> registry_;
  mutable std::mutex mu_;
  Snapshot state_;
  std::uint64_t next_replica_seed_;
  bool closed_ = false;
};

}  // namespace converge::storage

#endif  // CONVERGE_STORAGE_MEMORY_STORE_H_
