// RocksStore: replica state in RocksDB. See docs/storage.md.
//
// Column families:
//   default  key -> encoded CRDT state; the merge operator joins deltas
//   meta     replica identity, leases, shutdown marker (see MetaKey)
//
// Every meta update is a synced write. The data column family is written
// with sync according to Durability.
//
// After a write fails with a disk error RocksDB keeps refusing writes (a
// background error that Resume() does not clear for WAL faults in RocksDB
// 7.x), so the next call reopens the database: it replays the WAL, writes
// what it recovered to synced SST files and takes writes again once the
// fault is gone (docs/storage.md, "Disk errors").

#include "storage/rocks_store.h"

#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "crdt/relabel.h"

namespace converge::storage {
namespace {

constexpr char kMetaFamily[] = "meta";
constexpr char kAuxFamily[] = "aux";

// Meta keys.
constexpr char kReplicaKey[] = "replica_id";
constexpr char kIncarnationKey[] = "incarnation";
constexpr char kDotLeaseKey[] = "dot_lease_end";
constexpr char kHlcKey[] = "hlc_high_water";
constexpr char kCleanKey[] = "clean_shutdown";
constexpr char kBootKey[] = "boot_id";
constexpr char kDurabilityKey[] = "durability";
constexpr char kFormatKey[] = "format";
constexpr char kFormatVersion[] = "converge-store-1";

std::string EncodeU64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

std::optional<std::uint64_t> DecodeU64(std::string_view bytes) {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  }
  return v;
}

std::string EncodeHlc(crdt::HlcTimestamp t) {
  return EncodeU64(t.physical_ms) + EncodeU64(t.logical);
}

std::optional<crdt::HlcTimestamp> DecodeHlc(std::string_view bytes) {
  if (bytes.size() != 16) return std::nullopt;
  const auto physical = DecodeU64(bytes.substr(0, 8));
  const auto logical = DecodeU64(bytes.substr(8));
  if (!physical || !logical || *logical > UINT32_MAX) return std::nullopt;
  return crdt::HlcTimestamp{*physical, static_cast<std::uint32_t>(*logical)};
}

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Corruption(std::move(message));
  if (s.IsNoSpace() || s.IsIOError()) return IoError(std::move(message));
  if (s.IsInvalidArgument()) return InvalidArgument(std::move(message));
  if (s.IsBusy() || s.IsTryAgain()) return {StatusCode::kUnavailable, std::move(message)};
  return IoError(std::move(message));
}

std::uint64_t RandomReplicaId() {
  std::random_device device;
  for (;;) {
    const std::uint64_t id = (std::uint64_t{device()} << 32) ^ device();
    // 0 is reserved by nothing, but a zero id looks like a missing one in
    // records; the archive id (crdt/relabel.h) is never issued.
    if (id != 0 && id != crdt::kArchiveReplica.value()) return id;
  }
}

std::string ReadBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id.empty() ? "unknown-boot" : id;
}

// RocksDB's info log (LOG in the data directory), written with stdio.
// RocksDB's own file logger keeps writing through a file writer that saw an
// error, and Debian's librocksdb (built with assertions) aborts the process
// on the next log line once the disk was full or failing. Log lines are
// diagnostics: a failed one is dropped.
class InfoLogger final : public rocksdb::Logger {
 public:
  explicit InfoLogger(std::FILE* file)
      : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), file_(file) {}
  ~InfoLogger() override { std::fclose(file_); }
  InfoLogger(const InfoLogger&) = delete;
  InfoLogger& operator=(const InfoLogger&) = delete;

  static std::shared_ptr<rocksdb::Logger> Open(const std::string& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::FILE* file = std::fopen((dir + "/LOG").c_str(), "a");
    if (file == nullptr) return nullptr;  // RocksDB then logs nowhere
    return std::make_shared<InfoLogger>(file);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    const std::lock_guard lock(mu_);
    std::vfprintf(file_, format, ap);
    std::fputc('\n', file_);
    std::fflush(file_);
    std::clearerr(file_);
  }

 private:
  std::mutex mu_;
  std::FILE* file_;
};

