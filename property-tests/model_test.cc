// Reference models: each type against its sequential specification.
//
// 1 to 3 replicas take turns applying random operations; every delta is
// joined into every other replica at once, so the execution is sequential
// and each replica's value must equal a plain C++ model (std::set, std::map,
// an integer) after every step.

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
#include <vector>

#include "crdt/crdt.h"

namespace converge::crdt {
namespace {

// A generic operation: the spec interprets the fields.
struct ModelOp {
  int kind = 0;
  int key = 0;
  int sub = 0;
  std::uint64_t n = 0;
};

void showValue(const ModelOp& op, std::ostream& os) {
  os << "{kind=" << op.kind << " key=" << op.key << " sub=" << op.sub << " n=" << op.n << "}";
}

rc::Gen<ModelOp> GenOps(int kinds, int keys) {
  return rc::gen::construct<ModelOp>(rc::gen::inRange(0, kinds), rc::gen::inRange(0, keys),
                                     rc::gen::inRange(0, keys),
                                     rc::gen::inRange<std::uint64_t>(0, 20));
}

// Runs the sequential execution for one Spec. A Spec provides:
//   using T, Model; static constexpr int kKinds, kKeys;
//   explicit Spec(std::size_t replicas);
//   T Apply(const ModelOp&, T&, std::size_t replica);   // mutate, return delta
//   void ApplyModel(const ModelOp&, Model&);
//   void Delivered(const T& delta, std::size_t replica);  // optional hook
//   static Model ValueOf(const T&);
template <class Spec>
void CheckSequentialModel() {
  EXPECT_TRUE(rc::check([] {
    const auto n = *rc::gen::inRange<std::size_t>(1, 4);
    Spec spec(n);
    std::vector<typename Spec::T> replicas(n);
    typename Spec::Model model{};
    const int steps = *rc::gen::inRange(1, 60);
    for (int s = 0; s < steps; ++s) {
      const auto op = *GenOps(Spec::kKinds, Spec::kKeys);
      const auto i = *rc::gen::inRange<std::size_t>(0, n);
      const typename Spec::T delta = spec.Apply(op, replicas[i], i);
      spec.ApplyModel(op, model);
      for (std::size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        replicas[j].Join(delta);
        spec.Delivered(delta, j);
      }
      for (const auto& r : replicas) RC_ASSERT(Spec::ValueOf(r) == model);
    }
  }));
}

ReplicaId Id(std::size_t replica) { return ReplicaId{replica + 1}; }

struct NoHooks {
  explicit NoHooks(std::size_t) {}
  template <class T>
  void Delivered(const T&, std::size_t) {}
};

struct GCounterSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = GCounter;
  using Model = std::uint64_t;
  static constexpr int kKinds = 1, kKeys = 1;
  T Apply(const ModelOp& op, T& c, std::size_t r) { return c.Increment(Id(r), op.n); }
  void ApplyModel(const ModelOp& op, Model& m) { m += op.n; }
  static Model ValueOf(const T& c) { return c.Value(); }
};

struct PnCounterSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = PnCounter;
  using Model = std::int64_t;
  static constexpr int kKinds = 2, kKeys = 1;
  T Apply(const ModelOp& op, T& c, std::size_t r) {
    return op.kind == 0 ? c.Increment(Id(r), op.n) : c.Decrement(Id(r), op.n);
  }
  void ApplyModel(const ModelOp& op, Model& m) {
    m += op.kind == 0 ? static_cast<std::int64_t>(op.n) : -static_cast<std::int64_t>(op.n);
  }
  static Model ValueOf(const T& c) { return c.Value(); }
};

// LWW with one hybrid logical clock per replica, all reading one physical
// clock that sometimes jumps backward. Replicas observe the timestamps they
// receive, so in a sequential execution the last assignment always wins —
// even when physical time went back.
struct LwwSpec {
  using T = LwwRegister<int>;
  using Model = std::optional<int>;
  static constexpr int kKinds = 3, kKeys = 5;
  explicit LwwSpec(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) clocks.emplace_back([this] { return physical; });
  }
  LwwSpec(const LwwSpec&) = delete;
  LwwSpec& operator=(const LwwSpec&) = delete;
  T Apply(const ModelOp& op, T& reg, std::size_t r) {
    if (op.kind == 1) physical += op.n;                          // time passes
    if (op.kind == 2) physical -= std::min(physical, op.n * 7);  // clock jumps back
    return reg.Assign(Id(r), clocks[r], op.key);
  }
  void ApplyModel(const ModelOp& op, Model& m) { m = op.key; }
  void Delivered(const T& delta, std::size_t r) {
    ASSERT_TRUE(delta.write().has_value());
    ASSERT_TRUE(clocks[r].Observe(delta.write()->timestamp).has_value());
  }
  static Model ValueOf(const T& reg) {
    return reg.Value() == nullptr ? std::nullopt : std::optional<int>(*reg.Value());
  }
  std::uint64_t physical = 1'000'000;
  std::vector<Hlc> clocks;
};

