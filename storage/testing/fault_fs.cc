#include "storage/testing/fault_fs.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

namespace converge::storage::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

std::string Normal(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}

std::string Parent(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

// A writable file whose writes and syncs FaultFs sees.
class TrackedWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, FaultFs* fs,
                      std::string path, std::uint64_t size)
      : FSWritableFileOwnerWrapper(std::move(target)),
        fs_(fs),
        path_(std::move(path)),
        size_(size) {}

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    return Wrote(data.size(), [&] { return target()->Append(data, options, dbg); });
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    return Wrote(data.size(), [&] { return target()->Append(data, options, info, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    return WroteAt(offset, data.size(),
                   [&] { return target()->PositionedAppend(data, offset, options, dbg); });
  }
  IOStatus PositionedAppend(const Slice& data, std::uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    return WroteAt(offset, data.size(),
                   [&] { return target()->PositionedAppend(data, offset, options, info, dbg); });
  }
  IOStatus Truncate(std::uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s =
        fs_->OnTruncate(path_, size, [&] { return target()->Truncate(size, options, dbg); });
    if (s.ok()) size_ = size;
    return s;
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return fs_->OnSync(path_, size_, [&] { return target()->Sync(options, dbg); });
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return fs_->OnSync(path_, size_, [&] { return target()->Fsync(options, dbg); });
  }
  IOStatus RangeSync(std::uint64_t offset, std::uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    // sync_file_range(2) starts write-back; it promises nothing durable.
    return fs_->OnOther([&] { return target()->RangeSync(offset, nbytes, options, dbg); });
  }
  // Close and Flush pass through: neither makes data durable, and a file
  // must be closable after a power cut.

 private:
  IOStatus Wrote(std::uint64_t length, const FaultFs::Io& io) {
    IOStatus s = fs_->OnWrite(io);
    if (s.ok()) size_ += length;
    return s;
  }
  IOStatus WroteAt(std::uint64_t offset, std::uint64_t length, const FaultFs::Io& io) {
    IOStatus s = fs_->OnWrite(io);
    if (s.ok()) size_ = std::max(size_, offset + length);
    return s;
  }

  FaultFs* fs_;
  std::string path_;
  std::uint64_t size_;
};

class TrackedDirectory final : public rocksdb::FSDirectoryWrapper {
 public:
  TrackedDirectory(std::unique_ptr<rocksdb::FSDirectory> target, FaultFs* fs, std::string path)
      : FSDirectoryWrapper(std::move(target)), fs_(fs), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return fs_->OnDirSync(path_, [&] { return FSDirectoryWrapper::Fsync(options, dbg); });
  }
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    return fs_->OnDirSync(
        path_, [&] { return FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options); });
  }

 private:
  FaultFs* fs_;
  std::string path_;
};

}  // namespace

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base)
    : rocksdb::FileSystemWrapper(std::move(base)) {}

FaultFs::~FaultFs() = default;

std::unique_ptr<rocksdb::Env> FaultFs::NewEnv(const std::shared_ptr<FaultFs>& fs) {
  return rocksdb::NewCompositeEnv(fs);
}

void FaultFs::CutPower() {
  const std::lock_guard lock(mu_);
  powered_ = false;
  ops_until_cut_.reset();
}

void FaultFs::CutPowerAfter(std::uint64_t ops) {
  const std::lock_guard lock(mu_);
  if (ops == 0) {
    powered_ = false;
    ops_until_cut_.reset();
  } else {
    ops_until_cut_ = ops;
  }
}

bool FaultFs::powered() const {
  const std::lock_guard lock(mu_);
  return powered_;
}

void FaultFs::InjectFault(FaultTarget target, FaultKind kind, int count) {
  const std::lock_guard lock(mu_);
  if (count == 0) {
    faults_.erase(target);
  } else {
    faults_[target] = Fault{kind, count};
  }
}

void FaultFs::ClearFaults() {
  const std::lock_guard lock(mu_);
  faults_.clear();
}

FaultFs::Stats FaultFs::stats() const {
  const std::lock_guard lock(mu_);
  return stats_;
}

IOStatus FaultFs::Admit(std::optional<FaultTarget> target) {
  if (!powered_) {
    ++stats_.refused_unpowered;
    return IOStatus::IOError("FaultFs: power is cut");
  }
  if (!target) return IOStatus::OK();
  const auto it = faults_.find(*target);
  if (it == faults_.end()) return IOStatus::OK();
  const FaultKind kind = it->second.kind;
  if (it->second.remaining > 0 && --it->second.remaining == 0) faults_.erase(it);
  ++stats_.injected_faults;
  return kind == FaultKind::kNoSpace ? IOStatus::NoSpace("FaultFs: injected: no space left")
                                     : IOStatus::IOError("FaultFs: injected I/O error");
}

void FaultFs::Count() {
  ++stats_.mutating_ops;
  if (ops_until_cut_ && --*ops_until_cut_ == 0) {
    powered_ = false;
    ops_until_cut_.reset();
  }
}