// The CRDT join as a RocksDB merge operator: a local or remote delta is a
// blind merge write; reads and compactions join the operands into the state.
class JoinMergeOperator final : public rocksdb::MergeOperator {
 public:
  explicit JoinMergeOperator(std::shared_ptr<const codec::TypeRegistry> registry)
      : registry_(std::move(registry)) {}

  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    std::vector<std::string_view> operands;
    operands.reserve(in.operand_list.size());
    for (const rocksdb::Slice& s : in.operand_list) operands.emplace_back(s.data(), s.size());
    std::optional<std::string_view> base;
    if (in.existing_value != nullptr) {
      base = std::string_view(in.existing_value->data(), in.existing_value->size());
    }
    // A key's first and only delta is already its state (canonical bytes).
    if (!base && operands.size() == 1) {
      out->existing_operand = in.operand_list[0];
      return true;
    }
    codec::DecodeOptions options;
    options.trusted = true;  // written by this process after validation
    StatusOr<std::string> joined = registry_->Join(base, operands, options);
    if (joined.ok()) {
      out->new_value = std::move(joined).value();
      return true;
    }
    // One bad operand (e.g. a delta of another type) must not make the key
    // unreadable: join the operands that fit the base's type one by one and
    // drop the others, deterministically.
    rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, in.logger,
                 "converge merge of key %s: %s; joining operands one by one",
                 in.key.ToString(true).c_str(), joined.status().ToString().c_str());
    std::optional<std::string> state;
    if (base) {
      // A base that does not decode is corruption (planted by a fault test,
      // or a bug). Failing the merge would stop every compaction of the
      // database, so keep the bytes as they are and drop the operands: the
      // key reads back as the corrupt state (readers reject it, the
      // coherence checker flags it) and the rest of the store works.
      if (const Status valid = registry_->Validate(*base, options); !valid.ok()) {
        rocksdb::Log(
            rocksdb::InfoLogLevel::ERROR_LEVEL, in.logger,
            "converge merge of key %s: stored state is corrupt (%s); %zu operand(s) dropped",
            in.key.ToString(true).c_str(), valid.ToString().c_str(), operands.size());
        out->new_value.assign(base->data(), base->size());
        return true;
      }
      state = std::string(*base);
    }
    for (const std::string_view operand : operands) {
      const std::string_view one[] = {operand};
      StatusOr<std::string> next = state ? registry_->Join(std::string_view(*state), one, options)
                                         : registry_->Join(std::nullopt, one, options);
      if (next.ok()) {
        state = std::move(next).value();
      } else {
        rocksdb::Log(rocksdb::InfoLogLevel::WARN_LEVEL, in.logger,
                     "converge merge of key %s: dropped operand: %s", in.key.ToString(true).c_str(),
                     next.status().ToString().c_str());
      }
    }
    if (!state) return false;
    out->new_value = std::move(*state);
    return true;
  }

  bool PartialMergeMulti(const rocksdb::Slice& /*key*/,
                         const std::deque<rocksdb::Slice>& operand_list, std::string* new_value,
                         rocksdb::Logger* /*logger*/) const override {
    std::vector<std::string_view> operands;
    operands.reserve(operand_list.size());
    for (const rocksdb::Slice& s : operand_list) operands.emplace_back(s.data(), s.size());
    codec::DecodeOptions options;
    options.trusted = true;
    StatusOr<std::string> joined = registry_->Join(std::nullopt, operands, options);
    if (!joined.ok()) return false;  // leave them for the full merge
    *new_value = std::move(joined).value();
    return true;
  }

  const char* Name() const override { return "converge.JoinMergeOperator"; }

 private:
  std::shared_ptr<const codec::TypeRegistry> registry_;
};

}  // namespace

struct RocksStore::Impl {
  RocksStoreOptions options;
  std::string path;
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;

