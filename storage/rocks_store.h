// RocksStore: a Store in a RocksDB database (one data directory per
// replica). Layout, durability and recovery rules: docs/storage.md.

#ifndef CONVERGE_STORAGE_ROCKS_STORE_H_
#define CONVERGE_STORAGE_ROCKS_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "crdt/codec/registry.h"
#include "storage/store.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace converge::storage {

struct RocksStoreOptions {
  Durability durability = Durability::kSync;
  // Joins stored states; must hold every type written to the store.
  std::shared_ptr<const codec::TypeRegistry> registry;
  // Block cache for reads: states are read through it, never all held.
  std::size_t block_cache_bytes = std::size_t{64} << 20;
  std::size_t write_buffer_bytes = std::size_t{64} << 20;
  // Dots leased per lease record (one synced write each).
  std::uint64_t dot_lease_block = 4096;
  // HLC milliseconds leased per lease record.
  std::uint64_t hlc_lease_ms = 10'000;
  // Identifies this boot of the machine; empty reads
  // /proc/sys/kernel/random/boot_id. A buffered store that was not closed
  // cleanly and comes back under another boot may have lost its last writes
  // (a power loss), so it starts a new incarnation. Tests that simulate a
  // power loss set it.
  std::string boot_id;
  // Optional environment (fault injection in tests); not owned, must outlive
  // the store.
  rocksdb::Env* env = nullptr;
  // Validate every delta of Write() (decode, registered type). Local writes
  // of freshly encoded deltas may skip it.
  bool validate_writes = true;
};

class RocksStore final : public Store {
 public:
  // Opens (or creates) the store in `path`.
  static StatusOr<std::unique_ptr<RocksStore>> Open(const std::string& path,
                                                    RocksStoreOptions options);
  ~RocksStore() override;

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

  // Approximate on-disk size of the states in SST files (all of them after
  // CompactAll; the write-ahead log is not counted), for reports.
  [[nodiscard]] std::uint64_t ApproximateDiskBytes() const;
  // How often the database was reopened after a disk error (docs/storage.md).
  [[nodiscard]] std::uint64_t disk_error_recoveries() const;
  [[nodiscard]] std::uint64_t reopens() const override { return disk_error_recoveries(); }
  // Compacts the whole key space (merges operands into states).
  [[nodiscard]] Status CompactAll();

  struct Impl;

 private:
  explicit RocksStore(std::unique_ptr<Impl> impl);
  Status ScanFamily(bool aux, std::string_view begin, std::string_view end, const ScanFn& fn);
  std::unique_ptr<Impl> impl_;
};

}  // namespace converge::storage

#endif  // CONVERGE_STORAGE_ROCKS_STORE_H_
