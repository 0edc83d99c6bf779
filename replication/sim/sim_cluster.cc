// RunSimulation: see sim_cluster.h for the contract and docs/simulation.md
// for the fault model.
//
// The schedule (write times, fault episodes, their targets) is drawn up
// front from the seed, then played on the SimWorld's event queue; the
// network draws its own randomness from the world. The oracle lives apart
// from the nodes: it only reads their stores.

#include "replication/sim/sim_cluster.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <utility>

#include "crdt/crdt.h"
#include "replication/hash_tree.h"
#include "replication/internal/records.h"
#include "replication/sim/sim_world.h"
#include "storage/memory_store.h"

namespace converge::replication::sim {
namespace {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;
using StringSet = crdt::OrSet<std::string>;

constexpr std::uint64_t kWarmupMs = 2'000;
constexpr std::uint64_t kSnapshotEveryMs = 1'000;

template <class T>
T Pick(std::mt19937_64& rng, std::initializer_list<T> items) {
  return *(items.begin() + static_cast<std::ptrdiff_t>(rng() % items.size()));
}

std::uint64_t Uniform(std::mt19937_64& rng, std::uint64_t lo, std::uint64_t hi) {
  return std::uniform_int_distribution<std::uint64_t>(lo, std::max(lo, hi))(rng);
}

std::string KeyName(const char* prefix, std::mt19937_64& rng, int keys) {
  return std::string(prefix) +
         std::to_string(rng() % static_cast<std::uint64_t>(std::max(1, keys)));
}

Write CartWrite(std::mt19937_64& rng, int keys) {
  const std::string key = KeyName("cart:", rng, keys);
  const std::string sku = Pick(rng, {"apple", "pear", "fig", "kiwi", "plum", "lime"});
  const std::uint64_t roll = rng() % 100;
  if (roll < 50) {
    const std::uint64_t n = Uniform(rng, 1, 5);
    return MakeWrite<Cart>(key, [sku, n](Cart& cart, crdt::ReplicaId self) {
      return cart.Update(sku, [&](crdt::CausalCounter& q) { return q.Increment(self, n); });
    });
  }
  if (roll < 65) {
    const std::uint64_t n = Uniform(rng, 0, 5);
    return MakeWrite<Cart>(key, [sku, n](Cart& cart, crdt::ReplicaId self) {
      if (n == 0) return cart.Remove(sku);
      return cart.Update(sku, [&](crdt::CausalCounter& q) { return q.Set(self, n); });
    });
  }
  if (roll < 92) {
    return MakeWrite<Cart>(key, [sku](Cart& cart, crdt::ReplicaId) { return cart.Remove(sku); });
  }
  return MakeWrite<Cart>(key, [](Cart& cart, crdt::ReplicaId) { return cart.Clear(); });
}

// Carts written by clients that read one replica and send their removes,
// sets and empties — with the causal context they read — to another (the
// cart API's Cart-Context). Checked at the end, for acknowledged writes:
// every dot the client saw is dead (a line removed as seen never comes
// back), the write removed nothing it did not see, and an addition is dead
// only if a write that saw it removed it (no unseen addition is lost).
std::optional<Cart> DecodeCart(const std::optional<std::string>& bytes) {
  if (!bytes) return Cart{};
  codec::DecodeOptions o;
  o.trusted = true;
  StatusOr<Cart> cart = codec::Decode<Cart>(*bytes, o);
  if (!cart.ok()) return std::nullopt;
  return std::move(*cart);
}

std::string DotText(const crdt::Dot& d) {
  return "(" + std::to_string(d.replica.value()) + ", " + std::to_string(d.counter) + ")";
}

Write CartContextWrite(std::mt19937_64& rng, int keys) {
  const std::string key = KeyName("cart:", rng, keys);
  const std::string sku = Pick(rng, {"apple", "pear", "fig", "kiwi"});
  const std::uint64_t roll = rng() % 100;
  if (roll < 45) {
    const std::uint64_t n = Uniform(rng, 1, 5);
    Write w = MakeWrite<Cart>(key, [sku, n](Cart& cart, crdt::ReplicaId self) {
      return cart.Update(sku, [&](crdt::CausalCounter& q) { return q.Increment(self, n); });
    });
    auto inner = std::move(w.submit);
    w.submit = [inner](Node& node, WriteConsistency c, std::shared_ptr<Write::Record> r) {
      r->check_history =
          [r = r.get()](
              const std::optional<std::string>& state,
              const std::vector<const Write::Record*>& key_writes) -> std::optional<std::string> {
        const std::optional<Cart> final_cart = DecodeCart(state);
        if (!final_cart) return "the converged cart is unreadable";
        for (const auto& [replica, counter] : r->new_dots) {
          const crdt::Dot dot{crdt::ReplicaId{replica}, counter};
          if (final_cart->store().FindByDot(dot) != nullptr) continue;
          const bool removed =
              std::any_of(key_writes.begin(), key_writes.end(), [&](const Write::Record* other) {
                if (other == r || other->delta.empty()) return false;
                const std::optional<Cart> d = DecodeCart(other->delta);
                return d && d->context().Contains(dot) && d->store().FindByDot(dot) == nullptr;
              });
          if (!removed) return "its addition " + DotText(dot) + " is dead, and no write removed it";
        }
        return std::nullopt;
      };
      inner(node, c, std::move(r));
    };
    return w;
  }
  // What the client saw: its read of the key at another replica.
  struct Seen {
    crdt::CausalContext line;
    crdt::CausalContext all;
  };
  auto seen = std::make_shared<Seen>();
  const std::uint64_t n = Uniform(rng, 0, 5);
  Write w;
  if (roll < 75) {
    w = MakeWrite<Cart>(
        key, [sku, seen](Cart& cart, crdt::ReplicaId) { return cart.Remove(sku, seen->line); });
  } else if (roll < 92) {
    w = MakeWrite<Cart>(key, [sku, n, seen](Cart& cart, crdt::ReplicaId self) {
      if (n == 0) return cart.Remove(sku, seen->line);
      return cart.Update(sku, [&](crdt::CausalCounter& q) { return q.Set(self, n, seen->line); });
    });
  } else {
    w = MakeWrite<Cart>(key, [seen](Cart& cart, crdt::ReplicaId) { return cart.Clear(seen->all); });
  }
  const bool whole = roll >= 92;
  w.read = [key, sku, seen, whole](Node& reader) {
    const StatusOr<Cart> cart = reader.Read<Cart>(key);
    if (!cart.ok()) return;  // a client that could not read sends no context
    seen->line = cart->DotsOf(sku);
    seen->all = cart->LiveDots();
    if (whole) seen->line = seen->all;
  };
  auto inner = std::move(w.submit);
  w.submit = [inner, seen](Node& node, WriteConsistency c, std::shared_ptr<Write::Record> r) {
    r->check = [r = r.get(),
                seen](const std::optional<std::string>& state) -> std::optional<std::string> {
      const std::optional<Cart> final_cart = DecodeCart(state);
      if (!final_cart) return "the converged cart is unreadable";
      std::optional<std::string> why;
      seen->line.ForEachDot([&](const crdt::Dot& d) {
        if (!why && final_cart->store().FindByDot(d) != nullptr) {
          why = "a line removed as the client saw it came back: " + DotText(d) + " is live";
        }
      });
      if (why || r->delta.empty()) return why;
      const std::optional<Cart> delta = DecodeCart(r->delta);
      if (!delta) return "its delta is unreadable";
      delta->context().ForEachDot([&](const crdt::Dot& d) {
        const bool own =
            std::find(r->new_dots.begin(), r->new_dots.end(),
                      std::make_pair(d.replica.value(), d.counter)) != r->new_dots.end();
        if (!why && !own && !seen->line.Contains(d)) {
          why = "it removed " + DotText(d) + ", which the client had not seen";
        }
      });
      return why;
    };
    inner(node, c, std::move(r));
  };
  return w;
}

Write SetWrite(std::mt19937_64& rng, int keys) {
  const std::string key = KeyName("set:", rng, keys);
  const std::string element = "e" + std::to_string(rng() % 20);
  if (rng() % 100 < 65) {
    return MakeWrite<StringSet>(
        key, [element](StringSet& s, crdt::ReplicaId self) { return s.Add(self, element); });
  }
  return MakeWrite<StringSet>(
      key, [element](StringSet& s, crdt::ReplicaId) { return s.Remove(element); });
}

Write CounterWrite(std::mt19937_64& rng, int keys) {
  const std::uint64_t n = Uniform(rng, 1, 10);
  if (rng() % 2 == 0) {
    return MakeWrite<crdt::GCounter>(
        KeyName("gc:", rng, keys),
        [n](crdt::GCounter& c, crdt::ReplicaId self) { return c.Increment(self, n); });
  }
  const bool up = rng() % 3 != 0;
  return MakeWrite<crdt::PnCounter>(KeyName("pn:", rng, keys),
                                    [n, up](crdt::PnCounter& c, crdt::ReplicaId self) {
                                      return up ? c.Increment(self, n) : c.Decrement(self, n);
                                    });
}

using Lww = crdt::LwwRegister<std::string>;

// A last-writer-wins write stamped by the node's hybrid clock. It records
// the write it observed: the converged winner must not be one this write saw
// (it happened after it, so its timestamp is greater and it must win, or be
// beaten by a later write — never by the one it overwrote).
Write LwwWrite(std::mt19937_64& rng, int keys) {
  Write w;
  w.key = KeyName("lww:", rng, keys);
  const std::string value = "v" + std::to_string(rng() % 1'000'000);
  w.submit = [key = w.key, value](Node& node, WriteConsistency consistency,
                                  std::shared_ptr<Write::Record> record) {
    record->key = key;
    node.Update<Lww>(
        key,
        [&node, value, record](Lww& reg, crdt::ReplicaId self) {
          const std::optional<Lww::Write> observed = reg.write();
          Lww delta = reg.Assign(self, node.Now(), value);
          record->delta = codec::Encode(delta);
          const Lww::Write mine = *delta.write();
          record->check =
              [observed,
               mine](const std::optional<std::string>& state) -> std::optional<std::string> {
            if (!state) return "the key is gone";
            codec::DecodeOptions o;
            o.trusted = true;
            const StatusOr<Lww> final_state = codec::Decode<Lww>(*state, o);
            if (!final_state.ok() || !final_state->write())
              return "the converged state is unreadable";
            const Lww::Write& winner = *final_state->write();
            if (observed && winner.timestamp == observed->timestamp &&
                winner.writer == observed->writer) {
              return "the write it overwrote (" + std::to_string(observed->timestamp.physical_ms) +
                     ") won over it (" + std::to_string(mine.timestamp.physical_ms) +
                     "): causality broken";
            }
            return std::nullopt;
          };
          return delta;
        },
        consistency,
        [record](StatusOr<Lww> result) {
          record->done = true;
          record->status = result.status();
          if (record->on_done) record->on_done();
        });
  };
  return w;
}

Write MixedWrite(std::mt19937_64& rng, int keys) {
  const std::uint64_t roll = rng() % 100;
  if (roll < 45) return CartWrite(rng, keys);
  if (roll < 70) return SetWrite(rng, keys);
  if (roll < 85) return LwwWrite(rng, keys);
  return CounterWrite(rng, keys);
}

// The replica ids a state names: in its causal context (causal types) or
// its entries (counters); 0 for other types.
std::size_t ContextReplicas(const std::string& state) {
  const StatusOr<std::uint32_t> id = codec::PeekTypeId(state);
  if (!id.ok()) return 0;
  codec::DecodeOptions options;
  options.trusted = true;
  const auto causal = [&](auto type) -> std::size_t {
    using T = decltype(type);
    const StatusOr<T> decoded = codec::Decode<T>(state, options);
    if (!decoded.ok()) return 0;
    std::set<std::uint64_t> replicas;
    for (const auto& e : decoded->context().vector()) replicas.insert(e.replica.value());
    for (const crdt::Dot& d : decoded->context().cloud()) replicas.insert(d.replica.value());
    return replicas.size();
  };
  const auto counter = [&](const crdt::GCounter& c) {
    std::set<std::uint64_t> replicas;
    for (const auto& e : c.entries()) replicas.insert(e.replica.value());
    return replicas;
  };
  if (*id == codec::TypeIdOf<Cart>()) return causal(Cart{});
  if (*id == codec::TypeIdOf<StringSet>()) return causal(StringSet{});
  if (*id == codec::TypeIdOf<crdt::GCounter>()) {
    const StatusOr<crdt::GCounter> c = codec::Decode<crdt::GCounter>(state, options);
    return c.ok() ? counter(*c).size() : 0;
  }
  if (*id == codec::TypeIdOf<crdt::PnCounter>()) {
    const StatusOr<crdt::PnCounter> c = codec::Decode<crdt::PnCounter>(state, options);
    if (!c.ok()) return 0;
    std::set<std::uint64_t> replicas = counter(c->increments());
    replicas.merge(counter(c->decrements()));
    return replicas.size();
  }
  return 0;
}

// --- the cluster ---------------------------------------------------------------

struct SimNode {
  std::string name;
  std::unique_ptr<storage::MemoryStore> store;
  std::unique_ptr<SimClock> clock;
  std::unique_ptr<SimTransport> transport;
  std::unique_ptr<Node> node;
  int starts = 0;
  int replaced = 0;                  // times the slot's node was replaced
  int down_for = -1;                 // the crash episode that took it down
  std::uint64_t wall_offset_ms = 0;  // its wall clock, as an offset from virtual time
  // When its store was last wiped or rolled back (the same member goes on
  // with another store), and when a node of this slot was replaced (its
  // store destroyed with the member).
  std::uint64_t replaced_ms = 0;
  std::vector<std::uint64_t> members_lost_ms;
  NodeStats past;  // summed stats of earlier processes
  std::vector<std::pair<std::uint64_t, storage::MemoryStore::Snapshot>> snapshots;
  [[nodiscard]] bool up() const { return node != nullptr; }
};

struct WriteRecordEntry {
  std::shared_ptr<Write::Record> record;
  WriteConsistency consistency = WriteConsistency::kLocal;
  int node = 0;
  std::uint64_t at_ms = 0;
  bool excused = false;
};

class Simulation {
 public:
  Simulation(const SimulationOptions& options, Workload workload,
             std::shared_ptr<const codec::TypeRegistry> registry)
      : o_(options),
        workload_(std::move(workload)),
        registry_(std::move(registry)),
        world_(options.seed),
        rng_(options.seed ^ 0x51a7c1057e5ULL) {}

