// Benchmarks of storage/: persisted cart updates in a RocksStore, against raw
// RocksDB (Debian's db_bench, run by bench/rocksdb_reference.py in the same
// bench/run), and a RocksStore loaded with 10,000,000 keys.
//
// bench/run builds and runs this binary and bench/report.py turns its JSON
// output into docs/benchmarks.md; the report reads the counters set here by
// name (benchmark run name + counter name, see FIGURES in bench/report.py).
//
// The workload: shopping carts, OrMap<std::string, CausalCounter>, one per
// key "cart:" + a 12-digit id. An operation increments the quantity of one
// SKU ("sku-" + 6 digits, out of a catalogue of 10,000) in one cart.
//
//   Storage/update/...      storage::Update<Cart> (typed.h): reads the key's
//                           state, runs the increment under the store's
//                           replica, encodes the delta and writes it (a merge).
//   Storage/blind_write/... the same deltas, encoded beforehand (untimed) by
//                           the same Updates on a MemoryStore under the
//                           RocksStore's ReplicaId, one per Store::Write: the
//                           write path without the read, the mutator and the
//                           encoding.
//
// Run names: Storage/<update|blind_write>/<buffered|sync>/writers:W/validate:V,
// where V is RocksStoreOptions::validate_writes (1, the default: Write decodes
// every delta before writing it; 0: it does not).
//
// As in db_bench's fillrandom, each run starts from an empty store, writes
// `ops` operations (one key per write), and picks each operation's cart
// uniformly at random among `ops` carts (so some carts are written more than
// once). With W writers, each writer has its own carts (ids = writer mod W)
// and does `ops` operations, like db_bench --threads=W. A run is one
// iteration; the benchmark times it with a steady clock from the moment all
// writers start to the moment the last one finishes (UseManualTime). Opening
// the store, generating keys and deltas, closing the store and deleting the
// directory are outside that region.
//
// Counters:
//   ops_per_s, ns_per_op   operations per wall-clock second, and the inverse
//   cpu_ns_per_op          (one writer, buffered only) CPU time of the writing
//                          thread per operation; with sync durability the
//                          writer mostly waits for fdatasync, so it is not
//                          set there (it would read as a busy CPU)
//   process_cpu_ns_per_op  CPU time of the whole process per operation,
//                          RocksDB's background threads included
//   key_bytes, delta_bytes key size, and mean encoded delta size of this
//                          workload (measured on the first 20,000 operations
//                          replayed on a MemoryStore, untimed)
//
// Storage/scale/keys:N loads N carts (one increment each) into a buffered
// RocksStore in a child process (this binary re-executed with
// --scale_child), so that its peak RSS (getrusage ru_maxrss) is that of the
// load alone; see ScaleChild.
//
// Flags (besides the usual --benchmark_* ones):
//   --quick             fewer operations, and 1,000,000 keys instead of
//                       10,000,000 for the scale run
//   --data_dir=DIR      where the stores are created (default
//                       ./storage-bench-data); each run uses a fresh
//                       subdirectory and deletes it afterwards
//   --print_workload    print, as one JSON object, the size of a cart key
//                       (key_bytes) and of the encoded delta of one increment
//                       in a fresh cart (value_bytes), and the operation
//                       counts of this mode, and exit: bench/rocksdb_reference.py
//                       runs db_bench with these sizes and counts
//   --ops_buffered=N, --ops_sync=N
//                       operations per writer (defaults: quick 200,000 and
//                       2,000; full 500,000 and 5,000)
//   --scale_keys=N      keys of the scale run (default: quick 1,000,000, full
//                       10,000,000)

#include <benchmark/benchmark.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <latch>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_common.h"
#include "crdt/causal_counter.h"
#include "crdt/codec/codec.h"
#include "crdt/codec/registry.h"
#include "crdt/or_map.h"
#include "crdt/replica_id.h"
#include "storage/memory_store.h"
#include "storage/rocks_store.h"
#include "storage/store.h"
#include "storage/typed.h"

extern char** environ;

