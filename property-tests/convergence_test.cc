// Convergence of 2 to 5 replicas under random operations and a hostile
// network: every delta is queued for every other replica, then delivered in
// random order, duplicated, or dropped; replicas also exchange full states at
// random (anti-entropy), and at the end every queued delta is delivered and
// the replicas exchange full states. All replicas must then be equal, and
// after every step each replica's value must match an oracle that knows
// nothing of dots or contexts.
//
// The oracle for observed-remove types works on the history alone. An
// operation creates "units" (an add, an increment, an assignment) and "kills"
// the units that were alive at its replica when it ran (a remove observes
// what it sees). A replica knows the operations whose deltas it received,
// plus everything known by replicas whose full state it joined; a unit is
// alive at a replica when its operation is known there and none of its
// killers is. The CRDT's value at each replica must be the one its alive
// units describe.
//
// Client causal contexts: a client reads a replica (a copy of its state, and
// the units alive there then) and later sends an operation that acts on what
// it read to any replica — a `seen` overload. Such an operation kills exactly
// the units of its read (those alive at the read's replica then, under its
// path), whether or not the replica running it has received them; units the
// read did not hold survive. So no line removed as seen re-appears, and no
// addition the client did not see is lost.

#include <gtest/gtest.h>
// rapidcheck/gtest.h needs gtest first.
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "crdt/crdt.h"

namespace converge::crdt {
namespace {

// A key path: {} for a whole register/flag/counter, {k} for a set element or
// a map key, {k, sub} for a nested map entry.
using Path = std::vector<int>;

class ObservedRemoveOracle {
 public:
  struct Unit {
    int op;
    Path path;
    std::uint64_t amount;  // increments; the assigned value for registers
  };

  explicit ObservedRemoveOracle(std::size_t replicas) : known_(replicas) {}

  // Starts an operation at `replica`; returns its id.
  int Begin(std::size_t replica) {
    const int op = next_op_++;
    Know(replica, op);
    return op;
  }

  // The units alive at `replica` now: what a client reading it sees.
  std::vector<std::size_t> AliveIndicesAt(std::size_t replica) const {
    std::vector<std::size_t> alive;
    for (std::size_t u = 0; u < units_.size(); ++u) {
      if (Alive(u, replica)) alive.push_back(u);
    }
    return alive;
  }

  // Operation `op` acting on a read kills the read's units under `prefix`,
  // wherever it runs.
  void KillSeen(int op, const std::vector<std::size_t>& read, const Path& prefix) {
    for (const std::size_t u : read) {
      if (units_[u].op != op && StartsWith(units_[u].path, prefix)) killers_[u].push_back(op);
    }
  }

  // Operation `op` at `replica` kills the units alive there whose path
  // starts with `prefix`.
  void Kill(int op, std::size_t replica, const Path& prefix) {
    for (std::size_t u = 0; u < units_.size(); ++u) {
      if (units_[u].op == op) continue;
      if (Alive(u, replica) && StartsWith(units_[u].path, prefix)) killers_[u].push_back(op);
    }
  }

  void Create(int op, Path path, std::uint64_t amount) {
    units_.push_back(Unit{op, std::move(path), amount});
    killers_.emplace_back();
  }

  void Deliver(int op, std::size_t replica) { Know(replica, op); }
  void Merge(std::size_t into, std::size_t from) {
    known_[into].insert(known_[from].begin(), known_[from].end());
  }

  std::vector<Unit> AliveAt(std::size_t replica) const {
    std::vector<Unit> alive;
    for (std::size_t u = 0; u < units_.size(); ++u) {
      if (Alive(u, replica)) alive.push_back(units_[u]);
    }
    return alive;
  }

 private:
  static bool StartsWith(const Path& path, const Path& prefix) {
    return path.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
  }
  void Know(std::size_t replica, int op) { known_[replica].insert(op); }
  bool Alive(std::size_t u, std::size_t replica) const {
    const auto& known = known_[replica];
    if (!known.contains(units_[u].op)) return false;
    return std::none_of(killers_[u].begin(), killers_[u].end(),
                        [&](int k) { return known.contains(k); });
  }

