// Benchmarks of crdt/codec/: encoded sizes of states and deltas, and encode
// and decode throughput.
//
// bench/run builds and runs this binary and bench/report.py reads its
// counters by name (the "codec" suite in FIGURES), so renaming a benchmark
// or a counter means updating that table.
//
// Sizes are exact byte counts of Encode's output (Iterations(1)). Times use
// UseManualTime() and cover only Encode or Decode: building the state and
// destroying the result are outside. Throughput counters:
//   ns_per_op      wall-clock nanoseconds per Encode/Decode of the whole state
//   cpu_ns_per_op  the same in thread CPU time
//   mb_per_s       encoded bytes (10^6) per wall-clock second
//   elements_per_s elements per wall-clock second
//
// The replica id is a random-looking 64-bit value, as the storage layer
// mints them: small ids would pack into fewer bytes and flatter the sizes.
//
// Flags (besides the usual --benchmark_* ones):
//   --quick   accepted for bench/run; this suite is short either way.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "crdt/causal_counter.h"
#include "crdt/codec/codec.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "crdt/replica_id.h"

namespace converge::bench {
namespace {

using crdt::CausalCounter;
using crdt::ReplicaId;
using Set = crdt::OrSet<std::string>;
using Cart = crdt::OrMap<std::string, CausalCounter>;

constexpr ReplicaId kReplica{0x9e3779b97f4a7c15ULL};
constexpr ReplicaId kOther{0xd1b54a32d192ed03ULL};

// "item-0", "item-1", ...: the element names of bench/crdt_benchmark.cc.
std::vector<std::string> Items(std::size_t n) {
  std::vector<std::string> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) items.push_back("item-" + std::to_string(i));
  return items;
}

double AverageLength(const std::vector<std::string>& items) {
  std::size_t total = 0;
  for (const auto& s : items) total += s.size();
  return static_cast<double>(total) / static_cast<double>(items.size());
}

Set BuildSet(const std::vector<std::string>& items) {
  Set set;
  set.reserve(items.size() + 1);
  for (const auto& item : items) set.Add(kReplica, item);
  return set;
}

Cart BuildCart(const std::vector<std::string>& skus) {
  Cart cart;
  cart.reserve(skus.size());
  for (const auto& sku : skus) {
    cart.Update(sku, [](CausalCounter& q) { return q.Increment(kReplica, 1); });
  }
  return cart;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::size_t Size(const benchmark::State& state) { return static_cast<std::size_t>(state.range(0)); }

// ---------------------------------------------------------------------------
// Sizes.

// The delta of one Add into a set of n elements, and of a remove and a
// re-add by another replica.
void OrSetDeltaBytes(benchmark::State& state) {
  const std::vector<std::string> items = Items(Size(state) + 1);
  Set set = BuildSet({items.begin(), items.end() - 1});
  std::size_t add = 0;
  std::size_t remove = 0;
  std::size_t readd = 0;
  for (auto _ : state) {
    Set copy = set;
    add = codec::Encode(copy.Add(kReplica, items.back())).size();
    remove = codec::Encode(copy.Remove(items[1])).size();
    readd = codec::Encode(copy.Add(kOther, items[2])).size();
  }
  state.counters["encoded_bytes"] = static_cast<double>(add);
  state.counters["remove_encoded_bytes"] = static_cast<double>(remove);
  state.counters["readd_encoded_bytes"] = static_cast<double>(readd);
}

void OrSetStateBytes(benchmark::State& state) {
  const std::vector<std::string> items = Items(Size(state));
  const Set set = BuildSet(items);
  std::size_t bytes = 0;
  for (auto _ : state) bytes = codec::Encode(set).size();
  const double n = static_cast<double>(items.size());
  const double payload = AverageLength(items);
  state.counters["encoded_bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_element"] = static_cast<double>(bytes) / n;
  state.counters["payload_bytes_per_element"] = payload;
  state.counters["overhead_bytes_per_element"] = static_cast<double>(bytes) / n - payload;
}

void CartStateBytes(benchmark::State& state) {
  const std::vector<std::string> skus = Items(Size(state));
  const Cart cart = BuildCart(skus);
  std::size_t bytes = 0;
  for (auto _ : state) bytes = codec::Encode(cart).size();
  const double n = static_cast<double>(skus.size());
  state.counters["encoded_bytes"] = static_cast<double>(bytes);
  state.counters["bytes_per_key"] = static_cast<double>(bytes) / n;
  state.counters["overhead_bytes_per_key"] = static_cast<double>(bytes) / n - AverageLength(skus);
}

// ---------------------------------------------------------------------------
// Throughput.

enum class Op { kEncode, kDecode, kDecodeTrusted };

template <class T>
void Throughput(benchmark::State& state, const T& value, std::size_t elements, Op op) {
  const std::string bytes = codec::Encode(value);
  codec::DecodeOptions options;
  options.trusted = op == Op::kDecodeTrusted;
  double wall = 0;
  double cpu = 0;
  std::int64_t ops = 0;
  for (auto _ : state) {
    const double cpu_start = ThreadCpuSeconds();
    const auto start = std::chrono::steady_clock::now();
    if (op == Op::kEncode) {
      std::string out = codec::Encode(value);
      benchmark::DoNotOptimize(out.data());
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cpu += ThreadCpuSeconds() - cpu_start;
      state.SetIterationTime(seconds);
      wall += seconds;
    } else {
      StatusOr<T> decoded = codec::Decode<T>(bytes, options);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cpu += ThreadCpuSeconds() - cpu_start;
      state.SetIterationTime(seconds);
      wall += seconds;
      if (!decoded.ok()) {
        state.SkipWithError(decoded.status().ToString().c_str());
        return;
      }
      benchmark::DoNotOptimize(decoded);
    }  // the output is destroyed here, after the clock stopped
    ++ops;
  }
  if (ops == 0 || wall <= 0) return;
  const auto n = static_cast<double>(ops);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes.size()) * ops);
  state.counters["ns_per_op"] = wall * 1e9 / n;
  state.counters["cpu_ns_per_op"] = cpu * 1e9 / n;
  state.counters["mb_per_s"] = static_cast<double>(bytes.size()) * n / wall / 1e6;
  state.counters["elements_per_s"] = static_cast<double>(elements) * n / wall;
  state.counters["encoded_bytes"] = static_cast<double>(bytes.size());
}