  SimulationReport Run();

 private:
  void StartNode(int i);
  void CrashNode(int i);
  enum class Restart { kIntact, kWiped, kRolledBack };
  void RestartNode(int i, Restart how, int episode);
  // Destroys node i for good and starts a new node under a new name in its
  // place; the old one is forgotten once it is dead.
  void ReplaceNode(int i);
  void ForgetLater(const std::string& name, int attempt);
  void IssueWrite(int preferred);
  void TakeSnapshots();
  void CutLink(const std::string& from, const std::string& to);
  void HealLink(const std::string& from, const std::string& to);
  void SchedulePartition(std::uint64_t start, std::uint64_t end);
  // Marks the writes held by no store but node i's (and not by `kept`).
  void ExcuseLostWrites(int i, const storage::MemoryStore::Snapshot* kept);
  bool Holds(const std::optional<std::string>& state, const std::string& delta) const;
  // The oracle's view through pruning: every renaming, recorded by the
  // first node that renamed at each level (its states before), so that
  // states and deltas of different levels can be compared.
  struct Renaming {
    std::vector<std::uint64_t> retired;
    std::string before;
  };
  void RecordRenaming(const std::string& node, std::uint64_t level,
                      const std::vector<std::uint64_t>& retired, std::string_view key,
                      std::string_view before) const;
  // `bytes` (a delta, or with restore a state) of `key` named as at level
  // `from`, named as at level `to`.
  std::string Translate(const std::string& key, std::string bytes, std::uint64_t from,
                        std::uint64_t to) const;
  static std::uint64_t LevelOf(storage::Store& store);
  static std::uint64_t LevelOf(const storage::MemoryStore::Snapshot& snapshot);
  // Whether a store's state holds a write's delta, at the store's level.
  bool StoreHolds(storage::Store& store, const Write::Record& r) const;
  // A write acknowledged with majority/all: that many stores hold it now.
  void CheckHolders(std::size_t index);
  [[nodiscard]] bool AllEqual() const;
  // Every node sees every other as alive (once the faults are over).
  // What each node sees of the others that is not "alive", as
  // "n1 sees n2 as suspect".
  std::set<std::string> NotAlive() const;
  void CheckMembership(SimulationReport& report);
  void Check(SimulationReport& report);
  NodeStats TotalStats() const;
  // One line of the run's timeline to options.trace, if any.
  void Trace(const std::string& what) const {
    if (o_.trace != nullptr) *o_.trace << "[" << world_.now_ms() << " ms] " << what << '\n';
  }