struct MvRegisterSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = MvRegister<int>;
  using Model = std::vector<int>;
  static constexpr int kKinds = 4, kKeys = 5;
  T Apply(const ModelOp& op, T& reg, std::size_t r) {
    return op.kind == 0 ? reg.Clear() : reg.Assign(Id(r), op.key);
  }
  void ApplyModel(const ModelOp& op, Model& m) { m = op.kind == 0 ? Model{} : Model{op.key}; }
  static Model ValueOf(const T& reg) { return reg.Values(); }
};

struct EwFlagSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = EwFlag;
  using Model = bool;
  static constexpr int kKinds = 2, kKeys = 1;
  T Apply(const ModelOp& op, T& f, std::size_t r) {
    return op.kind == 0 ? f.Enable(Id(r)) : f.Disable();
  }
  void ApplyModel(const ModelOp& op, Model& m) { m = op.kind == 0; }
  static Model ValueOf(const T& f) { return f.Value(); }
};

struct CausalCounterSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = CausalCounter;
  using Model = std::uint64_t;
  static constexpr int kKinds = 4, kKeys = 1;
  T Apply(const ModelOp& op, T& c, std::size_t r) {
    switch (op.kind) {
      case 0:
        return c.Reset();
      case 1:
        return c.Set(Id(r), op.n);
      default:
        return c.Increment(Id(r), op.n);
    }
  }
  void ApplyModel(const ModelOp& op, Model& m) {
    m = op.kind == 0 ? 0 : op.kind == 1 ? op.n : m + op.n;
  }
  static Model ValueOf(const T& c) { return c.Value(); }
};

struct OrSetSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = OrSet<std::string>;
  using Model = std::set<std::string>;
  static constexpr int kKinds = 7, kKeys = 15;
  static std::string Element(int k) { return std::string("e").append(std::to_string(k)); }
  T Apply(const ModelOp& op, T& s, std::size_t r) {
    if (op.kind == 0) return s.Clear();
    if (op.kind <= 3) return s.Remove(Element(op.key));
    return s.Add(Id(r), Element(op.key));
  }
  void ApplyModel(const ModelOp& op, Model& m) {
    if (op.kind == 0) {
      m.clear();
    } else if (op.kind <= 3) {
      m.erase(Element(op.key));
    } else {
      m.insert(Element(op.key));
    }
  }
  static Model ValueOf(const T& s) {
    const std::vector<std::string> elements = s.Elements();
    return Model(elements.begin(), elements.end());
  }
};

// The cart: sku -> quantity.
struct CartSpec : NoHooks {
  using NoHooks::NoHooks;
  using T = OrMap<std::string, CausalCounter>;
  using Model = std::map<std::string, std::uint64_t>;
  static constexpr int kKinds = 8, kKeys = 12;
  static std::string Sku(int k) { return "sku-" + std::to_string(k); }
  T Apply(const ModelOp& op, T& cart, std::size_t r) {
    const std::string sku = Sku(op.key);
    switch (op.kind) {
      case 0:
        return cart.Clear();
      case 1:
      case 2:
        return cart.Remove(sku);
      case 3:
        return cart.Update(sku, [&](CausalCounter& q) { return q.Set(Id(r), op.n); });
      case 4:
        return cart.Update(sku, [&](CausalCounter& q) { return q.Reset(); });
      default:
        return cart.Update(sku, [&](CausalCounter& q) { return q.Increment(Id(r), op.n); });
    }
  }
  void ApplyModel(const ModelOp& op, Model& m) {
    const std::string sku = Sku(op.key);
    switch (op.kind) {
      case 0:
        m.clear();
        break;
      case 1:
      case 2:
      case 4:
        m.erase(sku);
        break;
      case 3:
        if (op.n == 0) {
          m.erase(sku);
        } else {
          m[sku] = op.n;
        }
        break;
      default:
        if (op.n > 0) m[sku] += op.n;
    }
  }
  static Model ValueOf(const T& cart) {
    Model m;
    cart.ForEach([&](const std::string& sku, const CausalCounter& q) { m[sku] = q.Value(); });
    return m;
  }
};

