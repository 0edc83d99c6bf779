#include "crdt/relabel.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "crdt/causal_counter.h"
#include "crdt/g_counter.h"
#include "crdt/or_map.h"
#include "crdt/or_set.h"
#include "crdt/pn_counter.h"

namespace converge::crdt {
namespace {

constexpr ReplicaId kLive{1};
constexpr ReplicaId kOld1{7};
constexpr ReplicaId kOld2{9};

using StringSet = OrSet<std::string>;
using Cart = OrMap<std::string, CausalCounter>;

template <class T>
T Renamed(const T& value, const T& state, std::vector<ReplicaId> retired) {
  return Relabel(value, PlanRelabel(state, retired), /*state=*/false);
}

TEST(RelabelTest, RetiredIdsBecomeOneArchiveRunAndTheSetKeepsItsElements) {
  StringSet s;
  s.Add(kOld1, "a");
  s.Add(kOld1, "b");
  s.Add(kOld2, "c");
  s.Add(kLive, "d");
  s.Remove("b");
  const std::vector<ReplicaId> retired{kOld1, kOld2};
  const StringSet r = Relabel(s, PlanRelabel(s, retired), true);
  EXPECT_EQ(r.Elements(), (std::vector<std::string>{"a", "c", "d"}));
  // Context: the live id and one archive run of 2 + 1 dots.
  ASSERT_EQ(r.context().vector().size(), 2u);
  EXPECT_EQ(r.context().Max(kArchiveReplica), 3u);
  EXPECT_TRUE(r.context().cloud().empty());
  EXPECT_EQ(ReplicasOf(r), (std::vector<ReplicaId>{kLive, kArchiveReplica}));
  // A second pruning appends after the archive's run.
  StringSet more = r;
  more.Add(kOld2, "e");  // (as if an id retired later had written)
  const StringSet again = Relabel(more, PlanRelabel(more, std::vector{kOld2}), true);
  EXPECT_EQ(again.context().Max(kArchiveReplica), 3u + 1u);
  EXPECT_TRUE(again.Contains("e"));
}

// Renaming with one plan commutes with join: members that rename at
// different times (and deltas renamed in flight) end where a member that
// joined first and renamed after ends. Random histories of three replicas,
// two of whose ids retire; the fence is that every replica holds every dot
// of the retired ids.
TEST(RelabelTest, RenamingCommutesWithJoinForRandomHistories) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::vector<StringSet> replicas(3);
    std::vector<ReplicaId> ids{kOld1, kOld2, kLive};
    std::vector<StringSet> deltas;
    std::vector<std::size_t> made_at;
    for (int op = 0; op < 30; ++op) {
      const std::size_t at = rng() % 3;
      const std::string element(1, static_cast<char>('a' + rng() % 6));
      StringSet delta =
          (rng() % 3 == 0) ? replicas[at].Remove(element) : replicas[at].Add(ids[at], element);
      // Deliver to a random other replica, or not at all.
      const std::size_t to = rng() % 3;
      replicas[to].Join(delta);
      deltas.push_back(delta);
      made_at.push_back(at);
    }
    // The fence: all retired dots everywhere (the third replica's own
    // updates need not have spread).
    StringSet retired_part;
    for (std::size_t i = 0; i < deltas.size(); ++i) {
      if (ids[made_at[i]] != kLive) retired_part.Join(deltas[i]);
    }
    for (StringSet& r : replicas) r.Join(retired_part);
    const std::vector<ReplicaId> retired{kOld1, kOld2};
    // Each replica renames with its own plan: equal, because the fence holds.
    std::vector<StringSet> renamed;
    for (const StringSet& r : replicas) {
      renamed.push_back(Relabel(r, PlanRelabel(r, retired), true));
    }
    StringSet joined_then_renamed;
    for (const StringSet& r : replicas) joined_then_renamed.Join(r);
    joined_then_renamed =
        Relabel(joined_then_renamed, PlanRelabel(joined_then_renamed, retired), true);
    // Restoring undoes the renaming.
    for (std::size_t i = 0; i < replicas.size(); ++i) {
      ASSERT_EQ(Relabel(renamed[i], PlanRelabel(replicas[i], retired, RelabelMode::kRestore), true),
                replicas[i]);
    }
    StringSet renamed_then_joined;
    for (const StringSet& r : renamed) renamed_then_joined.Join(r);
    ASSERT_EQ(renamed_then_joined, joined_then_renamed) << "round " << round;
    // A delta renamed with the state's plan joins into a renamed state as
    // the original joins into the original.
    for (const StringSet& d : deltas) {
      StringSet before = replicas[0];
      before.Join(d);
      const StringSet expect = Relabel(before, PlanRelabel(replicas[0], retired), true);
      StringSet after = renamed[0];
      after.Join(Renamed(d, replicas[0], retired));
      ASSERT_EQ(after, expect) << "round " << round;
    }
  }
}