  std::vector<std::set<int>> known_;
  std::vector<Unit> units_;
  std::vector<std::vector<int>> killers_;
  int next_op_ = 0;
};

struct NetOp {
  int kind = 0;
  int key = 0;
  int sub = 0;
  std::uint64_t n = 0;
};
void showValue(const NetOp& op, std::ostream& os) {
  os << "{kind=" << op.kind << " key=" << op.key << " sub=" << op.sub << " n=" << op.n << "}";
}

ReplicaId Id(std::size_t replica) { return ReplicaId{replica + 1}; }

// A Spec provides: using T, Value; kKinds, kKeys; T Apply(op, T&, replica);
// void Record(op, oracle, op_id, replica) (kills, then creates);
// static Value ValueOf(const T&); static Value Expected(alive units).
// With client contexts it also provides kSeenKinds and
//   T ApplySeen(op, const T& read, T& target, replica);
//   void RecordSeen(op, oracle, op_id, read units) (KillSeen, then creates).
template <class Spec>
void CheckConvergence() {
  EXPECT_TRUE(rc::check([] {
    using T = typename Spec::T;
    struct Message {
      T delta;
      std::size_t to;
      int op;
    };
    struct Read {
      T state;
      std::vector<std::size_t> units;
    };
    constexpr bool kSeen = requires { Spec::kSeenKinds; };
    const auto n = *rc::gen::inRange<std::size_t>(2, 6);
    std::vector<T> replicas(n);
    ObservedRemoveOracle oracle(n);
    std::vector<Message> network;
    std::vector<Read> reads;
    const auto check = [&](std::size_t r) {
      RC_ASSERT(Spec::ValueOf(replicas[r]) == Spec::Expected(oracle.AliveAt(r)));
    };
    const auto send = [&](const T& delta, std::size_t from, int id) {
      for (std::size_t to = 0; to < n; ++to) {
        if (to != from) network.push_back(Message{delta, to, id});
      }
    };
    const int steps = *rc::gen::inRange(1, 80);
    for (int s = 0; s < steps; ++s) {
      const int action = *rc::gen::inRange(0, kSeen ? 13 : 10);
      if (action == 10) {  // a client reads a replica
        const auto r = *rc::gen::inRange<std::size_t>(0, n);
        reads.push_back(Read{replicas[r], oracle.AliveIndicesAt(r)});
      } else if (action >= 11 && !reads.empty()) {  // ... and acts on it at any replica
        if constexpr (kSeen) {
          const auto op = *rc::gen::construct<NetOp>(
              rc::gen::inRange(0, Spec::kSeenKinds), rc::gen::inRange(0, Spec::kKeys),
              rc::gen::inRange(0, Spec::kKeys), rc::gen::inRange<std::uint64_t>(0, 9));
          const Read& read = reads[*rc::gen::inRange<std::size_t>(0, reads.size())];
          const auto r = *rc::gen::inRange<std::size_t>(0, n);
          const int id = oracle.Begin(r);
          Spec::RecordSeen(op, oracle, id, read.units);
          send(Spec::ApplySeen(op, read.state, replicas[r], r), r, id);
          check(r);
        }
      } else if (action <= 3 || action >= 10 || network.empty()) {
        const auto op = *rc::gen::construct<NetOp>(
            rc::gen::inRange(0, Spec::kKinds), rc::gen::inRange(0, Spec::kKeys),
            rc::gen::inRange(0, Spec::kKeys), rc::gen::inRange<std::uint64_t>(0, 9));
        const auto r = *rc::gen::inRange<std::size_t>(0, n);
        const int id = oracle.Begin(r);
        Spec::Record(op, oracle, id, r);
        send(Spec::Apply(op, replicas[r], r), r, id);
        check(r);
      } else if (action <= 6) {  // deliver
        const auto m = *rc::gen::inRange<std::size_t>(0, network.size());
        const Message msg = network[m];
        network.erase(network.begin() + static_cast<std::ptrdiff_t>(m));
        replicas[msg.to].Join(msg.delta);
        oracle.Deliver(msg.op, msg.to);
        check(msg.to);
      } else if (action == 7) {  // duplicate
        const auto m = *rc::gen::inRange<std::size_t>(0, network.size());
        network.push_back(network[m]);
      } else if (action == 8) {  // drop
        const auto m = *rc::gen::inRange<std::size_t>(0, network.size());
        network.erase(network.begin() + static_cast<std::ptrdiff_t>(m));
      } else {  // anti-entropy: a full-state join
        const auto into = *rc::gen::inRange<std::size_t>(0, n);
        const auto from = *rc::gen::inRange<std::size_t>(0, n);
        replicas[into].Join(replicas[from]);
        oracle.Merge(into, from);
        check(into);
      }
    }
    // Drain the network in a random order.
    while (!network.empty()) {
      const auto m = *rc::gen::inRange<std::size_t>(0, network.size());
      replicas[network[m].to].Join(network[m].delta);
      oracle.Deliver(network[m].op, network[m].to);
      network.erase(network.begin() + static_cast<std::ptrdiff_t>(m));
    }
    // Repair what was dropped by full-state exchange through replica 0.
    for (std::size_t r = 1; r < n; ++r) {
      replicas[0].Join(replicas[r]);
      oracle.Merge(0, r);
    }
    for (std::size_t r = 1; r < n; ++r) {
      replicas[r].Join(replicas[0]);
      oracle.Merge(r, 0);
    }
    for (std::size_t r = 0; r < n; ++r) {
      RC_ASSERT(replicas[r] == replicas[0]);
      check(r);
    }
  }));
}

// ---- Specs ----------------------------------------------------------------

struct OrSetSpec {
  using T = OrSet<int>;
  using Value = std::vector<int>;
  static constexpr int kKinds = 6, kKeys = 12;
  static T Apply(const NetOp& op, T& s, std::size_t r) {
    if (op.kind == 0) return s.Clear();
    if (op.kind <= 2) return s.Remove(op.key);
    return s.Add(Id(r), op.key);
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    o.Kill(id, r, op.kind == 0 ? Path{} : Path{op.key});
    if (op.kind > 2) o.Create(id, {op.key}, 1);
  }
  static constexpr int kSeenKinds = 4;
  static T ApplySeen(const NetOp& op, const T& read, T& s, std::size_t) {
    return op.kind == 0 ? s.Clear(read.LiveDots()) : s.Remove(op.key, read.DotsOf(op.key));
  }
  static void RecordSeen(const NetOp& op, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    o.KillSeen(id, read, op.kind == 0 ? Path{} : Path{op.key});
  }
  static Value ValueOf(const T& s) { return s.Elements(); }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    std::set<int> elements;
    for (const auto& u : alive) elements.insert(u.path[0]);
    return Value(elements.begin(), elements.end());
  }
};

struct EwFlagSpec {
  using T = EwFlag;
  using Value = bool;
  static constexpr int kKinds = 2, kKeys = 1;
  static T Apply(const NetOp& op, T& f, std::size_t r) {
    return op.kind == 0 ? f.Enable(Id(r)) : f.Disable();
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    o.Kill(id, r, {});
    if (op.kind == 0) o.Create(id, {}, 1);
  }
  static constexpr int kSeenKinds = 1;
  static T ApplySeen(const NetOp&, const T& read, T& f, std::size_t) {
    return f.Disable(read.LiveDots());
  }
  static void RecordSeen(const NetOp&, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    o.KillSeen(id, read, {});
  }
  static Value ValueOf(const T& f) { return f.Value(); }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    return !alive.empty();
  }
};