// Nested maps: key -> set of enabled flags.
struct NestedSpec : NoHooks {
  using NoHooks::NoHooks;
  using Inner = OrMap<int, EwFlag>;
  using T = OrMap<int, Inner>;
  using Model = std::map<int, std::set<int>>;
  static constexpr int kKinds = 6, kKeys = 10;
  T Apply(const ModelOp& op, T& m, std::size_t r) {
    switch (op.kind) {
      case 0:
        return m.Remove(op.key);
      case 1:
        return m.Update(op.key, [&](Inner& in) { return in.Remove(op.sub); });
      case 2:
        return m.Update(op.key, [&](Inner& in) {
          return in.Update(op.sub, [](EwFlag& f) { return f.Disable(); });
        });
      default:
        return m.Update(op.key, [&](Inner& in) {
          return in.Update(op.sub, [&](EwFlag& f) { return f.Enable(Id(r)); });
        });
    }
  }
  void ApplyModel(const ModelOp& op, Model& m) {
    if (op.kind == 0) {
      m.erase(op.key);
    } else if (op.kind <= 2) {
      if (auto it = m.find(op.key); it != m.end()) {
        it->second.erase(op.sub);
        if (it->second.empty()) m.erase(it);
      }
    } else {
      m[op.key].insert(op.sub);
    }
  }
  static Model ValueOf(const T& m) {
    Model model;
    m.ForEach([&](int k, const Inner& inner) {
      inner.ForEach([&](int sub, const EwFlag& f) {
        if (f.Value()) model[k].insert(sub);
      });
    });
    return model;
  }
};

