// Benchmarks of cart contexts (docs/cart-api.md, "Cart contexts"): how long
// the context a GET answers is over a realistic run, and what a delete that
// sends one costs.
//
// bench/run builds and runs this binary and bench/report.py reads its
// counters by name (the "cart" suite in FIGURES).
//
// CartContext/realistic (Iterations(1)): 3 replicas take the writes of 2,000
// shopping sessions, one cart each. A session adds 1-12 distinct items
// (sizes from a geometric-like draw), adds some of them again, sets a few
// quantities, deletes a few lines with the context of the read before it, and
// reads the cart after every write at a random replica; deltas reach the
// other replicas at once or one write later. Every read's sealed context is
// measured: the contexts part (codec::EncodeContexts, bytes) and the whole
// token (base64 characters, as the Cart-Context header carries it). Counters:
// context_bytes_p50/p99/max, token_chars_p50/p99/max, lines_max, reads.
//
// CartDelete/{with_context,without_context,open_only}: a delete of one line
// of a 10-line cart written at 3 replicas — opening the token (HMAC-SHA256
// and decode) and Remove(sku, seen), against Remove(sku) alone. Each
// iteration starts from a copy of the cart, made outside the measured time.
// Counter: ns_per_op.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "crdt/codec/registry.h"
#include "examples/cart/server/cart_context.h"
#include "storage/memory_store.h"