namespace converge::bench {
namespace {

using crdt::CausalCounter;
using crdt::ReplicaId;
using Cart = crdt::OrMap<std::string, CausalCounter>;
using storage::Durability;

constexpr std::uint64_t kCatalogue = 10'000;  // SKUs

struct Config {
  bool quick = false;
  std::string data_dir = "storage-bench-data";
  std::int64_t ops_buffered = 0;
  std::int64_t ops_sync = 0;
  std::int64_t scale_keys = 0;
  std::string self_exe;
};

Config& GetConfig() {
  static Config config;
  return config;
}

std::shared_ptr<const codec::TypeRegistry> Registry() {
  static const auto registry =
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  return registry;
}

// A bijection of [0, 10^12): spreads consecutive indexes over the 12-digit id
// space (so keys are not written in byte order). The factor is odd and not a
// multiple of 5, hence invertible modulo 10^12.
std::uint64_t CartId(std::uint64_t index) {
  constexpr std::uint64_t kModulus = 1'000'000'000'000ULL;
  constexpr std::uint64_t kFactorHigh = 777'767;  // factor 777,767,777,773 split at 10^6
  constexpr std::uint64_t kFactorLow = 777'773;
  // index * factor mod 10^12 without overflow for index < 2 * 10^13.
  const std::uint64_t high = (index * kFactorHigh) % kModulus * 1'000'000 % kModulus;
  return (high + index * kFactorLow + 123'456'789) % kModulus;
}

std::string CartKey(std::uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "cart:%012llu", static_cast<unsigned long long>(CartId(index)));
  return buf;
}

const std::vector<std::string>& Skus() {
  static const std::vector<std::string> skus = [] {
    std::vector<std::string> out;
    out.reserve(kCatalogue);
    char buf[16];
    for (std::uint64_t i = 0; i < kCatalogue; ++i) {
      std::snprintf(buf, sizeof buf, "sku-%06llu", static_cast<unsigned long long>(i));
      out.emplace_back(buf);
    }
    return out;
  }();
  return skus;
}

// The SKU of key `index` in the scale run: a fixed function of the index, so
// that a sample can be checked after the load.
std::uint64_t ScaleSku(std::uint64_t index) {
  std::uint64_t z = index + 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) % kCatalogue;
}