// The hybrid clock against its specification, with the far-future check
// judged against a reference (a replica's estimate of the cluster's time,
// docs/replication.md "Clocks"): a remote timestamp is accepted exactly when
// it is at most max_offset ahead of the later of the physical clock and the
// reference; an accepted one leaves the clock above it and above everything
// before; a refused one changes nothing; a reference behind the physical
// clock answers as the plain Observe does. Physical time moves both ways.
RC_GTEST_PROP(HlcModel, ObserveAgainstAReferenceFollowsTheSpecification, ()) {
  const std::uint64_t offset = *rc::gen::inRange<std::uint64_t>(1, 5'000);
  std::uint64_t physical = 1'000'000;
  Hlc clock([&physical] { return physical; }, offset);
  Hlc twin([&physical] { return physical; }, offset);  // fed the plain Observe
  const int steps = *rc::gen::inRange(1, 60);
  for (int i = 0; i < steps; ++i) {
    const int kind = *rc::gen::inRange(0, 4);
    if (kind == 0) {
      physical += *rc::gen::inRange<std::uint64_t>(0, 3'000);
      continue;
    }
    if (kind == 1) {
      physical -= std::min(physical, *rc::gen::inRange<std::uint64_t>(0, 3'000));
      continue;
    }
    const HlcTimestamp before = clock.Current();
    if (kind == 2) {
      const HlcTimestamp now = clock.Now();
      RC_ASSERT(now > before);
      RC_ASSERT(now.physical_ms >= physical);
      twin.Restore(now);
      continue;
    }
    const HlcTimestamp remote{physical + *rc::gen::inRange<std::uint64_t>(0, 3 * offset) -
                                  std::min(physical, *rc::gen::inRange<std::uint64_t>(0, offset)),
                              *rc::gen::inRange<std::uint32_t>(0, 5)};
    const bool behind = *rc::gen::arbitrary<bool>();
    const std::uint64_t reference =
        behind ? physical - std::min(physical, *rc::gen::inRange<std::uint64_t>(0, 2 * offset))
               : physical + *rc::gen::inRange<std::uint64_t>(0, 2 * offset);
    const bool acceptable = remote.physical_ms <= std::max(physical, reference) + offset;
    const std::optional<HlcTimestamp> got = clock.Observe(remote, reference);
    RC_ASSERT(got.has_value() == acceptable);
    if (got) {
      RC_ASSERT(*got > before);
      RC_ASSERT(*got > remote);
      RC_ASSERT(clock.Current() == *got);
    } else {
      RC_ASSERT(clock.Current() == before);
    }
    if (behind) {
      twin.Restore(before);
      RC_ASSERT(twin.Observe(remote).has_value() == acceptable);
    }
    twin.Restore(clock.Current());
  }
}

// The cart with client causal contexts, sequentially: a client reads the
// cart at some step and later deletes a line, sets a line's quantity or
// empties the cart with what it read, at any replica. The model keeps every
// addition as a unit; an operation with a read's context removes exactly the
// units that read held (the ones since removed stay removed, those added
// since survive), one without a context removes every unit of its target.
RC_GTEST_PROP(SequentialModel, CartWithClientContexts, ()) {
  using Cart = OrMap<int, CausalCounter>;
  using Units = std::map<int, std::map<int, std::uint64_t>>;  // sku -> unit -> amount
  struct Read {
    Cart cart;
    Units units;
  };
  const auto n = *rc::gen::inRange<std::size_t>(1, 4);
  std::vector<Cart> replicas(n);
  Units model;
  std::vector<Read> reads;
  int next_unit = 0;
  const auto kill = [&](int sku, const std::map<int, std::uint64_t>& units) {
    auto it = model.find(sku);
    if (it == model.end()) return;
    for (const auto& [u, amount] : units) it->second.erase(u);
    if (it->second.empty()) model.erase(it);
  };
  const int steps = *rc::gen::inRange(1, 60);
  for (int s = 0; s < steps; ++s) {
    const int kind = *rc::gen::inRange(0, 8);
    const int sku = *rc::gen::inRange(0, 6);
    const auto q = *rc::gen::inRange<std::uint64_t>(0, 5);
    const auto i = *rc::gen::inRange<std::size_t>(0, n);
    Cart& cart = replicas[i];
    const Read* read =
        reads.empty() ? nullptr : &reads[*rc::gen::inRange<std::size_t>(0, reads.size())];
    Cart delta;
    if (kind == 0) {  // add q
      delta = cart.Update(sku, [&](CausalCounter& c) { return c.Increment(Id(i), q); });
      if (q > 0) model[sku][next_unit++] = q;
    } else if (kind == 1) {  // set q, no context
      delta = cart.Update(sku, [&](CausalCounter& c) { return c.Set(Id(i), q); });
      model.erase(sku);
      if (q > 0) model[sku][next_unit++] = q;
    } else if (kind == 2) {  // delete, no context
      delta = cart.Remove(sku);
      model.erase(sku);
    } else if (kind == 3) {  // a client reads
      reads.push_back(Read{cart, model});
      continue;
    } else if (read == nullptr) {
      continue;
    } else if (kind == 4) {  // delete as read
      delta = cart.Remove(sku, read->cart.DotsOf(sku));
      if (auto it = read->units.find(sku); it != read->units.end()) kill(sku, it->second);
    } else if (kind == 5) {  // set q as read
      delta = cart.Update(
          sku, [&](CausalCounter& c) { return c.Set(Id(i), q, read->cart.DotsOf(sku)); });
      if (auto it = read->units.find(sku); it != read->units.end()) kill(sku, it->second);
      if (q > 0) model[sku][next_unit++] = q;
    } else {  // empty the cart as read
      delta = cart.Clear(read->cart.LiveDots());
      for (const auto& [k, units] : read->units) kill(k, units);
    }
    for (std::size_t j = 0; j < n; ++j) {
      if (j != i) replicas[j].Join(delta);
    }
    std::map<int, std::uint64_t> expected;
    for (const auto& [k, units] : model) {
      for (const auto& [u, amount] : units) expected[k] += amount;
    }
    for (const Cart& r : replicas) {
      std::map<int, std::uint64_t> value;
      r.ForEach([&](int k, const CausalCounter& c) { value[k] = c.Value(); });
      RC_ASSERT(value == expected);
    }
  }
}

TEST(SequentialModel, GCounter) { CheckSequentialModel<GCounterSpec>(); }
TEST(SequentialModel, PnCounter) { CheckSequentialModel<PnCounterSpec>(); }
TEST(SequentialModel, LwwRegisterWithHlc) { CheckSequentialModel<LwwSpec>(); }
TEST(SequentialModel, MvRegister) { CheckSequentialModel<MvRegisterSpec>(); }
TEST(SequentialModel, EwFlag) { CheckSequentialModel<EwFlagSpec>(); }
TEST(SequentialModel, CausalCounter) { CheckSequentialModel<CausalCounterSpec>(); }
TEST(SequentialModel, OrSet) { CheckSequentialModel<OrSetSpec>(); }
TEST(SequentialModel, CartOrMap) { CheckSequentialModel<CartSpec>(); }
TEST(SequentialModel, NestedOrMap) { CheckSequentialModel<NestedSpec>(); }

}  // namespace
}  // namespace converge::crdt
