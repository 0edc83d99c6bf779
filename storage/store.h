// Store: the durable state of one replica.
//
// A store maps keys to encoded CRDT states (crdt/codec) and keeps the
// replica's identity. Writes are merges: a WriteBatch carries encoded deltas,
// and the store joins each into the key's state (in RocksStore, through a
// RocksDB merge operator, so writing is a blind append, never a
// read-modify-write). A batch is atomic.
//
// Identity and dot safety (docs/storage.md):
//   - a new data directory mints a random ReplicaId;
//   - dot counters are per key (the next dot of a key is one above the
//     highest of ours it holds), and the highest counter the replica may
//     issue in any key is leased: before a dot above the lease is used, a new
//     lease is written and synced (EnsureDotLease). Peers comparing what
//     they hold of our id with the lease detect a rolled-back directory;
//   - a dot that has left the process (acknowledged or sent) is on disk in
//     sync mode, and in the page cache in buffered mode. So a restart keeps
//     the ReplicaId unless the store was buffered, was not closed cleanly,
//     and the machine rebooted since (a power loss may have lost those
//     writes): then it starts a new incarnation, a fresh ReplicaId, and no
//     dot is ever issued twice;
//   - Retire() starts a new incarnation on demand, for when the replication
//     layer learns that peers hold dots of ours we do not.
//
// Thread safety: implementations are safe for concurrent use; concurrent
// Write() calls with sync durability are group-committed.

#ifndef CONVERGE_STORAGE_STORE_H_
#define CONVERGE_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/codec/status.h"
#include "crdt/hlc.h"
#include "crdt/replica_id.h"

namespace converge::storage {

enum class Durability {
  // Acknowledged once the write-ahead log is synced (fdatasync); concurrent
  // writers share one sync. Survives a process crash and a power loss.
  kSync,
  // Acknowledged once the write is in the write-ahead log in the OS page
  // cache. Survives a process crash; a power loss may lose the last writes.
  kBuffered,
};

std::string_view DurabilityName(Durability durability);

// Who this replica is, and why.
struct Identity {
  crdt::ReplicaId replica;
  // 1 for a new data directory, +1 at each new incarnation.
  std::uint64_t incarnation = 0;
  // The previous process did not close the store cleanly.
  bool recovered_from_crash = false;
  // This open created the data directory: no earlier process used this
  // identity. (A directory restored from a copy is never `created`, so the
  // replication layer can refuse to trust its history; docs/replication.md.)
  bool created = false;
};

// An atomic group of merges, plus writes to the auxiliary key space.
//
// The auxiliary key space holds data derived by the layers above (the
// replication layer's digest index and update sequence) that must change
// atomically with the states it describes: same batch, same durability.
class WriteBatch {
 public:
  struct Op {
    std::string key;
    std::string delta;  // an encoded state (codec::Encode), joined into the key
    // Replaces the key's state instead of joining into it: only for a
    // renaming every replica does alike (pruning retired replica ids,
    // crdt/relabel.h), never for an update.
    bool replace = false;
  };
  struct AuxOp {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete
  };

  void Merge(std::string key, std::string encoded_delta) {
    ops_.push_back(Op{std::move(key), std::move(encoded_delta)});
  }
  void Replace(std::string key, std::string encoded_state) {
    ops_.push_back(Op{std::move(key), std::move(encoded_state), true});
  }
  void PutAux(std::string key, std::string value) {
    aux_.push_back(AuxOp{std::move(key), std::move(value)});
  }
  void DeleteAux(std::string key) { aux_.push_back(AuxOp{std::move(key), std::nullopt}); }

  // The deltas were encoded by this process (or already validated by it):
  // the store may skip decoding them again.
  void set_trusted(bool trusted) { trusted_ = trusted; }
  [[nodiscard]] bool trusted() const { return trusted_; }

  [[nodiscard]] const std::vector<Op>& ops() const { return ops_; }
  [[nodiscard]] const std::vector<AuxOp>& aux() const { return aux_; }
  [[nodiscard]] bool empty() const { return ops_.empty() && aux_.empty(); }
  [[nodiscard]] std::size_t size() const { return ops_.size(); }

 private:
  std::vector<Op> ops_;
  std::vector<AuxOp> aux_;
  bool trusted_ = false;
};

// Called for each key in a scan; return false to stop.
using ScanFn = std::function<bool(std::string_view key, std::string_view state)>;

class Store {
 public:
  Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  virtual ~Store() = default;

  [[nodiscard]] virtual Identity identity() const = 0;

  // Joins every delta of `batch` into its key, atomically; returns once the
  // batch is as durable as the store's Durability promises. On error nothing
  // of the batch is applied and nothing may be reported as done. Deltas are
  // validated (decodable, a registered type, the key's type) before anything
  // is written.
  [[nodiscard]] virtual Status Write(const WriteBatch& batch) = 0;

  // The encoded state of `key`, nullopt when the key was never written.
  [[nodiscard]] virtual StatusOr<std::optional<std::string>> Get(std::string_view key) = 0;

  // Visits keys in [begin, end) in byte order (end empty: to the last key).
  [[nodiscard]] virtual Status Scan(std::string_view begin, std::string_view end,
                                    const ScanFn& fn) = 0;

  // The auxiliary key space (see WriteBatch): plain values, no join.
  [[nodiscard]] virtual StatusOr<std::optional<std::string>> GetAux(std::string_view key) = 0;
  [[nodiscard]] virtual Status ScanAux(std::string_view begin, std::string_view end,
                                       const ScanFn& fn) = 0;

  // Makes sure dots up to `counter` are covered by a durable lease, writing
  // and syncing a new lease first when needed. Call before issuing a dot.
  [[nodiscard]] virtual Status EnsureDotLease(std::uint64_t counter) = 0;
  [[nodiscard]] virtual std::uint64_t dot_lease_end() const = 0;

  // The hybrid-clock high-water mark: persisted (synced) in leases too, so a
  // restarted replica's clock never goes back (Hlc::Restore).
  [[nodiscard]] virtual Status EnsureHlcLease(crdt::HlcTimestamp timestamp) = 0;
  [[nodiscard]] virtual crdt::HlcTimestamp hlc_high_water() const = 0;

  // Starts a new incarnation: a fresh ReplicaId, persisted and synced.
  [[nodiscard]] virtual Status Retire() = 0;

  // Fault-test hooks: the stored bytes of a key without validation, and an
  // overwrite that bypasses the join (to plant corruption on purpose).
  [[nodiscard]] virtual StatusOr<std::optional<std::string>> ReadRaw(std::string_view key) = 0;
  [[nodiscard]] virtual Status OverwriteRaw(std::string_view key, std::string_view bytes) = 0;

  // Flushes and records a clean shutdown. Further calls fail.
  [[nodiscard]] virtual Status Close() = 0;

  // How often the store reopened itself after a disk error (any thread).
  // After a reopen it may hold writes that were reported as failed (a batch
  // whose sync failed may still have reached the log and be replayed): a
  // user that derives anything from what writes returned (the node's digest
  // tree and sequences) must read it back. 0 for stores that never reopen.
  [[nodiscard]] virtual std::uint64_t reopens() const { return 0; }
};

inline std::string_view DurabilityName(Durability durability) {
  return durability == Durability::kSync ? "sync" : "buffered";
}

}  // namespace converge::storage

#endif  // CONVERGE_STORAGE_STORE_H_