struct MvRegisterSpec {
  using T = MvRegister<int>;
  using Value = std::vector<int>;
  static constexpr int kKinds = 4, kKeys = 4;
  static T Apply(const NetOp& op, T& reg, std::size_t r) {
    return op.kind == 0 ? reg.Clear() : reg.Assign(Id(r), op.key);
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    o.Kill(id, r, {});
    if (op.kind != 0) o.Create(id, {}, static_cast<std::uint64_t>(op.key));
  }
  static constexpr int kSeenKinds = 4;
  static T ApplySeen(const NetOp& op, const T& read, T& reg, std::size_t r) {
    return op.kind == 0 ? reg.Clear(read.LiveDots()) : reg.Assign(Id(r), op.key, read.LiveDots());
  }
  static void RecordSeen(const NetOp& op, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    o.KillSeen(id, read, {});
    if (op.kind != 0) o.Create(id, {}, static_cast<std::uint64_t>(op.key));
  }
  static Value ValueOf(const T& reg) { return reg.Values(); }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    Value values;
    for (const auto& u : alive) values.push_back(static_cast<int>(u.amount));
    std::sort(values.begin(), values.end());
    return values;
  }
};

struct CausalCounterSpec {
  using T = CausalCounter;
  using Value = std::uint64_t;
  static constexpr int kKinds = 5, kKeys = 1;
  static T Apply(const NetOp& op, T& c, std::size_t r) {
    if (op.kind == 0) return c.Reset();
    if (op.kind == 1) return c.Set(Id(r), op.n);
    return c.Increment(Id(r), op.n);
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    if (op.kind <= 1) o.Kill(id, r, {});
    if (op.kind >= 1 && op.n > 0) o.Create(id, {}, op.n);
  }
  static constexpr int kSeenKinds = 3;
  static T ApplySeen(const NetOp& op, const T& read, T& c, std::size_t r) {
    return op.kind == 0 ? c.Reset(read.LiveDots()) : c.Set(Id(r), op.n, read.LiveDots());
  }
  static void RecordSeen(const NetOp& op, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    o.KillSeen(id, read, {});
    if (op.kind != 0 && op.n > 0) o.Create(id, {}, op.n);
  }
  static Value ValueOf(const T& c) { return c.Value(); }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    Value sum = 0;
    for (const auto& u : alive) sum += u.amount;
    return sum;
  }
};