TEST(RelabelTest, CartQuantitiesSurviveAndRemovalsStayRemoved) {
  Cart a;
  a.Update("apple", [&](CausalCounter& q) { return q.Increment(kOld1, 2); });
  a.Update("pear", [&](CausalCounter& q) { return q.Increment(kOld2, 5); });
  Cart b = a;
  const Cart removal = b.Remove("pear");  // b removes pear; a has not seen it yet
  const std::vector<ReplicaId> retired{kOld1, kOld2};
  const Cart ra = Relabel(a, PlanRelabel(a, retired), true);
  const Cart rb = Relabel(b, PlanRelabel(b, retired), true);
  Cart joined = ra;
  joined.Join(rb);
  EXPECT_EQ(joined.Keys(), (std::vector<std::string>{"apple"}));
  EXPECT_EQ(joined.Get("apple")->Value(), 2u);
  // The removal delta, renamed with a's plan, removes pear at a too.
  Cart late = ra;
  late.Join(Renamed(removal, a, retired));
  EXPECT_EQ(late.Keys(), (std::vector<std::string>{"apple"}));
  EXPECT_EQ(ReplicasOf(joined), (std::vector<ReplicaId>{kArchiveReplica}));
}

TEST(RelabelTest, CountersFoldRetiredEntriesIntoTheArchive) {
  GCounter g;
  g.Increment(kOld1, 3);
  g.Increment(kOld2, 4);
  g.Increment(kLive, 5);
  const std::vector<ReplicaId> retired{kOld1, kOld2};
  const RelabelPlan plan = PlanRelabel(g, retired);
  const GCounter r = Relabel(g, plan, true);
  EXPECT_EQ(r.Value(), 12u);
  EXPECT_EQ(Relabel(r, PlanRelabel(g, retired, RelabelMode::kRestore), true), g);
  EXPECT_EQ(ReplicasOf(r), (std::vector<ReplicaId>{kLive, kArchiveReplica}));
  // A delta loses the retired entries only; joining it changes nothing.
  GCounter delta;
  delta.Increment(kOld1, 3);
  GCounter joined = r;
  joined.Join(Relabel(delta, plan, false));
  EXPECT_EQ(joined, r);
  // A second pruning adds to the archive.
  GCounter later = r;
  later.Increment(kOld1, 1);  // (an id retired later)
  const GCounter again = Relabel(later, PlanRelabel(later, std::vector{kOld1}), true);
  EXPECT_EQ(again.Value(), 13u);

  PnCounter pn;
  pn.Increment(kOld1, 10);
  pn.Decrement(kOld1, 4);
  pn.Increment(kLive, 1);
  const PnCounter rp = Relabel(pn, PlanRelabel(pn, retired), true);
  EXPECT_EQ(rp.Value(), 7);
  EXPECT_EQ(Relabel(rp, PlanRelabel(pn, retired, RelabelMode::kRestore), true), pn);
  EXPECT_EQ(ReplicasOf(rp), (std::vector<ReplicaId>{kLive, kArchiveReplica}));
}

TEST(RelabelTest, StrippingDropsTheRetiredIdsAndKeepsTheRest) {
  StringSet s;
  s.Add(kOld1, "a");
  s.Add(kLive, "b");
  const StringSet r = Relabel(s, PlanRelabel(s, std::vector{kOld1}, RelabelMode::kStrip), true);
  EXPECT_EQ(r.Elements(), (std::vector<std::string>{"b"}));
  EXPECT_EQ(ReplicasOf(r), (std::vector<ReplicaId>{kLive}));
  EXPECT_EQ(RelabelFigures(s, std::vector{kOld1}), (std::vector<std::uint64_t>{1, 0}));
}

}  // namespace
}  // namespace converge::crdt