bool FaultFs::EntryDurable(const std::string& path) const {
  return std::none_of(pending_.begin(), pending_.end(),
                      [&](const PendingDirOp& op) { return op.path == path; });
}

IOStatus FaultFs::OnWrite(const Io& io) {
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(FaultTarget::kWrite);
  if (!s.ok()) return s;
  s = io();
  if (s.ok()) Count();
  return s;
}

IOStatus FaultFs::OnSync(const std::string& path, std::uint64_t size, const Io& io) {
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(FaultTarget::kSync);
  if (!s.ok()) return s;
  s = io();
  if (!s.ok()) return s;
  synced_[path] = size;
  ++stats_.synced_files;
  Count();
  return s;
}

IOStatus FaultFs::OnTruncate(const std::string& path, std::uint64_t size, const Io& io) {
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(FaultTarget::kWrite);
  if (!s.ok()) return s;
  s = io();
  if (!s.ok()) return s;
  if (const auto it = synced_.find(path); it != synced_.end()) {
    it->second = std::min(it->second, size);
  }
  Count();
  return s;
}

IOStatus FaultFs::OnDirSync(const std::string& dir, const Io& io) {
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(FaultTarget::kSync);
  if (!s.ok()) return s;
  s = io();
  if (!s.ok()) return s;
  std::erase_if(pending_, [&](const PendingDirOp& op) {
    return Parent(op.path) == dir && (op.source.empty() || Parent(op.source) == dir);
  });
  ++stats_.dir_syncs;
  Count();
  return s;
}

IOStatus FaultFs::OnOther(const Io& io) {
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(std::nullopt);
  if (!s.ok()) return s;
  s = io();
  if (s.ok()) Count();
  return s;
}

IOStatus FaultFs::OpenWritable(const std::string& fname, bool reopen, const Io& io,
                               std::unique_ptr<rocksdb::FSWritableFile>* result) {
  const std::string path = Normal(fname);
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(std::nullopt);
  if (!s.ok()) return s;
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  std::uint64_t size = 0;
  if (existed) {
    size = std::filesystem::file_size(path, ec);
    if (ec) size = 0;
  }
  s = io();
  if (!s.ok()) return s;
  if (!existed) {
    pending_.push_back(PendingDirOp{PendingDirOp::Kind::kCreate, path, {}, std::nullopt, false});
    synced_[path] = 0;
  } else if (!reopen) {
    // Replaced in place (O_TRUNC): the truncation is not durable either,
    // but keeping the old bytes would only be kinder.
    synced_[path] = 0;
    size = 0;
  } else if (!synced_.count(path)) {
    synced_[path] = size;  // what was there is durable
  }
  Count();
  *result =
      std::make_unique<TrackedWritableFile>(std::move(*result), this, path, reopen ? size : 0);
  return s;
}

IOStatus FaultFs::NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                  std::unique_ptr<rocksdb::FSWritableFile>* result,
                                  IODebugContext* dbg) {
  return OpenWritable(
      fname, /*reopen=*/false,
      [&] { return target()->NewWritableFile(fname, options, result, dbg); }, result);
}

IOStatus FaultFs::ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                     std::unique_ptr<rocksdb::FSWritableFile>* result,
                                     IODebugContext* dbg) {
  return OpenWritable(
      fname, /*reopen=*/true,
      [&] { return target()->ReopenWritableFile(fname, options, result, dbg); }, result);
}

IOStatus FaultFs::ReuseWritableFile(const std::string& /*fname*/, const std::string& /*old_fname*/,
                                    const rocksdb::FileOptions& /*options*/,
                                    std::unique_ptr<rocksdb::FSWritableFile>* /*result*/,
                                    IODebugContext* /*dbg*/) {
  // WAL recycling (recycle_log_file_num) is off in RocksStore.
  return IOStatus::NotSupported("FaultFs does not model recycled files");
}

IOStatus FaultFs::NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& options,
                                  std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                  IODebugContext* dbg) {
  // Not used by RocksStore's configuration; passed through untracked, but a
  // cut disk still refuses it.
  return OnOther([&] { return target()->NewRandomRWFile(fname, options, result, dbg); });
}