// The cart: the Dynamo cases (concurrent add/remove, increments on two sides,
// remove concurrent with an increment) all arise here at random.
struct CartSpec {
  using T = OrMap<int, CausalCounter>;
  using Value = std::map<int, std::uint64_t>;
  static constexpr int kKinds = 8, kKeys = 12;
  static T Apply(const NetOp& op, T& cart, std::size_t r) {
    switch (op.kind) {
      case 0:
        return cart.Clear();
      case 1:
      case 2:
        return cart.Remove(op.key);
      case 3:
        return cart.Update(op.key, [&](CausalCounter& q) { return q.Set(Id(r), op.n); });
      default:
        return cart.Update(op.key, [&](CausalCounter& q) { return q.Increment(Id(r), op.n); });
    }
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    if (op.kind == 0) o.Kill(id, r, {});
    if (op.kind >= 1 && op.kind <= 3) o.Kill(id, r, {op.key});
    if (op.kind >= 3 && op.n > 0) o.Create(id, {op.key}, op.n);
  }
  // The cart API with a Cart-Context: empty the cart, delete a line, set a
  // line's quantity — each as the client's read saw it.
  static constexpr int kSeenKinds = 5;
  static T ApplySeen(const NetOp& op, const T& read, T& cart, std::size_t r) {
    switch (op.kind) {
      case 0:
        return cart.Clear(read.LiveDots());
      case 1:
      case 2:
        return cart.Remove(op.key, read.DotsOf(op.key));
      default:
        return cart.Update(
            op.key, [&](CausalCounter& q) { return q.Set(Id(r), op.n, read.DotsOf(op.key)); });
    }
  }
  static void RecordSeen(const NetOp& op, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    o.KillSeen(id, read, op.kind == 0 ? Path{} : Path{op.key});
    if (op.kind >= 3 && op.n > 0) o.Create(id, {op.key}, op.n);
  }
  static Value ValueOf(const T& cart) {
    Value v;
    cart.ForEach([&](int sku, const CausalCounter& q) { v[sku] = q.Value(); });
    return v;
  }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    Value v;
    for (const auto& u : alive) v[u.path[0]] += u.amount;
    return v;
  }
};