Cart IncrementDelta(Cart& cart, const std::string& sku, ReplicaId replica) {
  return cart.Update(sku, [&](CausalCounter& q) { return q.Increment(replica, 1); });
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double TimevalSeconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// A fresh directory for one run, deleted when the run ends.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    static std::atomic<int> serial{0};
    path_ = std::filesystem::absolute(GetConfig().data_dir) /
            (name + "-" + std::to_string(::getpid()) + "-" + std::to_string(serial++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

StatusOr<std::unique_ptr<storage::RocksStore>> OpenStore(const std::string& path,
                                                         Durability durability, bool validate) {
  storage::RocksStoreOptions options;
  options.durability = durability;
  options.registry = Registry();
  options.validate_writes = validate;
  return storage::RocksStore::Open(path, std::move(options));
}

// One operation of a run: which cart, which SKU.
struct Op {
  std::string key;
  std::uint32_t sku;
};

// The operations of writer `w` of `writers`: `ops` operations on random carts
// among ops * writers (those with index = w mod writers), like db_bench's
// fillrandom (key = random % num).
std::vector<Op> MakeOps(std::int64_t ops, int w, int writers, std::uint64_t seed) {
  std::mt19937_64 rng(seed * 1'000 + static_cast<std::uint64_t>(w));
  std::uniform_int_distribution<std::uint64_t> cart(0, static_cast<std::uint64_t>(ops) - 1);
  std::uniform_int_distribution<std::uint32_t> sku(0, kCatalogue - 1);
  std::vector<Op> out;
  out.reserve(static_cast<std::size_t>(ops));
  for (std::int64_t i = 0; i < ops; ++i) {
    const std::uint64_t index =
        cart(rng) * static_cast<std::uint64_t>(writers) + static_cast<std::uint64_t>(w);
    out.push_back(Op{CartKey(index), sku(rng)});
  }
  return out;
}

// Mean encoded size of the deltas Update writes for the first operations of
// `ops`, replayed on a MemoryStore (untimed, outside the measured run).
double MeanDeltaBytes(const std::vector<Op>& ops) {
  storage::MemoryStore store(Registry(), ReplicaId{0x1234'5678'9abc'def0ULL});
  const std::size_t n = std::min<std::size_t>(ops.size(), 20'000);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& sku = Skus()[ops[i].sku];
    StatusOr<Cart> delta = storage::Update<Cart>(
        store, ops[i].key, [&](Cart& c, ReplicaId r) { return IncrementDelta(c, sku, r); });
    if (!delta.ok()) return 0;
    bytes += codec::Encode(*delta).size();
  }
  return n == 0 ? 0 : static_cast<double>(bytes) / static_cast<double>(n);
}

enum class Path { kUpdate, kBlindWrite };

// One run: `writers` threads, each doing `ops` operations on its own carts.
void StoreRun(benchmark::State& state, Path path, Durability durability, int writers,
              bool validate) {
  const Config& config = GetConfig();
  const std::int64_t ops = durability == Durability::kSync ? config.ops_sync : config.ops_buffered;
  std::uint64_t repetition = 0;
  for (auto _ : state) {
    ++repetition;
    std::vector<std::vector<Op>> work;
    for (int w = 0; w < writers; ++w) work.push_back(MakeOps(ops, w, writers, repetition));
    ScratchDir dir("run");
    auto opened = OpenStore(dir.path(), durability, validate);
    if (!opened.ok()) {
      state.SkipWithError(("open: " + opened.status().ToString()).c_str());
      return;
    }
    storage::RocksStore& store = **opened;
    const ReplicaId self = store.identity().replica;

    // Blind writes: exactly the deltas the Updates would write, encoded
    // beforehand by running the same operations through Update on a
    // MemoryStore under this store's ReplicaId (a cart written twice gets
    // its next dot, as it would in the RocksStore).
    std::vector<std::vector<std::string>> deltas(static_cast<std::size_t>(writers));
    if (path == Path::kBlindWrite) {
      if (!store.EnsureDotLease(static_cast<std::uint64_t>(ops) + 1).ok()) {
        state.SkipWithError("dot lease");
        return;
      }
      for (int w = 0; w < writers; ++w) {
        storage::MemoryStore replay(Registry(), self);
        for (const Op& op : work[static_cast<std::size_t>(w)]) {
          const std::string& sku = Skus()[op.sku];
          StatusOr<Cart> delta = storage::Update<Cart>(
              replay, op.key, [&](Cart& c, ReplicaId r) { return IncrementDelta(c, sku, r); });
          if (!delta.ok()) {
            state.SkipWithError(("preparing deltas: " + delta.status().ToString()).c_str());
            return;
          }
          deltas[static_cast<std::size_t>(w)].push_back(codec::Encode(*delta));
        }
      }
    }

    std::latch start(writers + 1);
    std::vector<std::string> errors(static_cast<std::size_t>(writers));
    std::vector<double> thread_cpu(static_cast<std::size_t>(writers), 0.0);
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w] {
        const auto wi = static_cast<std::size_t>(w);
        const std::vector<Op>& mine = work[wi];
        start.arrive_and_wait();
        const double cpu0 = ThreadCpuSeconds();
        for (std::size_t i = 0; i < mine.size(); ++i) {
          if (path == Path::kUpdate) {
            const std::string& sku = Skus()[mine[i].sku];
            StatusOr<Cart> delta = storage::Update<Cart>(
                store, mine[i].key,
                [&](Cart& c, ReplicaId r) { return IncrementDelta(c, sku, r); });
            if (!delta.ok()) {
              errors[wi] = delta.status().ToString();
              break;
            }
          } else {
            storage::WriteBatch batch;
            batch.Merge(mine[i].key, std::move(deltas[wi][i]));
            const Status s = store.Write(batch);
            if (!s.ok()) {
              errors[wi] = s.ToString();
              break;
            }
          }
        }
        thread_cpu[wi] = ThreadCpuSeconds() - cpu0;
      });
    }
    const double process_cpu0 = ProcessCpuSeconds();
    start.arrive_and_wait();
    const auto wall0 = std::chrono::steady_clock::now();
    for (std::thread& t : threads) t.join();
    const double wall = Seconds(std::chrono::steady_clock::now() - wall0);
    const double process_cpu = ProcessCpuSeconds() - process_cpu0;
    state.SetIterationTime(wall);

    for (const std::string& e : errors) {
      if (!e.empty()) {
        state.SkipWithError(e.c_str());
        return;
      }
    }
    // Checks that the writes landed: the first operation's cart holds its SKU.
    StatusOr<Cart> first = storage::Read<Cart>(store, work[0][0].key);
    if (!first.ok() || !first->Get(Skus()[work[0][0].sku]).has_value()) {
      state.SkipWithError("a written cart does not read back");
      return;
    }
    if (!store.Close().ok()) {
      state.SkipWithError("close failed");
      return;
    }

    const double total = static_cast<double>(ops) * writers;
    state.SetItemsProcessed(static_cast<std::int64_t>(total));
    state.counters["ops_per_s"] = total / wall;
    state.counters["ns_per_op"] = wall * 1e9 / total;
    if (writers == 1 && durability == Durability::kBuffered) {
      state.counters["cpu_ns_per_op"] = thread_cpu[0] * 1e9 / total;
    }
    state.counters["process_cpu_ns_per_op"] = process_cpu * 1e9 / total;
    state.counters["ops"] = total;
    state.counters["key_bytes"] = static_cast<double>(work[0][0].key.size());
    state.counters["delta_bytes"] = MeanDeltaBytes(work[0]);
  }
}

// ---------------------------------------------------------------------------
// Scale: N keys in one store.

// Runs in the child process: loads `keys` carts into a fresh buffered store
// in `dir` in batches of 1,000 blind writes (validation off: the deltas are
// encoded right here), compacts, checks a sample of keys and writes
// "name value" lines to `out`.
int ScaleChild(std::int64_t keys, const std::string& dir, const std::string& out) {
  constexpr std::int64_t kBatch = 1'000;
  constexpr std::int64_t kSample = 10'000;
  std::ofstream results(out);
  auto fail = [&](const std::string& what, const Status& s) {
    std::cerr << "scale child: " << what << ": " << s.ToString() << "\n";
    results << "error " << what << ": " << s.ToString() << "\n";
    return 1;
  };
  auto opened = OpenStore(dir, Durability::kBuffered, /*validate=*/false);
  if (!opened.ok()) return fail("open", opened.status());
  storage::RocksStore& store = **opened;
  const ReplicaId self = store.identity().replica;
  if (Status s = store.EnsureDotLease(1); !s.ok()) return fail("dot lease", s);
  const std::vector<std::string>& skus = Skus();

  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t first = 0; first < keys; first += kBatch) {
    storage::WriteBatch batch;
    const std::int64_t last = std::min(keys, first + kBatch);
    for (std::int64_t i = first; i < last; ++i) {
      const auto index = static_cast<std::uint64_t>(i);
      Cart cart;
      batch.Merge(CartKey(index), codec::Encode(IncrementDelta(cart, skus[ScaleSku(index)], self)));
    }
    if (Status s = store.Write(batch); !s.ok()) return fail("write", s);
  }
  const double load_s = Seconds(std::chrono::steady_clock::now() - t0);
  rusage after_load{};
  getrusage(RUSAGE_SELF, &after_load);

  const auto t1 = std::chrono::steady_clock::now();
  if (Status s = store.CompactAll(); !s.ok()) return fail("compact", s);
  const double compact_s = Seconds(std::chrono::steady_clock::now() - t1);
  const std::uint64_t disk = store.ApproximateDiskBytes();

  // A random sample reads back as exactly the loaded state; keys beyond the
  // loaded range read as absent.
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::uint64_t> pick(0, static_cast<std::uint64_t>(keys) - 1);
  std::int64_t checked = 0;
  const auto t2 = std::chrono::steady_clock::now();
  for (std::int64_t n = 0; n < kSample; ++n) {
    const std::uint64_t index = pick(rng);
    StatusOr<Cart> got = storage::Read<Cart>(store, CartKey(index));
    if (!got.ok()) return fail("read " + CartKey(index), got.status());
    Cart expected;
    IncrementDelta(expected, skus[ScaleSku(index)], self);
    if (!(*got == expected)) {
      return fail("verify", Corruption("key " + CartKey(index) + " does not read back as loaded"));
    }
    ++checked;
  }
  const double verify_s = Seconds(std::chrono::steady_clock::now() - t2);
  for (std::int64_t n = 0; n < 100; ++n) {
    const auto index = static_cast<std::uint64_t>(keys + n);
    StatusOr<std::optional<std::string>> got = store.Get(CartKey(index));
    if (!got.ok()) return fail("read", got.status());
    if (got->has_value()) return fail("verify", Corruption("a key never loaded is present"));
  }
  rusage end{};
  getrusage(RUSAGE_SELF, &end);
  if (Status s = store.Close(); !s.ok()) return fail("close", s);

  results << "keys " << keys << "\n"
          << "load_s " << load_s << "\n"
          << "compact_s " << compact_s << "\n"
          << "verify_s " << verify_s << "\n"
          << "verified_keys " << checked << "\n"
          << "disk_bytes " << disk << "\n"
          << "rss_after_load_kib " << after_load.ru_maxrss << "\n"
          << "rss_peak_kib " << end.ru_maxrss << "\n"
          << "user_cpu_s " << TimevalSeconds(end.ru_utime) << "\n"
          << "system_cpu_s " << TimevalSeconds(end.ru_stime) << "\n"
          << "ok 1\n";
  return results.good() ? 0 : 1;
}

// Runs ScaleChild in a child process and reports its results.
void Scale(benchmark::State& state) {
  const std::int64_t keys = state.range(0);
  for (auto _ : state) {
    ScratchDir dir("scale");
    const std::string out = dir.path() + ".results";
    std::vector<std::string> args = {GetConfig().self_exe, "--scale_child=" + std::to_string(keys),
                                     "--scale_dir=" + dir.path() + "/db", "--scale_out=" + out};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (posix_spawn(&pid, args[0].c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      state.SkipWithError("cannot start the scale child process");
      return;
    }
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    const double wall = Seconds(std::chrono::steady_clock::now() - t0);
    std::map<std::string, std::string> r;
    {
      std::ifstream in(out);
      std::string name;
      std::string value;
      while (in >> name && std::getline(in >> std::ws, value)) r[name] = value;
    }
    std::filesystem::remove(out);
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0 || r.count("ok") == 0) {
      const std::string why = r.count("error") ? r["error"] : "the scale child process failed";
      state.SkipWithError(why.c_str());
      return;
    }
    auto num = [&](const char* name) { return std::stod(r[name]); };
    const double load_s = num("load_s");
    state.SetIterationTime(load_s);
    const auto n = static_cast<double>(keys);
    state.counters["keys_per_s"] = n / load_s;
    state.counters["load_s"] = load_s;
    state.counters["compact_s"] = num("compact_s");
    state.counters["verify_s"] = num("verify_s");
    state.counters["verified_keys"] = num("verified_keys");
    state.counters["disk_bytes"] = num("disk_bytes");
    state.counters["disk_bytes_per_key"] = num("disk_bytes") / n;
    state.counters["rss_mib"] = num("rss_peak_kib") / 1024.0;
    state.counters["rss_after_load_mib"] = num("rss_after_load_kib") / 1024.0;
    state.counters["process_cpu_s"] = num("user_cpu_s") + num("system_cpu_s");
    state.counters["child_wall_s"] = wall;
  }
}

// ---------------------------------------------------------------------------

void Register(const Config& config) {
  using benchmark::kMillisecond;
  struct Variant {
    const char* name;
    Path path;
    Durability durability;
    int writers;
    bool validate;
  };
  const Variant variants[] = {
      {"Storage/update/buffered/writers:1/validate:1", Path::kUpdate, Durability::kBuffered, 1,
       true},
      {"Storage/update/buffered/writers:1/validate:0", Path::kUpdate, Durability::kBuffered, 1,
       false},
      {"Storage/blind_write/buffered/writers:1/validate:1", Path::kBlindWrite,
       Durability::kBuffered, 1, true},
      {"Storage/blind_write/buffered/writers:1/validate:0", Path::kBlindWrite,
       Durability::kBuffered, 1, false},
      {"Storage/update/sync/writers:1/validate:1", Path::kUpdate, Durability::kSync, 1, true},
      {"Storage/update/sync/writers:4/validate:1", Path::kUpdate, Durability::kSync, 4, true},
      {"Storage/update/sync/writers:4/validate:0", Path::kUpdate, Durability::kSync, 4, false},
      {"Storage/blind_write/sync/writers:4/validate:1", Path::kBlindWrite, Durability::kSync, 4,
       true},
  };
  for (const Variant& v : variants) {
    benchmark::RegisterBenchmark(
        v.name,
        [v](benchmark::State& s) { StoreRun(s, v.path, v.durability, v.writers, v.validate); })
        ->Iterations(1)
        ->UseManualTime()
        ->Unit(kMillisecond);
  }
  // One load per run whatever --benchmark_repetitions says: it takes minutes.
  benchmark::RegisterBenchmark("Storage/scale", Scale)
      ->ArgName("keys")
      ->Arg(config.scale_keys)
      ->Iterations(1)
      ->Repetitions(1)
      ->UseManualTime()
      ->Unit(kMillisecond);
}

void AddContext(const Config& config) {
  AddBuildContext(config.quick);
  benchmark::AddCustomContext("storage_data_dir",
                              std::filesystem::absolute(config.data_dir).string());
  benchmark::AddCustomContext("storage_ops_buffered", std::to_string(config.ops_buffered));
  benchmark::AddCustomContext("storage_ops_sync", std::to_string(config.ops_sync));
  benchmark::AddCustomContext("storage_scale_keys", std::to_string(config.scale_keys));
}

// Key and encoded delta sizes of one increment in a fresh cart.
std::pair<std::size_t, std::size_t> OneIncrementSizes() {
  Cart cart;
  const std::string delta =
      codec::Encode(IncrementDelta(cart, Skus()[4'321], ReplicaId{0x1234'5678'9abc'def0ULL}));
  return {CartKey(0).size(), delta.size()};
}

}  // namespace
}  // namespace converge::bench