  // Lifecycle: every call that uses `db` holds db_mu shared; opening and
  // closing the database (Close, recovery after a disk error) hold it
  // exclusive. Lock order: db_mu, then mu.
  mutable std::shared_mutex db_mu;
  std::unique_ptr<rocksdb::DB> db;              // null once closed, or after a failed recovery
  rocksdb::ColumnFamilyHandle* data = nullptr;  // owned by db
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* aux = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  bool closed = false;                      // guarded by db_mu
  std::atomic<bool> needs_recovery{false};  // a write failed with a disk error
  std::atomic<std::uint64_t> recoveries{0};
  static constexpr std::chrono::milliseconds kRecoveryRetryInterval{50};
  std::chrono::steady_clock::time_point next_recovery_attempt{};  // guarded by db_mu
  std::string last_recovery_error;                                // guarded by db_mu

  mutable std::mutex mu;  // guards identity and leases
  Identity identity;
  std::uint64_t dot_lease_end = 0;
  crdt::HlcTimestamp hlc_high_water{};

  ~Impl() { CloseDb(); }

  Status OpenDb() {
    rocksdb::DB* raw = nullptr;
    handles.clear();
    const rocksdb::Status s = rocksdb::DB::Open(db_options, path, families, &handles, &raw);
    if (!s.ok()) return FromRocks(s, "open " + path);
    db.reset(raw);
    data = handles[0];
    meta = handles[1];
    aux = handles[2];
    return Status::Ok();
  }

  rocksdb::Status CloseDb() {
    if (!db) return rocksdb::Status::OK();
    for (auto* handle : handles) (void)db->DestroyColumnFamilyHandle(handle);
    handles.clear();
    data = meta = aux = nullptr;
    rocksdb::Status s = db->Close();
    db.reset();
    return s;
  }

  // Remembers that the database must be reopened before it takes writes
  // again: RocksDB turns a failed WAL write or sync into a background error
  // that fails every later write.
  Status NoteWrite(const rocksdb::Status& s, std::string_view what) {
    if (s.IsIOError() || s.IsCorruption() || s.IsNoSpace()) needs_recovery = true;
    return FromRocks(s, what);
  }

  // Runs fn() (returning Status or StatusOr) with the database open,
  // reopening it first if a disk error left it failing.
  template <class F>
  std::invoke_result_t<F> Use(F&& fn) {
    using R = std::invoke_result_t<F>;
    for (;;) {
      {
        const std::shared_lock lock(db_mu);
        if (closed) return R(Status(StatusCode::kFailedPrecondition, "store is closed"));
        if (!needs_recovery) return fn();
      }
      const std::unique_lock lock(db_mu);
      if (closed) return R(Status(StatusCode::kFailedPrecondition, "store is closed"));
      if (needs_recovery) {
        // While the disk keeps failing, reopen at most every
        // kRecoveryRetryInterval: an attempt costs a database open.
        const auto now = std::chrono::steady_clock::now();
        if (now < next_recovery_attempt) {
          return R(Status(StatusCode::kUnavailable,
                          "store is recovering from a disk error: " + last_recovery_error));
        }
        Status s = ReopenLocked();
        if (!s.ok()) {
          next_recovery_attempt = now + kRecoveryRetryInterval;
          last_recovery_error = s.message();
          return R(Status(StatusCode::kUnavailable,
                          "store is recovering from a disk error: " + s.message()));
        }
      }
    }
  }

  // db_mu held exclusive. Closes the failed database and opens it again;
  // the identity and leases are read back (a lease or retirement whose
  // synced write failed may still have reached the log).
  Status ReopenLocked() {
    (void)CloseDb();  // reports the background error that brought us here
    CONVERGE_RETURN_IF_ERROR(OpenDb());
    StatusOr<std::optional<std::string>> replica = GetMeta(kReplicaKey);
    StatusOr<std::optional<std::string>> incarnation = GetMeta(kIncarnationKey);
    StatusOr<std::optional<std::string>> lease = GetMeta(kDotLeaseKey);
    StatusOr<std::optional<std::string>> hlc = GetMeta(kHlcKey);
    for (const auto* s : {&replica, &incarnation, &lease, &hlc}) {
      if (!s->ok()) return s->status();
      if (!s->value().has_value()) return Corruption("data directory misses replica metadata");
    }
    const auto id = DecodeU64(**replica);
    const auto inc = DecodeU64(**incarnation);
    const auto lease_end = DecodeU64(**lease);
    const auto high_water = DecodeHlc(**hlc);
    if (!id || !inc || !lease_end || !high_water) {
      return Corruption("replica metadata is malformed");
    }
    {
      const std::lock_guard lock(mu);
      if (*id != identity.replica.value()) {
        identity.replica = crdt::ReplicaId{*id};
        identity.incarnation = *inc;
        dot_lease_end = *lease_end;
      } else {
        dot_lease_end = std::max(dot_lease_end, *lease_end);
      }
      hlc_high_water = std::max(hlc_high_water, *high_water);
    }
    needs_recovery = false;
    ++recoveries;
    return Status::Ok();
  }