// Nested maps: key -> sub-key -> enable-wins flag.
struct NestedSpec {
  using Inner = OrMap<int, EwFlag>;
  using T = OrMap<int, Inner>;
  using Value = std::set<std::pair<int, int>>;
  static constexpr int kKinds = 7, kKeys = 10;
  static T Apply(const NetOp& op, T& m, std::size_t r) {
    switch (op.kind) {
      case 0:
        return m.Clear();
      case 1:
        return m.Remove(op.key);
      case 2:
        return m.Update(op.key, [&](Inner& in) { return in.Remove(op.sub); });
      case 3:
        return m.Update(op.key, [&](Inner& in) {
          return in.Update(op.sub, [](EwFlag& f) { return f.Disable(); });
        });
      default:
        return m.Update(op.key, [&](Inner& in) {
          return in.Update(op.sub, [&](EwFlag& f) { return f.Enable(Id(r)); });
        });
    }
  }
  static void Record(const NetOp& op, ObservedRemoveOracle& o, int id, std::size_t r) {
    if (op.kind == 0) o.Kill(id, r, {});
    if (op.kind == 1) o.Kill(id, r, {op.key});
    if (op.kind >= 2) o.Kill(id, r, {op.key, op.sub});
    if (op.kind >= 4) o.Create(id, {op.key, op.sub}, 1);
  }
  static constexpr int kSeenKinds = 4;
  static T ApplySeen(const NetOp& op, const T& read, T& m, std::size_t) {
    switch (op.kind) {
      case 0:
        return m.Clear(read.LiveDots());
      case 1:
        return m.Remove(op.key, read.DotsOf(op.key));
      case 2:
        return m.Update(op.key, [&](Inner& in) {
          return in.Remove(op.sub, read.Get(op.key).value_or(Inner{}).DotsOf(op.sub));
        });
      default:
        return m.Update(op.key, [&](Inner& in) {
          return in.Update(op.sub, [&](EwFlag& f) {
            const std::optional<Inner> inner = read.Get(op.key);
            return f.Disable(inner ? inner->DotsOf(op.sub) : CausalContext{});
          });
        });
    }
  }
  static void RecordSeen(const NetOp& op, ObservedRemoveOracle& o, int id,
                         const std::vector<std::size_t>& read) {
    if (op.kind == 0) o.KillSeen(id, read, {});
    if (op.kind == 1) o.KillSeen(id, read, {op.key});
    if (op.kind >= 2) o.KillSeen(id, read, {op.key, op.sub});
  }
  static Value ValueOf(const T& m) {
    Value v;
    m.ForEach([&](int k, const Inner& inner) {
      inner.ForEach([&](int sub, const EwFlag& f) {
        if (f.Value()) v.insert({k, sub});
      });
    });
    return v;
  }
  static Value Expected(const std::vector<ObservedRemoveOracle::Unit>& alive) {
    Value v;
    for (const auto& u : alive) v.insert({u.path[0], u.path[1]});
    return v;
  }
};