void OrSetThroughput(benchmark::State& state, Op op) {
  const std::vector<std::string> items = Items(Size(state));
  const Set set = BuildSet(items);
  Throughput(state, set, items.size(), op);
}

void CartThroughput(benchmark::State& state, Op op) {
  const std::vector<std::string> skus = Items(Size(state));
  const Cart cart = BuildCart(skus);
  Throughput(state, cart, skus.size(), op);
}

void Register() {
  using benchmark::kMillisecond;
  benchmark::RegisterBenchmark("CodecOrSet/add_delta", OrSetDeltaBytes)
      ->ArgName("size")
      ->Arg(100'000)
      ->Iterations(1);
  benchmark::RegisterBenchmark("CodecOrSet/state", OrSetStateBytes)
      ->ArgName("size")
      ->Arg(100'000)
      ->Iterations(1);
  benchmark::RegisterBenchmark("CodecCart/state", CartStateBytes)
      ->ArgName("keys")
      ->Arg(100'000)
      ->Iterations(1);
  const struct {
    const char* name;
    Op op;
  } kOps[] = {
      {"encode", Op::kEncode}, {"decode", Op::kDecode}, {"decode_trusted", Op::kDecodeTrusted}};
  for (const auto& [name, op] : kOps) {
    benchmark::RegisterBenchmark((std::string("CodecOrSet/") + name).c_str(),
                                 [op = op](benchmark::State& s) { OrSetThroughput(s, op); })
        ->ArgName("size")
        ->Arg(100'000)
        ->UseManualTime()
        ->Unit(kMillisecond);
    benchmark::RegisterBenchmark((std::string("CodecCart/") + name).c_str(),
                                 [op = op](benchmark::State& s) { CartThroughput(s, op); })
        ->ArgName("keys")
        ->Arg(100'000)
        ->UseManualTime()
        ->Unit(kMillisecond);
  }
}

}  // namespace
}  // namespace converge::bench

int main(int argc, char** argv) {
  return converge::bench::QuickMain(argc, argv, [](bool) { converge::bench::Register(); });
}