  // db_mu held.
  Status PutMeta(const std::vector<std::pair<std::string, std::string>>& records) {
    rocksdb::WriteBatch batch;
    for (const auto& [key, value] : records) {
      const rocksdb::Status s = batch.Put(meta, key, value);
      if (!s.ok()) return FromRocks(s, "meta batch");
    }
    rocksdb::WriteOptions write;
    write.sync = true;  // every meta record is durable before it is relied on
    return NoteWrite(db->Write(write, &batch), "write meta");
  }

  // db_mu held.
  StatusOr<std::optional<std::string>> GetMeta(const char* key) {
    std::string value;
    const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, key, &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s, std::string("read meta ") + key);
    return std::optional<std::string>(std::move(value));
  }

  // Reads or creates the identity; decides whether this open starts a new
  // incarnation. Called once, before the store is shared.
  Status Recover() {
    const std::string boot = options.boot_id.empty() ? ReadBootId() : options.boot_id;
    StatusOr<std::optional<std::string>> format = GetMeta(kFormatKey);
    if (!format.ok()) return format.status();
    StatusOr<std::optional<std::string>> replica = GetMeta(kReplicaKey);
    if (!replica.ok()) return replica.status();

    if (!replica->has_value()) {
      // A store that was set up has its replica id; losing it would mint a
      // new identity over old data without saying so.
      if (format->has_value()) return Corruption("data directory misses its replica id");
      // A new data directory: a fresh identity.
      identity.replica = crdt::ReplicaId{RandomReplicaId()};
      identity.incarnation = 1;
      identity.created = true;
      return PutMeta({{kFormatKey, kFormatVersion},
                      {kReplicaKey, EncodeU64(identity.replica.value())},
                      {kIncarnationKey, EncodeU64(identity.incarnation)},
                      {kDotLeaseKey, EncodeU64(0)},
                      {kHlcKey, EncodeHlc({})},
                      {kCleanKey, "0"},
                      {kBootKey, boot},
                      {kDurabilityKey, std::string(DurabilityName(options.durability))}});
    }
    if (!format->has_value() || **format != kFormatVersion) {
      return Corruption("data directory has an unknown store format");
    }
    const auto id = DecodeU64(**replica);
    StatusOr<std::optional<std::string>> incarnation = GetMeta(kIncarnationKey);
    StatusOr<std::optional<std::string>> lease = GetMeta(kDotLeaseKey);
    StatusOr<std::optional<std::string>> hlc = GetMeta(kHlcKey);
    StatusOr<std::optional<std::string>> clean = GetMeta(kCleanKey);
    StatusOr<std::optional<std::string>> last_boot = GetMeta(kBootKey);
    StatusOr<std::optional<std::string>> last_durability = GetMeta(kDurabilityKey);
    for (const auto* s : {&incarnation, &lease, &hlc, &clean, &last_boot, &last_durability}) {
      if (!s->ok()) return s->status();
      if (!s->value().has_value()) return Corruption("data directory misses replica metadata");
    }
    const auto inc = DecodeU64(**incarnation);
    const auto lease_end = DecodeU64(**lease);
    const auto high_water = DecodeHlc(**hlc);
    if (!id || !inc || !lease_end || !high_water)
      return Corruption("replica metadata is malformed");
    identity.replica = crdt::ReplicaId{*id};
    identity.incarnation = *inc;
    dot_lease_end = *lease_end;
    hlc_high_water = *high_water;
    identity.recovered_from_crash = **clean != "1";

    // Dots issued under this id are safe to continue after a crash unless
    // writes that had left the process (acknowledged, sent to peers) can have
    // been lost: a buffered store whose page cache did not survive (another
    // boot). Then the history of this id may have holes that peers fill with
    // dots we would issue again: continue under a new incarnation instead.
    const bool lost_page_cache = **last_boot != boot;
    const bool was_buffered = **last_durability == DurabilityName(Durability::kBuffered);
    std::vector<std::pair<std::string, std::string>> records = {
        {kCleanKey, "0"},
        {kBootKey, boot},
        {kDurabilityKey, std::string(DurabilityName(options.durability))}};
    if (identity.recovered_from_crash && was_buffered && lost_page_cache) {
      identity.replica = crdt::ReplicaId{RandomReplicaId()};
      identity.incarnation += 1;
      dot_lease_end = 0;
      records.emplace_back(kReplicaKey, EncodeU64(identity.replica.value()));
      records.emplace_back(kIncarnationKey, EncodeU64(identity.incarnation));
      records.emplace_back(kDotLeaseKey, EncodeU64(0));
    }
    return PutMeta(records);
  }
};