namespace converge::bench {
namespace {

using cart::CartState;
using crdt::CausalCounter;
using crdt::ReplicaId;

// Replica ids as the store mints them: random 64-bit values.
const ReplicaId kReplicas[] = {ReplicaId{0x8f3a'61c2'0d9e'4b17}, ReplicaId{0x2c77'd018'9a4e'f3b5},
                               ReplicaId{0xd4e1'0b6f'73a2'58c9}};

cart::ContextKeyring& Keyring() {
  static auto store = std::make_unique<storage::MemoryStore>(
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins()),
      ReplicaId{1});
  static cart::ContextKeyring ring = *cart::ContextKeyring::Open(*store);
  return ring;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

void RealisticContexts(benchmark::State& state) {
  const int sessions = static_cast<int>(state.range(0));
  std::vector<double> context_bytes, token_chars;
  std::size_t lines_max = 0;
  for (auto _ : state) {
    std::mt19937_64 rng(20261207);
    for (int s = 0; s < sessions; ++s) {
      CartState replicas[3];
      CartState pending;  // the last delta, delivered one write late
      std::size_t pending_to = 3;
      std::string token;
      const auto read = [&](std::size_t at) {
        const std::optional<std::string> sealed =
            cart::SealContext(Keyring().own(), "session", replicas[at]);
        if (!sealed) return;
        token = *sealed;
        token_chars.push_back(static_cast<double>(token.size()));
        std::vector<codec::KeyedContext> lines;
        for (const auto& entry : replicas[at].store().entries()) {
          lines.push_back({cart::LineKey(entry.key), replicas[at].DotsOf(entry.key)});
        }
        context_bytes.push_back(static_cast<double>(codec::EncodeContexts(lines).size()));
        lines_max = std::max(lines_max, replicas[at].size());
      };
      const auto write = [&](std::size_t at, const auto& mutate) {
        if (pending_to < 3) replicas[pending_to].Join(pending);
        const CartState delta = mutate(replicas[at], kReplicas[at]);
        const std::size_t late = rng() % 3;
        for (std::size_t r = 0; r < 3; ++r) {
          if (r != at && r != late) replicas[r].Join(delta);
        }
        pending = delta;
        pending_to = late == at ? 3 : late;
        read(rng() % 3);
      };
      int items = 1;
      while (items < 12 && rng() % 100 < 70) ++items;
      std::vector<std::string> skus;
      for (int i = 0; i < items; ++i) skus.push_back("sku-" + std::to_string(rng() % 100'000));
      for (const std::string& sku : skus) {
        write(rng() % 3, [&](CartState& c, ReplicaId self) {
          return c.Update(sku, [&](CausalCounter& q) { return q.Increment(self, 1 + rng() % 3); });
        });
      }
      for (int k = 0; k < items; ++k) {
        const std::string& sku = skus[rng() % skus.size()];
        const std::uint64_t roll = rng() % 100;
        const cart::SeenCart seen = *cart::OpenContext(Keyring(), "session", token);
        if (roll < 50) {
          write(rng() % 3, [&](CartState& c, ReplicaId self) {
            return c.Update(sku, [&](CausalCounter& q) { return q.Increment(self, 1); });
          });
        } else if (roll < 70) {
          write(rng() % 3, [&](CartState& c, ReplicaId self) {
            return c.Update(sku, [&](CausalCounter& q) { return q.Set(self, 2, seen.Line(sku)); });
          });
        } else {
          write(rng() % 3, [&](CartState& c, ReplicaId) { return c.Remove(sku, seen.Line(sku)); });
        }
      }
    }
  }
  state.counters["context_bytes_p50"] = Percentile(context_bytes, 0.5);
  state.counters["context_bytes_p99"] = Percentile(context_bytes, 0.99);
  state.counters["context_bytes_max"] = Percentile(context_bytes, 1.0);
  state.counters["token_chars_p50"] = Percentile(token_chars, 0.5);
  state.counters["token_chars_p99"] = Percentile(token_chars, 0.99);
  state.counters["token_chars_max"] = Percentile(token_chars, 1.0);
  state.counters["lines_max"] = static_cast<double>(lines_max);
  state.counters["reads"] = static_cast<double>(token_chars.size());
}

// A 10-line cart written at 3 replicas, and its sealed context.
struct TenLines {
  CartState cart;
  std::string token;
  TenLines() {
    for (int i = 0; i < 10; ++i) {
      for (int k = 0; k <= i % 3; ++k) {
        (void)cart.Update("sku-" + std::to_string(i),
                          [&](CausalCounter& q) { return q.Increment(kReplicas[(i + k) % 3], 1); });
      }
    }
    token = *cart::SealContext(Keyring().own(), "bench", cart);
  }
};

enum class Delete { kWithContext, kWithoutContext, kOpenOnly };

void CartDelete(benchmark::State& state, Delete how) {
  static const TenLines base;
  double wall = 0;
  std::int64_t ops = 0;
  for (auto _ : state) {
    CartState cart = base.cart;  // outside the measured time
    const auto start = std::chrono::steady_clock::now();
    if (how == Delete::kWithoutContext) {
      benchmark::DoNotOptimize(cart.Remove("sku-4"));
    } else {
      StatusOr<cart::SeenCart> seen = cart::OpenContext(Keyring(), "bench", base.token);
      if (how == Delete::kWithContext)
        benchmark::DoNotOptimize(cart.Remove("sku-4", seen->Line("sku-4")));
      benchmark::DoNotOptimize(seen);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(seconds);
    wall += seconds;
    ++ops;
  }
  if (ops > 0) state.counters["ns_per_op"] = wall * 1e9 / static_cast<double>(ops);
  state.counters["token_chars"] = static_cast<double>(base.token.size());
}

void Register() {
  benchmark::RegisterBenchmark("CartContext/realistic", RealisticContexts)
      ->ArgName("sessions")
      ->Arg(2'000)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  const struct {
    const char* name;
    Delete how;
  } kDeletes[] = {{"CartDelete/with_context", Delete::kWithContext},
                  {"CartDelete/without_context", Delete::kWithoutContext},
                  {"CartDelete/open_only", Delete::kOpenOnly}};
  for (const auto& [name, how] : kDeletes) {
    benchmark::RegisterBenchmark(name, [how = how](benchmark::State& s) { CartDelete(s, how); })
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace
}  // namespace converge::bench

int main(int argc, char** argv) {
  return converge::bench::QuickMain(argc, argv, [](bool) { converge::bench::Register(); });
}