IOStatus FaultFs::NewDirectory(const std::string& name, const IOOptions& options,
                               std::unique_ptr<rocksdb::FSDirectory>* result, IODebugContext* dbg) {
  IOStatus s = target()->NewDirectory(name, options, result, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<TrackedDirectory>(std::move(*result), this, Normal(name));
  return s;
}

IOStatus FaultFs::DeleteFile(const std::string& fname, const IOOptions& options,
                             IODebugContext* dbg) {
  const std::string path = Normal(fname);
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(std::nullopt);
  if (!s.ok()) return s;
  s = target()->DeleteFile(fname, options, dbg);
  if (!s.ok()) return s;
  synced_.erase(path);
  std::erase_if(pending_, [&](const PendingDirOp& op) { return op.path == path; });
  Count();
  return s;
}

IOStatus FaultFs::RenameFile(const std::string& src, const std::string& target_name,
                             const IOOptions& options, IODebugContext* dbg) {
  const std::string from = Normal(src);
  const std::string to = Normal(target_name);
  const std::lock_guard lock(mu_);
  IOStatus s = Admit(std::nullopt);
  if (!s.ok()) return s;
  PendingDirOp op{PendingDirOp::Kind::kRename, to, from, std::nullopt, EntryDurable(from)};
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) {
    std::string bytes;
    if (!rocksdb::ReadFileToString(target(), to, &bytes).ok()) {
      return IOStatus::IOError("FaultFs: cannot keep the rename target's old bytes: " + to);
    }
    op.replaced_bytes = std::move(bytes);
  }
  std::uint64_t source_synced = 0;
  if (const auto it = synced_.find(from); it != synced_.end()) {
    source_synced = it->second;
  } else {
    source_synced = std::filesystem::file_size(from, ec);
    if (ec) source_synced = 0;
  }
  s = target()->RenameFile(src, target_name, options, dbg);
  if (!s.ok()) return s;
  synced_.erase(from);
  synced_[to] = source_synced;
  pending_.push_back(std::move(op));
  Count();
  return s;
}

IOStatus FaultFs::LinkFile(const std::string& src, const std::string& target_name,
                           const IOOptions& options, IODebugContext* dbg) {
  // Hard links are used for checkpoints and ingestion, not by RocksStore:
  // passed through and taken as durable.
  return OnOther([&] { return target()->LinkFile(src, target_name, options, dbg); });
}

IOStatus FaultFs::Truncate(const std::string& fname, size_t size, const IOOptions& options,
                           IODebugContext* dbg) {
  return OnTruncate(Normal(fname), size,
                    [&] { return target()->Truncate(fname, size, options, dbg); });
}

IOStatus FaultFs::CreateDir(const std::string& dirname, const IOOptions& options,
                            IODebugContext* dbg) {
  return OnOther([&] { return target()->CreateDir(dirname, options, dbg); });
}

IOStatus FaultFs::CreateDirIfMissing(const std::string& dirname, const IOOptions& options,
                                     IODebugContext* dbg) {
  return OnOther([&] { return target()->CreateDirIfMissing(dirname, options, dbg); });
}

IOStatus FaultFs::DeleteDir(const std::string& dirname, const IOOptions& options,
                            IODebugContext* dbg) {
  return OnOther([&] { return target()->DeleteDir(dirname, options, dbg); });
}

bool FaultFs::SimulatePowerLoss(std::string* error) {
  const std::lock_guard lock(mu_);
  const auto fail = [&](std::string why) {
    if (error != nullptr) *error = std::move(why);
    return false;
  };
  std::error_code ec;
  // Undo directory operations that no directory fsync made durable, newest
  // first, so that a file created and then renamed unwinds in order.
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    const PendingDirOp& op = *it;
    if (op.kind == PendingDirOp::Kind::kCreate) {
      std::filesystem::remove(op.path, ec);
      if (ec) return fail("remove " + op.path + ": " + ec.message());
      synced_.erase(op.path);
      ++stats_.files_removed;
      continue;
    }
    // A rename: the source comes back if its own entry was durable, and the
    // target gets its old bytes (or vanishes).
    const auto moved = synced_.find(op.path);
    const std::uint64_t moved_synced = moved == synced_.end() ? 0 : moved->second;
    if (moved != synced_.end()) synced_.erase(moved);
    if (op.source_entry_durable) {
      std::filesystem::rename(op.path, op.source, ec);
      if (ec) return fail("rename back " + op.path + ": " + ec.message());
      synced_[op.source] = moved_synced;
    } else {
      std::filesystem::remove(op.path, ec);
      if (ec) return fail("remove " + op.path + ": " + ec.message());
    }
    if (op.replaced_bytes) {
      const IOStatus s = rocksdb::WriteStringToFile(target(), *op.replaced_bytes, op.path,
                                                    /*should_sync=*/true);
      if (!s.ok()) return fail("restore " + op.path + ": " + s.ToString());
    }
    ++stats_.renames_reverted;
  }
  pending_.clear();
  // Drop unsynced data.
  for (const auto& [path, synced] : synced_) {
    if (!std::filesystem::exists(path, ec)) continue;
    const std::uint64_t size = std::filesystem::file_size(path, ec);
    if (ec) return fail("size of " + path + ": " + ec.message());
    if (size > synced) {
      std::filesystem::resize_file(path, synced, ec);
      if (ec) return fail("truncate " + path + ": " + ec.message());
      stats_.bytes_dropped += size - synced;
    }
  }
  synced_.clear();
  powered_ = true;
  ops_until_cut_.reset();
  ++stats_.power_losses;
  return true;
}

}  // namespace converge::storage::testing