RocksStore::RocksStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// Without Close() this is not a clean shutdown: the marker stays "0"
// (~Impl closes the database).
RocksStore::~RocksStore() = default;

StatusOr<std::unique_ptr<RocksStore>> RocksStore::Open(const std::string& path,
                                                       RocksStoreOptions options) {
  if (!options.registry) return InvalidArgument("RocksStoreOptions.registry is required");
  if (!options.registry->collisions().empty()) {
    return InvalidArgument("type registry has colliding type ids: " +
                           options.registry->collisions().front());
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->path = path;

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_background_jobs = 2;
  if (options.env != nullptr) db_options.env = options.env;
  // RocksStore recovers from background errors itself (by reopening), and
  // RocksDB's own retry loop would only make Close wait for it.
  db_options.max_bgerror_resume_count = 0;
  db_options.info_log = InfoLogger::Open(path);
  if (!db_options.info_log) db_options.info_log_level = rocksdb::InfoLogLevel::HEADER_LEVEL;
  impl->db_options = db_options;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.cache_index_and_filter_blocks = true;
  // Most reads of a fresh key find nothing: let filters say so.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));

  rocksdb::ColumnFamilyOptions data_options;
  data_options.merge_operator = std::make_shared<JoinMergeOperator>(options.registry);
  data_options.write_buffer_size = options.write_buffer_bytes;
  data_options.memtable_whole_key_filtering = true;
  data_options.memtable_prefix_bloom_size_ratio = 0.02;
  data_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  data_options.compression = rocksdb::kLZ4Compression;

  rocksdb::ColumnFamilyOptions meta_options;
  rocksdb::ColumnFamilyOptions aux_options;
  aux_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  impl->families = {{rocksdb::kDefaultColumnFamilyName, data_options},
                    {kMetaFamily, meta_options},
                    {kAuxFamily, aux_options}};
  CONVERGE_RETURN_IF_ERROR(impl->OpenDb());
  CONVERGE_RETURN_IF_ERROR(impl->Recover().WithContext("recover " + path));
  return std::unique_ptr<RocksStore>(new RocksStore(std::move(impl)));
}

Identity RocksStore::identity() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->identity;
}