  NodeOptions OptionsFor(int i) const {
    NodeOptions n;
    n.name = nodes_[static_cast<std::size_t>(i)].name;
    n.address = n.name;
    if (nodes_[static_cast<std::size_t>(i)].replaced == 0) {
      for (int s = 0; s < std::min(2, o_.nodes); ++s) {
        n.seeds.push_back(nodes_[static_cast<std::size_t>(s)].name);
      }
    } else {
      // A replacement is seeded as the operator would: with two of the
      // other members (the first slots' names may be itself, or a node
      // that is down).
      for (int s = 0; s < o_.nodes && n.seeds.size() < 2; ++s) {
        if (s != i) n.seeds.push_back(nodes_[static_cast<std::size_t>(s)].name);
      }
    }
    n.gossip_interval_ms = o_.gossip_interval_ms;
    n.fanout = o_.fanout;
    n.members_per_message = o_.members_per_message;
    // The deployment says how many replicas it has, so majority and all keep
    // their meaning even when a side of a partition forgot the others.
    n.min_replicas = static_cast<std::size_t>(o_.nodes);
    n.suspect_after_ms = o_.gossip_interval_ms * 20;
    n.dead_after_ms = o_.gossip_interval_ms * 60;
    n.write_timeout_ms = 5'000;
    n.ae_session_timeout_ms = std::max<std::uint64_t>(1'000, o_.gossip_interval_ms * 10);
    n.hlc_max_offset_ms = o_.hlc_max_offset_ms;
    n.prune_retired_ids = o_.prune;
    if (o_.trace != nullptr) {
      n.log = [this, name = n.name](const std::string& line) { Trace(name + ": " + line); };
    }
    n.on_prune_rename = [this, name = n.name](std::uint64_t level,
                                              const std::vector<std::uint64_t>& retired,
                                              std::string_view key, std::string_view before) {
      RecordRenaming(name, level, retired, key, before);
    };
    n.seed = crdt::internal::Mix64(
        o_.seed * 1'000'003 + static_cast<std::uint64_t>(i) * 7919 +
        static_cast<std::uint64_t>(nodes_[static_cast<std::size_t>(i)].starts));
    return n;
  }

  const SimulationOptions o_;
  Workload workload_;
  std::shared_ptr<const codec::TypeRegistry> registry_;
  SimWorld world_;
  std::mt19937_64 rng_;  // the schedule and the workload
  std::vector<SimNode> nodes_;
  std::set<std::string> forgetting_;  // replaced nodes the operator still has to forget
  std::vector<WriteRecordEntry> writes_;
  mutable std::map<std::pair<std::string, std::uint64_t>, Renaming> renamings_;  // (key, level)
  mutable std::map<std::uint64_t, std::string> renamed_by_;                      // level -> node
  std::map<std::pair<std::string, std::string>, int> cut_count_;
  std::uint64_t last_fault_ms_ = 0;
  SimulationReport report_;
};

void Simulation::StartNode(int i) {
  SimNode& n = nodes_[static_cast<std::size_t>(i)];
  n.clock = std::make_unique<SimClock>(world_, n.wall_offset_ms);
  n.transport = std::make_unique<SimTransport>(world_, n.name);
  n.node = std::make_unique<Node>(OptionsFor(i), *n.store, *n.transport, *n.clock, registry_);
  ++n.starts;
  if (Status s = n.node->Start(); !s.ok()) {
    report_.violations.push_back(n.name + " could not start: " + s.ToString());
    n.node.reset();
  }
  if (n.node) Trace("start " + n.name + " as replica " + std::to_string(n.node->replica().value()));
}

// The counters a run reports, summed over a node's processes and the nodes.
void AddCounters(NodeStats& into, const NodeStats& s) {
  into.retirements += s.retirements;
  into.ae_keys_repaired += s.ae_keys_repaired;
  into.intervals_rejected += s.intervals_rejected;
  into.messages_rejected += s.messages_rejected;
  into.timestamps_rejected += s.timestamps_rejected;
  into.entries_rejected += s.entries_rejected;
  into.digests_repaired += s.digests_repaired;
  into.tree_leaves_repaired += s.tree_leaves_repaired;
}

void Simulation::CrashNode(int i) {
  SimNode& n = nodes_[static_cast<std::size_t>(i)];
  if (!n.up()) return;
  n.node->Stop();
  AddCounters(n.past, n.node->stats());
  n.node.reset();
  n.transport.reset();
  n.clock.reset();
}

void Simulation::RestartNode(int i, Restart how, int episode) {
  SimNode& n = nodes_[static_cast<std::size_t>(i)];
  if (n.up() || n.down_for != episode) return;  // another episode's crash
  n.down_for = -1;
  Trace("restart " + n.name +
        (how == Restart::kIntact  ? ""
         : how == Restart::kWiped ? " wiped"
                                  : " rolled back"));
  if (how == Restart::kIntact) ++report_.crashes;
  if (how == Restart::kWiped) {
    ++report_.wipes;
    ExcuseLostWrites(i, nullptr);
    const std::uint64_t id = crdt::internal::Mix64(o_.seed ^ (std::uint64_t{0xd1ce} << 32) ^
                                                   (static_cast<std::uint64_t>(i) << 16) ^
                                                   static_cast<std::uint64_t>(n.starts));
    n.store = std::make_unique<storage::MemoryStore>(registry_, crdt::ReplicaId{id | 1});
    n.snapshots.clear();
    n.replaced_ms = world_.now_ms();
  } else if (how == Restart::kRolledBack && n.snapshots.empty()) {
    ++report_.crashes;  // no older copy yet: a plain restart
  } else if (how == Restart::kRolledBack) {
    // One of the copies taken before the crash, not always the latest.
    const std::size_t pick =
        n.snapshots.size() - 1 -
        static_cast<std::size_t>(rng_() % std::min<std::size_t>(3, n.snapshots.size()));
    storage::MemoryStore::Snapshot copy = n.snapshots[pick].second;
    Trace(n.name + " rolled back to its copy of " + std::to_string(n.snapshots[pick].first) +
          " ms");
    ++report_.rollbacks;
    ExcuseLostWrites(i, &copy);
    // The restarted process's own entropy: a rolled-back copy's next
    // incarnation must differ from every other process's, even one restored
    // from the same copy before.
    const std::uint64_t id_seed = crdt::internal::Mix64(o_.seed ^ (std::uint64_t{0xc0b7} << 32) ^
                                                        (static_cast<std::uint64_t>(i) << 16) ^
                                                        static_cast<std::uint64_t>(n.starts));
    n.store = std::make_unique<storage::MemoryStore>(registry_, std::move(copy), id_seed);
    n.snapshots.resize(pick + 1);
    n.replaced_ms = world_.now_ms();
  }
  StartNode(i);
}

void Simulation::ReplaceNode(int i) {
  SimNode& n = nodes_[static_cast<std::size_t>(i)];
  const std::string old = n.name;
  if (n.up()) CrashNode(i);
  n.down_for = -1;  // a pending restart of a crash episode does not apply
  ExcuseLostWrites(i, nullptr);
  ++report_.replacements;
  ++n.replaced;
  n.name = "n" + std::to_string(i) + "r" + std::to_string(n.replaced);
  const std::uint64_t id = crdt::internal::Mix64(o_.seed ^ (std::uint64_t{0x2e91} << 32) ^
                                                 (static_cast<std::uint64_t>(i) << 16) ^
                                                 static_cast<std::uint64_t>(n.replaced));
  n.store = std::make_unique<storage::MemoryStore>(registry_, crdt::ReplicaId{id | 1});
  n.snapshots.clear();
  n.members_lost_ms.push_back(world_.now_ms());
  Trace("replace " + old + " by " + n.name);
  StartNode(i);
  // The operator forgets the old node once the others see it dead.
  world_.ScheduleAt(world_.now_ms() + OptionsFor(i).dead_after_ms + 2 * o_.gossip_interval_ms,
                    [this, old] { ForgetLater(old, 0); });
  forgetting_.insert(old);
}

void Simulation::ForgetLater(const std::string& name, int attempt) {
  // As an operator would: on a node that lists it as dead, and again until
  // it is gone. A node that learned of it lately takes it for alive a while,
  // and one that was down may bring it back from its store when it restarts,
  // so under a storm of crashes no node may list it as dead for long: look
  // again every second while any node lists it (for at most an hour).
  bool listed = false;
  for (SimNode& n : nodes_) {
    if (!n.up()) continue;
    for (const PeerStatus& p : n.node->Peers()) {
      if (p.name != name) continue;
      listed = true;
      if (p.state != "dead") continue;
      n.node->Forget(name, [this, name](Status s) {
        Trace("forget " + name + ": " + (s.ok() ? "ok" : s.ToString()));
      });
      break;
    }
  }
  bool all_up = true;
  for (const SimNode& n : nodes_) all_up = all_up && n.up();
  if ((listed || !all_up) && attempt < 3600) {
    world_.ScheduleAt(world_.now_ms() + 1'000,
                      [this, name, attempt] { ForgetLater(name, attempt + 1); });
  } else {
    forgetting_.erase(name);
  }
}

bool Simulation::Holds(const std::optional<std::string>& state, const std::string& delta) const {
  if (!state) return false;
  const std::string_view operand[] = {delta};
  codec::DecodeOptions options;
  options.trusted = true;
  const StatusOr<std::string> joined = registry_->Join(std::string_view(*state), operand, options);
  return joined.ok() && *joined == *state;
}

void Simulation::RecordRenaming(const std::string& node, std::uint64_t level,
                                const std::vector<std::uint64_t>& retired, std::string_view key,
                                std::string_view before) const {
  const auto [it, fresh] = renamed_by_.emplace(level, node);
  if (it->second != node) return;  // another node recorded this level
  renamings_[{std::string(key), level}] = Renaming{retired, std::string(before)};
}

std::string Simulation::Translate(const std::string& key, std::string bytes, std::uint64_t from,
                                  std::uint64_t to) const {
  const auto step = [&](std::uint64_t level, crdt::RelabelMode mode) {
    const auto it = renamings_.find({key, level});
    if (it == renamings_.end()) return;
    const StatusOr<const codec::TypeRegistry::Entry*> type = registry_->Lookup(bytes);
    if (!type.ok()) return;
    std::vector<crdt::ReplicaId> ids;
    for (const std::uint64_t id : it->second.retired) ids.emplace_back(id);
    std::string before = it->second.before;
    std::string one[] = {bytes};
    if ((*type)->relabel(before, one, ids, mode).ok()) bytes = std::move(one[0]);
  };
  for (std::uint64_t l = from; l > to; --l) step(l, crdt::RelabelMode::kRestore);
  for (std::uint64_t l = from + 1; l <= to; ++l) step(l, crdt::RelabelMode::kRename);
  return bytes;
}

std::uint64_t Simulation::LevelOf(storage::Store& store) {
  const StatusOr<std::optional<std::string>> bytes =
      store.GetAux(replication::internal::records::PruneKey());
  if (!bytes.ok() || !bytes->has_value()) return 0;
  const StatusOr<replication::internal::records::PruneRecord> r =
      replication::internal::records::ParsePrune(**bytes);
  return r.ok() ? r->level : 0;
}

std::uint64_t Simulation::LevelOf(const storage::MemoryStore::Snapshot& snapshot) {
  const auto it = snapshot.aux.find(replication::internal::records::PruneKey());
  if (it == snapshot.aux.end()) return 0;
  const StatusOr<replication::internal::records::PruneRecord> r =
      replication::internal::records::ParsePrune(it->second);
  return r.ok() ? r->level : 0;
}

bool Simulation::StoreHolds(storage::Store& store, const Write::Record& r) const {
  StatusOr<std::optional<std::string>> state = store.Get(r.key);
  return state.ok() && Holds(*state, Translate(r.key, r.delta, r.level, LevelOf(store)));
}

void Simulation::ExcuseLostWrites(int i, const storage::MemoryStore::Snapshot* kept) {
  for (WriteRecordEntry& w : writes_) {
    if (w.excused || w.record->delta.empty()) continue;
    const std::string& key = w.record->key;
    bool held = false;
    if (kept != nullptr) {
      const auto it = kept->states.find(key);
      held = it != kept->states.end() &&
             Holds(it->second, Translate(key, w.record->delta, w.record->level, LevelOf(*kept)));
    }
    for (std::size_t j = 0; j < nodes_.size() && !held; ++j) {
      if (static_cast<int>(j) == i) continue;
      held = StoreHolds(*nodes_[j].store, *w.record);
    }
    if (held) continue;
    w.excused = true;
    if (w.record->done && w.record->status.ok()) ++report_.writes_lost_with_data;
  }
}

void Simulation::CheckHolders(std::size_t index) {
  const WriteRecordEntry& w = writes_[index];
  const Write::Record& r = *w.record;
  Trace("write " + std::to_string(index) + " answered: " + r.status.ToString());
  if (!r.status.ok() || r.delta.empty() || w.consistency == WriteConsistency::kLocal) return;
  // A store replaced since the write may have held it and lost it with its
  // directory (which is no fault of the acknowledgement). A node destroyed
  // since the write and replaced by a new one was a member of its own: it
  // may have acknowledged it before its replacement did too.
  std::size_t holders = 0;
  for (const SimNode& n : nodes_) {
    if (StoreHolds(*n.store, r) || n.replaced_ms >= w.at_ms) {
      ++holders;
    } else if (o_.trace != nullptr) {
      Trace("write " + std::to_string(index) + " is not held by " + n.name + " (level " +
            std::to_string(LevelOf(*n.store)) + ", written at level " + std::to_string(r.level) +
            ")");
    }
    holders += static_cast<std::size_t>(
        std::count_if(n.members_lost_ms.begin(), n.members_lost_ms.end(),
                      [&](std::uint64_t lost_ms) { return lost_ms >= w.at_ms; }));
  }
  const std::size_t n = nodes_.size();
  const std::size_t needed = w.consistency == WriteConsistency::kAll ? n : n / 2 + 1;
  if (holders < needed) {
    report_.violations.push_back(
        "write " + std::to_string(index) + " to " + r.key + " acknowledged (" +
        std::string(WriteConsistencyName(w.consistency)) + ") by n" + std::to_string(w.node) +
        " at " + std::to_string(world_.now_ms()) + " ms when only " + std::to_string(holders) +
        " of " + std::to_string(n) + " stores held it");
  }
}

void Simulation::IssueWrite(int preferred) {
  int target = -1;
  for (int k = 0; k < o_.nodes; ++k) {
    const int i = (preferred + k) % o_.nodes;
    if (nodes_[static_cast<std::size_t>(i)].up()) {
      target = i;
      break;
    }
  }
  Write write = workload_(rng_, o_.keys);
  const std::uint64_t roll = rng_() % 100;
  if (target < 0) return;  // everything is down: the client finds no replica
  if (write.read) {
    // The client read another replica (any that is up) before writing here.
    std::vector<int> others;
    for (int i = 0; i < o_.nodes; ++i) {
      if (i != target && nodes_[static_cast<std::size_t>(i)].up()) others.push_back(i);
    }
    const int reader =
        others.empty() ? target : others[static_cast<std::size_t>(rng_() % others.size())];
    Trace("client reads " + write.key + " on n" + std::to_string(reader));
    write.read(*nodes_[static_cast<std::size_t>(reader)].node);
  }
  WriteRecordEntry entry;
  entry.record = std::make_shared<Write::Record>();
  entry.node = target;
  entry.at_ms = world_.now_ms();
  entry.consistency = roll < static_cast<std::uint64_t>(o_.all_percent) ? WriteConsistency::kAll
                      : roll < static_cast<std::uint64_t>(o_.all_percent + o_.majority_percent)
                          ? WriteConsistency::kMajority
                          : WriteConsistency::kLocal;
  const std::size_t index = writes_.size();
  entry.record->on_done = [this, index] { CheckHolders(index); };
  writes_.push_back(entry);
  Trace("write " + std::to_string(index) + " to " + write.key + " on n" + std::to_string(target) +
        " (" + std::string(WriteConsistencyName(entry.consistency)) + ")");
  write.submit(*nodes_[static_cast<std::size_t>(target)].node, entry.consistency, entry.record);
}

void Simulation::TakeSnapshots() {
  for (SimNode& n : nodes_) {
    if (!n.up()) continue;
    n.snapshots.emplace_back(world_.now_ms(), n.store->TakeSnapshot());
    if (n.snapshots.size() > 8) n.snapshots.erase(n.snapshots.begin());
  }
}

void Simulation::CutLink(const std::string& from, const std::string& to) {
  Trace("cut " + from + " -> " + to);
  if (cut_count_[{from, to}]++ == 0) world_.Cut(from, to);
}

void Simulation::HealLink(const std::string& from, const std::string& to) {
  Trace("heal " + from + " -> " + to);
  auto it = cut_count_.find({from, to});
  if (it == cut_count_.end() || it->second == 0) return;
  if (--it->second == 0) world_.Restore(from, to);
}

void Simulation::SchedulePartition(std::uint64_t start, std::uint64_t end) {
  // The links this episode cuts (one way each).
  std::vector<std::pair<std::string, std::string>> links;
  const int kind = static_cast<int>(rng_() % 3);
  const auto name = [](int i) { return "n" + std::to_string(i); };
  if (kind == 0 || kind == 1) {
    // A split into two sides; kind 1 cuts only one direction.
    std::vector<bool> side(static_cast<std::size_t>(o_.nodes));
    int in = 0;
    while (in == 0 || in == o_.nodes) {
      in = 0;
      for (int i = 0; i < o_.nodes; ++i) {
        side[static_cast<std::size_t>(i)] = rng_() % 2 == 0;
        in += side[static_cast<std::size_t>(i)] ? 1 : 0;
      }
    }
    for (int a = 0; a < o_.nodes; ++a) {
      for (int b = 0; b < o_.nodes; ++b) {
        if (!side[static_cast<std::size_t>(a)] || side[static_cast<std::size_t>(b)]) continue;
        links.emplace_back(name(a), name(b));
        if (kind == 0) links.emplace_back(name(b), name(a));
      }
    }
  } else {
    // Random one-way links.
    const int count = 1 + static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes * 2));
    for (int k = 0; k < count; ++k) {
      const int a = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
      const int b = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
      if (a != b) links.emplace_back(name(a), name(b));
    }
  }
  // Cut one by one at the start, healed one by one in random order after.
  std::vector<std::uint64_t> heal_at;
  for (std::size_t k = 0; k < links.size(); ++k) heal_at.push_back(end + Uniform(rng_, 0, 1'000));
  for (std::size_t k = 0; k < links.size(); ++k) {
    const auto link = links[k];
    world_.ScheduleAt(start + k, [this, link] { CutLink(link.first, link.second); });
    world_.ScheduleAt(heal_at[k], [this, link] { HealLink(link.first, link.second); });
    last_fault_ms_ = std::max(last_fault_ms_, heal_at[k]);
  }
  ++report_.partitions;
}

bool Simulation::AllEqual() const {
  for (const SimNode& n : nodes_) {
    if (!n.up()) return false;
  }
  const std::uint64_t root = nodes_[0].node->root_hash();
  for (const SimNode& n : nodes_) {
    if (n.node->root_hash() != root) return false;
  }
  // Equal roots: confirm byte for byte.
  const auto first = nodes_[0].store->TakeSnapshot().states;
  for (std::size_t i = 1; i < nodes_.size(); ++i) {
    if (nodes_[i].store->TakeSnapshot().states != first) return false;
  }
  return true;
}

void Simulation::CheckMembership(SimulationReport& report) {
  std::set<std::string> seen = NotAlive();
  // Large clusters probe their members: under message loss a probe and its
  // three indirect tries can all fail, and the member is suspected until it
  // refutes (docs/replication.md). A suspicion is a violation only if it
  // is seen at every look over the next 40 rounds (one not refuted would
  // also turn into "dead"); anything else at once.
  if (static_cast<std::size_t>(o_.nodes) - 1 > o_.members_per_message) {
    for (int look = 0; look < 8; ++look) {
      world_.RunFor(o_.gossip_interval_ms * 5);
      const std::set<std::string> later = NotAlive();
      std::erase_if(seen, [&](const std::string& s) {
        return s.ends_with(" as suspect") && !later.contains(s);
      });
      for (const std::string& s : later) {
        if (!s.ends_with(" as suspect")) seen.insert(s);
      }
    }
  }
  for (const std::string& s : seen) report.violations.push_back(s + " after the faults ended");
}

std::set<std::string> Simulation::NotAlive() const {
  std::set<std::string> out;
  for (const SimNode& n : nodes_) {
    if (!n.up()) continue;
    std::set<std::string> alive;
    for (const PeerStatus& p : n.node->Peers()) {
      if (p.state == "alive") alive.insert(p.name);
    }
    for (const SimNode& other : nodes_) {
      if (&other == &n || alive.contains(other.name)) continue;
      std::string state = "unknown";
      for (const PeerStatus& p : n.node->Peers()) {
        if (p.name == other.name) state = p.state;
      }
      out.insert(n.name + " sees " + other.name + " as " + state);
    }
  }
  return out;
}

NodeStats Simulation::TotalStats() const {
  NodeStats total;
  for (const SimNode& n : nodes_) {
    AddCounters(total, n.past);
    if (n.up()) AddCounters(total, n.node->stats());
  }
  return total;
}

void Simulation::Check(SimulationReport& report) {
  const auto final_states = nodes_[0].store->TakeSnapshot().states;
  const std::uint64_t final_level = LevelOf(*nodes_[0].store);
  report.keys = final_states.size();
  // The converged state of a key named as at a write's pruning level, and
  // other writes' deltas named alike: each check compares like with like.
  std::map<std::pair<std::string, std::uint64_t>, std::optional<std::string>> states_at;
  const auto state_of = [&](const std::string& key,
                            std::uint64_t level) -> const std::optional<std::string>& {
    const auto [it, fresh] = states_at.try_emplace({key, level});
    if (fresh) {
      if (const auto f = final_states.find(key); f != final_states.end()) {
        it->second = Translate(key, f->second, final_level, level);
      }
    }
    return it->second;
  };
  std::map<std::pair<std::size_t, std::uint64_t>, Write::Record> records_at;
  const auto record_at = [&](std::size_t index, std::uint64_t level) -> const Write::Record* {
    const Write::Record& r = *writes_[index].record;
    if (r.level == level || r.delta.empty()) return &r;
    const auto [it, fresh] = records_at.try_emplace({index, level});
    if (fresh) {
      it->second.key = r.key;
      it->second.delta = Translate(r.key, r.delta, r.level, level);
      it->second.level = level;
    }
    return &it->second;
  };
  std::deque<std::string> produced_bytes;
  std::map<std::string, std::vector<std::string_view>> produced;
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, std::size_t> dots;
  for (std::size_t k = 0; k < writes_.size(); ++k) {
    const WriteRecordEntry& w = writes_[k];
    const Write::Record& r = *w.record;
    if (r.delta.empty()) continue;
    ++report.writes_issued;
    // Refused before anything was written (a stale client context, a key
    // past its limits): the dots the mutator made were never issued.
    if (r.done && (r.status.code() == StatusCode::kFailedPrecondition ||
                   r.status.code() == StatusCode::kResourceExhausted)) {
      continue;
    }
    produced_bytes.push_back(Translate(r.key, r.delta, r.level, 0));
    produced[r.key].push_back(produced_bytes.back());
    const bool acked = r.done && r.status.ok();
    if (acked) ++report.writes_acked;
    for (const auto& [replica, counter] : r.new_dots) {
      const auto [it, fresh] = dots.emplace(std::make_tuple(r.key, replica, counter), k);
      if (!fresh) {
        ++report.dots_reused;
        std::ostringstream v;
        v << "dot (" << replica << ", " << counter << ") of key " << r.key
          << " was issued by write " << it->second << " and again by write " << k;
        report.violations.push_back(v.str());
      }
    }
    if (acked && !w.excused && r.check) {
      if (const std::optional<std::string> why = r.check(state_of(r.key, r.level))) {
        report.violations.push_back("write " + std::to_string(k) + " to " + r.key + ": " + *why);
      }
    }
    if (acked && !w.excused && r.check_history) {
      std::vector<const Write::Record*> key_writes;
      for (std::size_t j = 0; j < writes_.size(); ++j) {
        if (writes_[j].record->key == r.key) {
          key_writes.push_back(j == k ? &r : record_at(j, r.level));
        }
      }
      if (const std::optional<std::string> why =
              r.check_history(state_of(r.key, r.level), key_writes)) {
        report.violations.push_back("write " + std::to_string(k) + " to " + r.key + ": " + *why);
      }
    }
    if (acked && !w.excused && !Holds(state_of(r.key, r.level), r.delta)) {
      ++report.acked_writes_lost;
      if (report.acked_writes_lost <= 5) {
        std::ostringstream v;
        v << "write " << k << " to " << r.key << " acknowledged by n" << w.node << " at " << w.at_ms
          << " ms (" << WriteConsistencyName(w.consistency)
          << ") is missing from the converged state";
        report.violations.push_back(v.str());
      }
    }
  }
  if (report.acked_writes_lost > 5) {
    report.violations.push_back("... " + std::to_string(report.acked_writes_lost - 5) +
                                " more acknowledged writes missing");
  }
  // Nothing invented: the final state is below the join of every delta
  // (both named as before any pruning).
  for (const auto& [key, final_state] : final_states) {
    const std::string state = Translate(key, final_state, final_level, 0);
    const auto it = produced.find(key);
    if (it == produced.end()) {
      report.violations.push_back("key " + key + " holds a state no write produced");
      continue;
    }
    codec::DecodeOptions options;
    options.trusted = true;
    const StatusOr<std::string> all = registry_->Join(std::nullopt, it->second, options);
    const std::string_view operand[] = {state};
    const StatusOr<std::string> with_final =
        all.ok() ? registry_->Join(std::string_view(*all), operand, options) : all;
    if (!all.ok() || !with_final.ok() || *with_final != *all) {
      report.violations.push_back("key " + key +
                                  " holds a state above the join of every delta written to it");
    }
  }
}

SimulationReport Simulation::Run() {
  SimulationReport& report = report_;
  report.replay = ReplayCommand(o_);
  if (o_.nodes < 1 || o_.fanout < 1 || o_.keys < 1 || o_.writes < 0 || o_.loss < 0 ||
      o_.loss >= 1 || o_.duplication < 0 || o_.duplication > 1 || o_.gossip_interval_ms == 0) {
    report.violations.push_back("invalid options");
    return report;
  }
  NetworkFaults faults;
  faults.loss = o_.loss;
  faults.duplication = o_.duplication;
  faults.min_delay_ms = 1;
  faults.max_delay_ms = o_.reorder ? 40 : 1;
  world_.set_faults(faults);

  nodes_.resize(static_cast<std::size_t>(o_.nodes));
  // Named first: a node's seeds are the first two nodes' names.
  for (int i = 0; i < o_.nodes; ++i)
    nodes_[static_cast<std::size_t>(i)].name = "n" + std::to_string(i);
  for (int i = 0; i < o_.nodes; ++i) {
    SimNode& n = nodes_[static_cast<std::size_t>(i)];
    constexpr std::uint64_t kEpochMs = 1'700'000'000'000ULL;
    n.wall_offset_ms = kEpochMs - o_.skew_ms + Uniform(rng_, 0, 2 * o_.skew_ms);
    n.store = std::make_unique<storage::MemoryStore>(
        registry_,
        crdt::ReplicaId{crdt::internal::Mix64(o_.seed + static_cast<std::uint64_t>(i)) | 1});
    StartNode(i);
  }

  // The schedule.
  const std::uint64_t window_start = kWarmupMs;
  const std::uint64_t window_end = kWarmupMs + o_.fault_window_ms;
  for (int k = 0; k < o_.writes; ++k) {
    const std::uint64_t at = Uniform(rng_, window_start, window_end);
    const int node = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
    world_.ScheduleAt(at, [this, node] { IssueWrite(node); });
    last_fault_ms_ = std::max(last_fault_ms_, at);
  }
  for (std::uint64_t t = window_start; t <= window_end; t += kSnapshotEveryMs) {
    world_.ScheduleAt(t, [this] { TakeSnapshots(); });
  }
  for (int k = 0; k < o_.partitions; ++k) {
    const std::uint64_t start = Uniform(rng_, window_start, window_end - 500);
    const std::uint64_t end = std::min(window_end, start + Uniform(rng_, 500, 8'000));
    SchedulePartition(start, end);
  }
  int episodes = 0;
  const auto schedule_crash = [&](Restart how) {
    const int node = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
    const std::uint64_t at = Uniform(rng_, window_start + 1'000, window_end);
    const std::uint64_t back = at + Uniform(rng_, 300, 3'000);
    const int episode = episodes++;
    world_.ScheduleAt(at, [this, node, episode] {
      SimNode& n = nodes_[static_cast<std::size_t>(node)];
      if (!n.up()) return;  // already down: this episode is not injected
      Trace("crash " + n.name);
      CrashNode(node);
      n.down_for = episode;
    });
    world_.ScheduleAt(back, [this, node, how, episode] { RestartNode(node, how, episode); });
    last_fault_ms_ = std::max(last_fault_ms_, back);
  };
  for (int k = 0; k < o_.clock_jumps; ++k) {
    // A wall clock stepped back (an NTP correction, a VM restored): the
    // node's hybrid clock must keep its timestamps increasing.
    const int node = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
    const std::uint64_t at = Uniform(rng_, window_start, window_end);
    world_.ScheduleAt(at, [this, node] {
      SimNode& n = nodes_[static_cast<std::size_t>(node)];
      n.wall_offset_ms -= std::min(n.wall_offset_ms, o_.jump_ms);
      Trace("clock of " + n.name + " stepped back " + std::to_string(o_.jump_ms) + " ms");
      if (n.clock) n.clock->set_wall_offset_ms(n.wall_offset_ms);
      ++report_.clock_jumps;
    });
    last_fault_ms_ = std::max(last_fault_ms_, at);
  }
  for (int k = 0; k < o_.replacements; ++k) {
    const int node = static_cast<int>(rng_() % static_cast<std::uint64_t>(o_.nodes));
    const std::uint64_t at = Uniform(rng_, window_start + 1'000, window_end);
    world_.ScheduleAt(at, [this, node] { ReplaceNode(node); });
    // The old node is forgotten once it is dead (a few seconds later).
    last_fault_ms_ = std::max(last_fault_ms_, at + OptionsFor(node).dead_after_ms + 3'000);
  }
  for (int k = 0; k < o_.crashes; ++k) schedule_crash(Restart::kIntact);
  for (int k = 0; k < o_.wipes; ++k) schedule_crash(Restart::kWiped);
  for (int k = 0; k < o_.rollbacks; ++k) schedule_crash(Restart::kRolledBack);

  // Play it, then count rounds until every node holds the same bytes.
  world_.RunUntil(last_fault_ms_);
  for (int i = 0; i < o_.nodes; ++i) {
    // A restart that found its node up (overlapping episodes) left it up;
    // one that found it down for another episode's crash restarted it.
    if (!nodes_[static_cast<std::size_t>(i)].up()) StartNode(i);
  }
  const std::uint64_t from = world_.now_ms();
  for (int round = 0; round <= o_.max_rounds; ++round) {
    if (AllEqual()) {
      report.converged = true;
      report.rounds = static_cast<std::uint64_t>(round);
      report.convergence_ms = world_.now_ms() - from;
      break;
    }
    world_.RunFor(o_.gossip_interval_ms);
  }
  // Let waiting writes learn their outcome (confirmations or timeouts), and
  // let failure detection run its course: a member that peers wrongly
  // ignored would be declared dead by now.
  const std::uint64_t settle = std::max<std::uint64_t>(6'000, o_.gossip_interval_ms * 60 + 2'000);
  world_.RunFor(settle / 2);
  std::uint64_t rest_from = 0;
  for (const SimNode& n : nodes_) rest_from += world_.bytes_sent(n.name);
  world_.RunFor(settle - settle / 2);
  std::uint64_t rest_to = 0;
  for (const SimNode& n : nodes_) rest_to += world_.bytes_sent(n.name);
  report.rest_bytes_per_node_round =
      (rest_to - rest_from) /
      std::max<std::uint64_t>(1, static_cast<std::uint64_t>(o_.nodes) *
                                     ((settle - settle / 2) / o_.gossip_interval_ms));
  // Settled also means the operator's forgetting of replaced nodes is done
  // (a storm of crashes can keep every node from seeing them dead until
  // the storm is over).
  for (int second = 0; !forgetting_.empty() && second < 600; ++second) world_.RunFor(1'000);
  CheckMembership(report);
  if (o_.trace != nullptr && !report.converged) {
    const auto first = nodes_[0].store->TakeSnapshot().states;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
      const auto other = nodes_[i].store->TakeSnapshot().states;
      for (const auto& [key, state] : first) {
        const auto it = other.find(key);
        if (it == other.end() || it->second != state)
          Trace("n0 and n" + std::to_string(i) + " differ in " + key);
      }
    }
    for (const SimNode& n : nodes_) {
      if (n.up()) {
        Trace(n.name + " sees the cluster's clock " +
              std::to_string(n.node->stats().cluster_clock_offset_ms) + " ms from its own");
      }
    }
  }

  if (!report.converged) {
    report.violations.push_back("the nodes did not converge within " +
                                std::to_string(o_.max_rounds) + " rounds after the last fault");
  } else if (!AllEqual()) {
    report.violations.push_back("the nodes diverged again after converging");
  }
  report.faults_injected = report.partitions + report.crashes + report.wipes + report.rollbacks +
                           report.replacements + report.clock_jumps + (o_.skew_ms > 0 ? 1 : 0);
  // Metadata once settled.
  report.max_gossip_frame_bytes = world_.max_frame_sent();
  for (const SimNode& n : nodes_) {
    if (!n.up()) continue;
    const std::uint64_t listed = n.node->Peers().size() + 1;
    report.members_max = std::max(report.members_max, listed);
    if (listed > static_cast<std::uint64_t>(o_.nodes)) {
      std::string names;
      for (const PeerStatus& p : n.node->Peers()) names += " " + p.name + ":" + p.state;
      report.violations.push_back(n.name + " lists " + std::to_string(listed) + " members of " +
                                  std::to_string(o_.nodes) + " once settled:" + names);
    }
  }
  for (const auto& [key, state] : nodes_[0].store->TakeSnapshot().states) {
    report.max_context_replicas =
        std::max<std::uint64_t>(report.max_context_replicas, ContextReplicas(state));
  }
  Check(report);

  const NodeStats stats = TotalStats();
  // The simulated stores never fail: the self-check must find nothing.
  if (stats.digests_repaired + stats.tree_leaves_repaired > 0) {
    report.violations.push_back(
        "self-checking state repaired " + std::to_string(stats.digests_repaired) +
        " digest index entries and " + std::to_string(stats.tree_leaves_repaired) +
        " tree leaves: the node's derived state drifted from its store");
  }
  // Every node runs the same types: nothing may be rejected.
  if (stats.entries_rejected > 0) {
    report.violations.push_back(std::to_string(stats.entries_rejected) +
                                " remote entries rejected between nodes of one version");
  }
  report.retirements = stats.retirements;
  report.timestamps_rejected = stats.timestamps_rejected;
  report.ae_keys_repaired = stats.ae_keys_repaired;
  report.intervals_rejected = stats.intervals_rejected;
  std::uint64_t bytes = 0;
  for (const SimNode& n : nodes_) bytes += world_.bytes_sent(n.name);
  report.bytes_per_node = bytes / static_cast<std::uint64_t>(o_.nodes);
  report.frames_delivered = world_.frames_delivered();
  report.frames_sent = world_.frames_sent();
  if (report.frames_sent > 0) {
    report.bytes_per_frame = world_.bytes_sent_total() / report.frames_sent;
  }
  for (const SimNode& n : nodes_) {
    if (n.up()) report.prune_level = std::max(report.prune_level, n.node->stats().prune_level);
  }
  world_.MixTrace(nodes_[0].up() ? nodes_[0].node->root_hash() : 0);
  world_.MixTrace(report.rounds);
  report.trace_hash = world_.trace_hash();
  report.events = world_.events_run();
  for (SimNode& n : nodes_) {
    if (n.up()) n.node->Stop();
  }
  return report;
}

}  // namespace

const std::vector<NamedWorkload>& Workloads() {
  static const std::vector<NamedWorkload> workloads = {
      {"cart", "carts (OrMap<string, CausalCounter>): add, set, remove and clear lines",
       &CartWrite},
      {"cart-context",
       "carts whose removes, sets and empties carry what a client read at another replica",
       &CartContextWrite},
      {"set", "OrSet<string>: adds and observed removes", &SetWrite},
      {"counter", "GCounter increments, PnCounter increments and decrements", &CounterWrite},
      {"lww", "LwwRegister<string> writes stamped by the node's hybrid logical clock", &LwwWrite},
      {"mixed", "all of the above (45% carts, 25% sets, 15% registers, 15% counters)", &MixedWrite},
  };
  return workloads;
}

SimulationReport RunSimulation(const SimulationOptions& options, Workload workload,
                               std::shared_ptr<const codec::TypeRegistry> registry) {
  if (!workload) {
    for (const NamedWorkload& w : Workloads()) {
      if (w.name == options.workload) workload = w.make;
    }
  }
  if (!registry) {
    registry = std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  }
  if (!workload) {
    SimulationReport report;
    report.replay = ReplayCommand(options);
    report.violations.push_back("unknown workload '" + options.workload + "'");
    return report;
  }
  Simulation simulation(options, std::move(workload), std::move(registry));
  return simulation.Run();
}

namespace {

template <class T>
bool ParseNumber(std::string_view text, T* out) {
  if constexpr (std::is_floating_point_v<T>) {
    const std::string s(text);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || errno != 0 || !std::isfinite(v)) return false;
    *out = static_cast<T>(v);
    return true;
  } else {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
  }
}

}  // namespace

StatusOr<SimulationOptions> ParseReplayCommand(std::string_view line) {
  std::vector<std::string_view> words;
  for (std::size_t i = 0; i < line.size();) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) words.push_back(line.substr(i, j - i));
    i = j;
  }
  if (words.empty() || (words[0] != "converge-sim" && !words[0].ends_with("/converge-sim"))) {
    return InvalidArgument("a replay command starts with converge-sim");
  }
  SimulationOptions o;
  const auto number = [](auto* field) -> std::function<bool(std::string_view)> {
    return [field](std::string_view v) { return ParseNumber(v, field); };
  };
  const std::map<std::string_view, std::function<bool(std::string_view)>> flags = {
      {"--nodes", number(&o.nodes)},
      {"--fanout", number(&o.fanout)},
      {"--members-per-message", number(&o.members_per_message)},
      {"--seed", number(&o.seed)},
      {"--loss", number(&o.loss)},
      {"--dup", number(&o.duplication)},
      {"--partitions", number(&o.partitions)},
      {"--crashes", number(&o.crashes)},
      {"--wipes", number(&o.wipes)},
      {"--rollbacks", number(&o.rollbacks)},
      {"--replacements", number(&o.replacements)},
      {"--skew-ms", number(&o.skew_ms)},
      {"--clock-jumps", number(&o.clock_jumps)},
      {"--jump-ms", number(&o.jump_ms)},
      {"--hlc-max-offset-ms", number(&o.hlc_max_offset_ms)},
      {"--workload",
       [&](std::string_view v) {
         o.workload = std::string(v);
         return true;
       }},
      {"--writes", number(&o.writes)},
      {"--keys", number(&o.keys)},
      {"--majority-percent", number(&o.majority_percent)},
      {"--all-percent", number(&o.all_percent)},
      {"--gossip-interval-ms", number(&o.gossip_interval_ms)},
      {"--window-ms", number(&o.fault_window_ms)},
      {"--max-rounds", number(&o.max_rounds)},
  };
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::string_view flag = words[i];
    if (flag == "--prune") {
      o.prune = true;
      continue;
    }
    if (flag == "--reorder") {
      o.reorder = true;
      continue;
    }
    const auto it = flags.find(flag);
    if (it == flags.end()) return InvalidArgument("unknown flag '" + std::string(flag) + "'");
    if (i + 1 == words.size()) return InvalidArgument(std::string(flag) + " needs a value");
    if (!it->second(words[++i])) {
      return InvalidArgument("bad value '" + std::string(words[i]) + "' for " + std::string(flag));
    }
  }
  return o;
}

std::string ReplayCommand(const SimulationOptions& o) {
  const SimulationOptions d;
  std::ostringstream out;
  out << "converge-sim --nodes " << o.nodes << " --fanout " << o.fanout << " --seed " << o.seed;
  if (o.members_per_message != d.members_per_message)
    out << " --members-per-message " << o.members_per_message;
  if (o.loss != d.loss) out << " --loss " << o.loss;
  if (o.duplication != d.duplication) out << " --dup " << o.duplication;
  if (o.reorder) out << " --reorder";
  if (o.prune) out << " --prune";
  if (o.partitions != d.partitions) out << " --partitions " << o.partitions;
  if (o.crashes != d.crashes) out << " --crashes " << o.crashes;
  if (o.wipes != d.wipes) out << " --wipes " << o.wipes;
  if (o.rollbacks != d.rollbacks) out << " --rollbacks " << o.rollbacks;
  if (o.replacements != d.replacements) out << " --replacements " << o.replacements;
  if (o.skew_ms != d.skew_ms) out << " --skew-ms " << o.skew_ms;
  if (o.clock_jumps != d.clock_jumps) out << " --clock-jumps " << o.clock_jumps;
  if (o.jump_ms != d.jump_ms) out << " --jump-ms " << o.jump_ms;
  if (o.hlc_max_offset_ms != d.hlc_max_offset_ms)
    out << " --hlc-max-offset-ms " << o.hlc_max_offset_ms;
  if (o.workload != d.workload) out << " --workload " << o.workload;
  if (o.writes != d.writes) out << " --writes " << o.writes;
  if (o.keys != d.keys) out << " --keys " << o.keys;
  if (o.majority_percent != d.majority_percent) out << " --majority-percent " << o.majority_percent;
  if (o.all_percent != d.all_percent) out << " --all-percent " << o.all_percent;
  if (o.gossip_interval_ms != d.gossip_interval_ms)
    out << " --gossip-interval-ms " << o.gossip_interval_ms;
  if (o.fault_window_ms != d.fault_window_ms) out << " --window-ms " << o.fault_window_ms;
  if (o.max_rounds != d.max_rounds) out << " --max-rounds " << o.max_rounds;
  return out.str();
}

}  // namespace converge::replication::sim