TEST(Convergence, OrSet) { CheckConvergence<OrSetSpec>(); }
TEST(Convergence, EwFlag) { CheckConvergence<EwFlagSpec>(); }
TEST(Convergence, MvRegister) { CheckConvergence<MvRegisterSpec>(); }
TEST(Convergence, CausalCounter) { CheckConvergence<CausalCounterSpec>(); }
TEST(Convergence, Cart) { CheckConvergence<CartSpec>(); }
TEST(Convergence, NestedOrMap) { CheckConvergence<NestedSpec>(); }

// Counters and LWW have no removes; their oracle is arithmetic on the
// operations each replica knows.
TEST(Convergence, CountersAndLwwUnderLossDuplicationAndReordering) {
  EXPECT_TRUE(rc::check([] {
    const auto n = *rc::gen::inRange<std::size_t>(2, 6);
    std::vector<GCounter> g(n);
    std::vector<PnCounter> pn(n);
    std::vector<LwwRegister<int>> lww(n);
    struct Message {
      GCounter g;
      PnCounter pn;
      LwwRegister<int> lww;
      std::size_t to;
    };
    std::vector<Message> network;
    std::uint64_t g_total = 0;
    std::int64_t pn_total = 0;
    std::optional<std::tuple<HlcTimestamp, ReplicaId, int>> lww_winner;
    const int steps = *rc::gen::inRange(1, 80);
    for (int s = 0; s < steps; ++s) {
      const int action = *rc::gen::inRange(0, 8);
      if (action <= 3 || network.empty()) {
        const auto r = *rc::gen::inRange<std::size_t>(0, n);
        const auto amount = *rc::gen::inRange<std::uint64_t>(0, 50);
        const bool up = *rc::gen::arbitrary<bool>();
        const HlcTimestamp ts{*rc::gen::inRange<std::uint64_t>(0, 8), 0};
        const int value = *rc::gen::inRange(0, 100);
        Message m{g[r].Increment(Id(r), amount),
                  up ? pn[r].Increment(Id(r), amount) : pn[r].Decrement(Id(r), amount),
                  lww[r].Assign(Id(r), ts, value), 0};
        g_total += amount;
        pn_total += up ? static_cast<std::int64_t>(amount) : -static_cast<std::int64_t>(amount);
        const auto candidate = std::make_tuple(ts, Id(r), value);
        if (!lww_winner || *lww_winner < candidate) lww_winner = candidate;
        for (std::size_t to = 0; to < n; ++to) {
          if (to == r) continue;
          m.to = to;
          network.push_back(m);
        }
      } else if (action <= 5) {
        const auto i = *rc::gen::inRange<std::size_t>(0, network.size());
        const Message m = network[i];
        network.erase(network.begin() + static_cast<std::ptrdiff_t>(i));
        g[m.to].Join(m.g);
        pn[m.to].Join(m.pn);
        lww[m.to].Join(m.lww);
      } else if (action == 6) {
        network.push_back(network[*rc::gen::inRange<std::size_t>(0, network.size())]);
      } else {
        network.erase(network.begin() + static_cast<std::ptrdiff_t>(
                                            *rc::gen::inRange<std::size_t>(0, network.size())));
      }
    }
    for (std::size_t r = 0; r < n; ++r) {  // anti-entropy through replica 0
      g[0].Join(g[r]);
      pn[0].Join(pn[r]);
      lww[0].Join(lww[r]);
    }
    for (std::size_t r = 0; r < n; ++r) {
      g[r].Join(g[0]);
      pn[r].Join(pn[0]);
      lww[r].Join(lww[0]);
      RC_ASSERT(g[r] == g[0]);
      RC_ASSERT(pn[r] == pn[0]);
      RC_ASSERT(lww[r] == lww[0]);
      RC_ASSERT(g[r].Value() == g_total);
      RC_ASSERT(pn[r].Value() == pn_total);
      if (lww_winner) {
        RC_ASSERT(lww[r].Value() != nullptr);
        RC_ASSERT(*lww[r].Value() == std::get<2>(*lww_winner));
      }
    }
  }));
}

}  // namespace
}  // namespace converge::crdt