Status RocksStore::Write(const WriteBatch& batch) {
  if (impl_->options.validate_writes && !batch.trusted()) {
    for (const WriteBatch::Op& op : batch.ops()) {
      CONVERGE_RETURN_IF_ERROR(
          impl_->options.registry->Validate(op.delta).WithContext("delta for key " + op.key));
    }
  }
  return impl_->Use([&]() -> Status {
    rocksdb::WriteBatch rocks_batch;
    for (const WriteBatch::Op& op : batch.ops()) {
      const rocksdb::Status s = op.replace ? rocks_batch.Put(impl_->data, op.key, op.delta)
                                           : rocks_batch.Merge(impl_->data, op.key, op.delta);
      if (!s.ok()) return FromRocks(s, "batch");
    }
    for (const WriteBatch::AuxOp& op : batch.aux()) {
      const rocksdb::Status s = op.value ? rocks_batch.Put(impl_->aux, op.key, *op.value)
                                         : rocks_batch.Delete(impl_->aux, op.key);
      if (!s.ok()) return FromRocks(s, "batch");
    }
    rocksdb::WriteOptions write;
    write.sync = impl_->options.durability == Durability::kSync;
    return impl_->NoteWrite(impl_->db->Write(write, &rocks_batch), "write");
  });
}

namespace {

StatusOr<std::optional<std::string>> GetFrom(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                                             std::string_view key, std::string_view what) {
  std::string value;
  const rocksdb::Status s =
      db.Get(rocksdb::ReadOptions(), family, rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, what);
  return std::optional<std::string>(std::move(value));
}

}  // namespace

StatusOr<std::optional<std::string>> RocksStore::Get(std::string_view key) {
  return impl_->Use([&] { return GetFrom(*impl_->db, impl_->data, key, "get"); });
}

StatusOr<std::optional<std::string>> RocksStore::GetAux(std::string_view key) {
  return impl_->Use([&] { return GetFrom(*impl_->db, impl_->aux, key, "get aux"); });
}

// Reads the range in chunks and calls fn with no lock held, so that fn may
// call back into the store (or wait on a writer) and a recovery can run
// between chunks. Each key's state is current when its chunk is read; the
// scan as a whole is not one snapshot.
Status RocksStore::ScanFamily(bool aux, std::string_view begin, std::string_view end,
                              const ScanFn& fn) {
  constexpr std::size_t kChunkKeys = 256;
  constexpr std::size_t kChunkBytes = std::size_t{1} << 20;
  std::string from(begin);
  bool skip_from = false;  // `from` was the last key of the previous chunk
  std::vector<std::pair<std::string, std::string>> chunk;
  for (;;) {
    chunk.clear();
    bool more = false;
    CONVERGE_RETURN_IF_ERROR(impl_->Use([&]() -> Status {
      rocksdb::ReadOptions read;
      read.fill_cache = false;  // a scan should not evict the hot set
      std::unique_ptr<rocksdb::Iterator> it(
          impl_->db->NewIterator(read, aux ? impl_->aux : impl_->data));
      std::size_t bytes = 0;
      for (it->Seek(rocksdb::Slice(from.data(), from.size())); it->Valid(); it->Next()) {
        const rocksdb::Slice k = it->key();
        const std::string_view key(k.data(), k.size());
        if (skip_from && key == from) continue;
        if (!end.empty() && key >= end) break;
        if (chunk.size() == kChunkKeys || bytes >= kChunkBytes) {
          more = true;
          break;
        }
        const rocksdb::Slice v = it->value();
        bytes += k.size() + v.size();
        chunk.emplace_back(std::string(key), std::string(v.data(), v.size()));
      }
      return FromRocks(it->status(), "scan");
    }));
    for (const auto& [key, value] : chunk) {
      if (!fn(key, value)) return Status::Ok();
    }
    if (!more) return Status::Ok();
    from = chunk.back().first;
    skip_from = true;
  }
}

Status RocksStore::Scan(std::string_view begin, std::string_view end, const ScanFn& fn) {
  return ScanFamily(/*aux=*/false, begin, end, fn);
}

Status RocksStore::ScanAux(std::string_view begin, std::string_view end, const ScanFn& fn) {
  return ScanFamily(/*aux=*/true, begin, end, fn);
}

Status RocksStore::EnsureDotLease(std::uint64_t counter) {
  return impl_->Use([&]() -> Status {
    const std::lock_guard lock(impl_->mu);
    if (counter <= impl_->dot_lease_end) return Status::Ok();
    const std::uint64_t next = counter + impl_->options.dot_lease_block;
    CONVERGE_RETURN_IF_ERROR(
        impl_->PutMeta({{kDotLeaseKey, EncodeU64(next)}}).WithContext("dot lease"));
    impl_->dot_lease_end = next;
    return Status::Ok();
  });
}

