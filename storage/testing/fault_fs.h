// FaultFs: a RocksDB FileSystem for fault tests (TESTPLAN R10, R11).
//
// It passes every call through to a real file system and remembers, per
// file written through it, what a power loss would keep:
//   - file data: the length at the last Sync/Fsync of that file. Append,
//     Flush, RangeSync and Close do not make data durable (Linux: write(2),
//     sync_file_range(2) without WAIT_AFTER, close(2) do not);
//   - directory entries: a file created or renamed through FaultFs is
//     durable only after an fsync of its parent directory (POSIX; what ext4
//     gives on top, a file fsync that also commits its new entry, is not
//     assumed). Deletions are taken as durable at once (a deleted file that
//     came back would only be an obsolete file RocksDB removes again).
// Files it has not seen written (from before FaultFs, or after a power
// loss) are durable as they are.
//
// SimulatePowerLoss() then makes the real directory look as after a power
// cut: undoes directory operations that were not synced (newest first:
// created files vanish, a rename is reverted, restoring an overwritten
// target's old bytes), and truncates every remaining file to its synced
// length. Call it only while no database has files open through it (after
// the store was dropped, or after CutPower() stopped all writes).
//
// CutPower() (or CutPowerAfter(n) mutating operations, for a power loss at
// a seeded random point) makes every later mutating call fail with IOError
// and change nothing on disk, as if the machine had stopped there.
//
// InjectFault() makes write (Append, PositionedAppend) or sync (Sync,
// Fsync, directory Fsync) calls fail with IOError or NoSpace, for the next
// n calls or until cleared; a failed write leaves the file unchanged.
//
// Thread safety: every method may be called from any thread. Mutating calls
// are serialized by one mutex held across the real I/O, so a power cut or a
// fault lands between two operations, never inside one.

#ifndef CONVERGE_STORAGE_TESTING_FAULT_FS_H_
#define CONVERGE_STORAGE_TESTING_FAULT_FS_H_

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace converge::storage::testing {

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  enum class FaultKind { kIoError, kNoSpace };
  enum class FaultTarget { kWrite, kSync };

  struct Stats {
    std::uint64_t mutating_ops = 0;       // mutating calls seen while powered
    std::uint64_t synced_files = 0;       // successful file syncs
    std::uint64_t dir_syncs = 0;          // successful directory fsyncs
    std::uint64_t injected_faults = 0;    // calls failed by InjectFault
    std::uint64_t refused_unpowered = 0;  // calls failed after CutPower
    std::uint64_t power_losses = 0;
    std::uint64_t bytes_dropped = 0;  // by SimulatePowerLoss, in total
    std::uint64_t files_removed = 0;  // unsynced creations undone
    std::uint64_t renames_reverted = 0;
  };

  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultFs() override;

  static const char* kClassName() { return "converge.FaultFs"; }
  const char* Name() const override { return kClassName(); }

  // An Env over this file system, for RocksStoreOptions::env.
  [[nodiscard]] static std::unique_ptr<rocksdb::Env> NewEnv(const std::shared_ptr<FaultFs>& fs);

  // Power.
  void CutPower();
  // Cuts power when `ops` more mutating calls have succeeded (0: now).
  void CutPowerAfter(std::uint64_t ops);
  [[nodiscard]] bool powered() const;
  // Drops what a power loss drops (see above) and powers on again. Returns
  // false (and says why in *error) if the directory could not be rewound.
  bool SimulatePowerLoss(std::string* error = nullptr);

  // Faults: the next `count` calls of `target` fail with `kind`
  // (count < 0: until ClearFaults()).
  void InjectFault(FaultTarget target, FaultKind kind, int count = -1);
  void ClearFaults();

  [[nodiscard]] Stats stats() const;

  // FileSystem.
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& target,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;

  // Called by the file wrappers (internal): run `io` if the disk is powered
  // and no fault is due, and record what it made durable.
  using Io = std::function<rocksdb::IOStatus()>;
  rocksdb::IOStatus OnWrite(const Io& io);
  rocksdb::IOStatus OnSync(const std::string& path, std::uint64_t size, const Io& io);
  rocksdb::IOStatus OnTruncate(const std::string& path, std::uint64_t size, const Io& io);
  rocksdb::IOStatus OnDirSync(const std::string& dir, const Io& io);
  rocksdb::IOStatus OnOther(const Io& io);

 private:
  // A directory operation not yet made durable by a directory fsync.
  struct PendingDirOp {
    enum class Kind { kCreate, kRename } kind;
    std::string path;    // created file, or rename target
    std::string source;  // rename source
    // Rename: the target's bytes before it was replaced, when it existed.
    std::optional<std::string> replaced_bytes;
    bool source_entry_durable = false;
  };

  // mu_ held: fails the call when unpowered or a fault is due.
  rocksdb::IOStatus Admit(std::optional<FaultTarget> target);
  // mu_ held: after a successful mutating call.
  void Count();
  // mu_ held.
  [[nodiscard]] bool EntryDurable(const std::string& path) const;
  // Opens a writable file, recording its creation when it is new.
  rocksdb::IOStatus OpenWritable(const std::string& fname, bool reopen, const Io& io,
                                 std::unique_ptr<rocksdb::FSWritableFile>* result);

  mutable std::mutex mu_;
  bool powered_ = true;
  std::optional<std::uint64_t> ops_until_cut_;
  struct Fault {
    FaultKind kind;
    int remaining;  // < 0: forever
  };
  std::map<FaultTarget, Fault> faults_;
  // Files written through FaultFs since the last power loss: path -> the
  // length a power loss keeps.
  std::map<std::string, std::uint64_t> synced_;
  std::vector<PendingDirOp> pending_;
  Stats stats_;
};

}  // namespace converge::storage::testing

#endif  // CONVERGE_STORAGE_TESTING_FAULT_FS_H_