int main(int argc, char** argv) {
  using converge::bench::TakeFlag;
  converge::bench::Config& config = converge::bench::GetConfig();
  std::string value;
  std::string scale_dir;
  std::string scale_out;
  if (TakeFlag(argc, argv, "--scale_child", &value) &&
      TakeFlag(argc, argv, "--scale_dir", &scale_dir) &&
      TakeFlag(argc, argv, "--scale_out", &scale_out)) {
    return converge::bench::ScaleChild(std::stoll(value), scale_dir, scale_out);
  }
  const bool print_workload = TakeFlag(argc, argv, "--print_workload");
  config.quick = TakeFlag(argc, argv, "--quick");
  if (TakeFlag(argc, argv, "--data_dir", &value)) config.data_dir = value;
  config.ops_buffered = config.quick ? 200'000 : 500'000;
  config.ops_sync = config.quick ? 2'000 : 5'000;
  config.scale_keys = config.quick ? 1'000'000 : 10'000'000;
  if (TakeFlag(argc, argv, "--ops_buffered", &value)) config.ops_buffered = std::stoll(value);
  if (TakeFlag(argc, argv, "--ops_sync", &value)) config.ops_sync = std::stoll(value);
  if (TakeFlag(argc, argv, "--scale_keys", &value)) config.scale_keys = std::stoll(value);
  if (print_workload) {
    const auto [key, delta] = converge::bench::OneIncrementSizes();
    std::printf(
        "{\"key_bytes\": %zu, \"value_bytes\": %zu, \"ops_buffered\": %lld, \"ops_sync\": %lld, "
        "\"scale_keys\": %lld}\n",
        key, delta, static_cast<long long>(config.ops_buffered),
        static_cast<long long>(config.ops_sync), static_cast<long long>(config.scale_keys));
    return 0;
  }
  std::error_code ec;
  config.self_exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) config.self_exe = argv[0];
  std::filesystem::create_directories(config.data_dir);

  converge::bench::AddContext(config);
  converge::bench::Register(config);
  return converge::bench::RunRegistered(argc, argv);
}