std::uint64_t RocksStore::dot_lease_end() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->dot_lease_end;
}

Status RocksStore::EnsureHlcLease(crdt::HlcTimestamp timestamp) {
  return impl_->Use([&]() -> Status {
    const std::lock_guard lock(impl_->mu);
    if (timestamp <= impl_->hlc_high_water) return Status::Ok();
    const crdt::HlcTimestamp next{timestamp.physical_ms + impl_->options.hlc_lease_ms, 0};
    CONVERGE_RETURN_IF_ERROR(impl_->PutMeta({{kHlcKey, EncodeHlc(next)}}).WithContext("hlc lease"));
    impl_->hlc_high_water = next;
    return Status::Ok();
  });
}

crdt::HlcTimestamp RocksStore::hlc_high_water() const {
  const std::lock_guard lock(impl_->mu);
  return impl_->hlc_high_water;
}

Status RocksStore::Retire() {
  return impl_->Use([&]() -> Status {
    const std::lock_guard lock(impl_->mu);
    Identity next = impl_->identity;
    next.replica = crdt::ReplicaId{RandomReplicaId()};
    next.incarnation += 1;
    CONVERGE_RETURN_IF_ERROR(impl_
                                 ->PutMeta({{kReplicaKey, EncodeU64(next.replica.value())},
                                            {kIncarnationKey, EncodeU64(next.incarnation)},
                                            {kDotLeaseKey, EncodeU64(0)}})
                                 .WithContext("retire"));
    impl_->identity = next;
    impl_->dot_lease_end = 0;
    return Status::Ok();
  });
}

StatusOr<std::optional<std::string>> RocksStore::ReadRaw(std::string_view key) { return Get(key); }

Status RocksStore::OverwriteRaw(std::string_view key, std::string_view bytes) {
  return impl_->Use([&] {
    rocksdb::WriteOptions write;
    write.sync = true;
    return impl_->NoteWrite(
        impl_->db->Put(write, impl_->data, rocksdb::Slice(key.data(), key.size()),
                       rocksdb::Slice(bytes.data(), bytes.size())),
        "overwrite");
  });
}

Status RocksStore::Close() {
  const std::unique_lock lock(impl_->db_mu);
  if (impl_->closed) return {StatusCode::kFailedPrecondition, "store is closed"};
  // Whatever happens below, the store is closed afterwards.
  impl_->closed = true;
  Status status;
  if (impl_->needs_recovery) {
    // A clean shutdown needs a working database: recover first.
    status = impl_->ReopenLocked().WithContext("recover before close");
  }
  if (status.ok() && impl_->db) {
    status = FromRocks(impl_->db->FlushWAL(/*sync=*/true), "flush WAL");
    if (status.ok()) {
      const std::lock_guard meta_lock(impl_->mu);
      status = impl_->PutMeta({{kCleanKey, "1"}}).WithContext("mark clean shutdown");
    }
  } else if (status.ok()) {
    status = {StatusCode::kUnavailable, "store was not open after a disk error"};
  }
  const rocksdb::Status s = impl_->CloseDb();
  if (status.ok()) status = FromRocks(s, "close");
  return status;
}

std::uint64_t RocksStore::disk_error_recoveries() const { return impl_->recoveries; }

std::uint64_t RocksStore::ApproximateDiskBytes() const {
  const std::shared_lock lock(impl_->db_mu);
  std::uint64_t sst = 0;
  if (!impl_->db) return 0;
  impl_->db->GetIntProperty(impl_->data, rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
  return sst;
}

Status RocksStore::CompactAll() {
  return impl_->Use([&] {
    return impl_->NoteWrite(
        impl_->db->CompactRange(rocksdb::CompactRangeOptions(), impl_->data, nullptr, nullptr),
        "compact");
  });
}

}  // namespace converge::storage
