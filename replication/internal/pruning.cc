#include "replication/internal/pruning.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <span>
#include <tuple>
#include <utility>

#include "crdt/relabel.h"

namespace converge::replication::internal {

namespace {

std::vector<crdt::ReplicaId> AsIds(const std::vector<std::uint64_t>& values) {
  std::vector<crdt::ReplicaId> out;
  out.reserve(values.size());
  for (const std::uint64_t v : values) out.emplace_back(v);
  return out;
}

std::string FiguresBytes(const std::vector<std::uint64_t>& figures) {
  std::string out;
  for (const std::uint64_t f : figures) out += records::Fixed64(f);
  return out;
}

}  // namespace

// --- messages -------------------------------------------------------------------------

void PruneMessage::Fill(wire::Prune::Builder out) const {
  out.setKind(kind);
  out.setNonce(nonce);
  out.setLevel(level);
  auto ids = out.initRetired(static_cast<unsigned>(retired.size()));
  for (unsigned i = 0; i < retired.size(); ++i) ids.set(i, retired[i]);
  out.setOk(ok);
  out.setSummary(summary);
  out.setMembers(members);
  auto summaries = out.initIdSummaries(static_cast<unsigned>(id_summaries.size()));
  for (unsigned i = 0; i < id_summaries.size(); ++i) summaries.set(i, id_summaries[i]);
  auto levels = out.initTail(static_cast<unsigned>(tail.size()));
  for (unsigned i = 0; i < tail.size(); ++i) {
    levels[i].setLevel(tail[i].level);
    levels[i].setNonce(tail[i].nonce);
    auto r = levels[i].initRetired(static_cast<unsigned>(tail[i].retired.size()));
    for (unsigned j = 0; j < tail[i].retired.size(); ++j) r.set(j, tail[i].retired[j]);
  }
}

PruneMessage PruneMessage::Read(wire::Prune::Reader in) {
  PruneMessage m;
  m.kind = in.getKind();
  m.nonce = in.getNonce();
  m.level = in.getLevel();
  for (const std::uint64_t id : in.getRetired()) m.retired.push_back(id);
  m.ok = in.getOk();
  m.summary = in.getSummary();
  m.members = in.getMembers();
  for (const std::uint64_t h : in.getIdSummaries()) m.id_summaries.push_back(h);
  for (const auto l : in.getTail()) {
    records::PruneLevelRecord level{l.getLevel(), l.getNonce(), {}};
    for (const std::uint64_t id : l.getRetired()) level.retired.push_back(id);
    m.tail.push_back(std::move(level));
  }
  return m;
}

// --- state ------------------------------------------------------------------------------

Status Pruning::Load(std::uint64_t self) {
  StatusOr<records::PruneRecord> record = records::LoadPrune(store_);
  if (!record.ok()) return record.status();
  record_ = std::move(record).value();
  Freeze(self);
  return Status::Ok();
}

Status Pruning::Persist() {
  storage::WriteBatch batch;
  records::PutPrune(batch, record_);
  return store_.Write(batch);
}

bool Pruning::Accepts(const std::string& from, std::uint64_t level) {
  peer_levels_[from] = level;
  peers_past_zero_ = peers_past_zero_ || level > 0;
  if (level == record_.level) return true;
  ++stats_.messages_other_level;
  return false;
}

std::vector<std::string> Pruning::Others() const {
  std::vector<std::string> out;
  for (const auto& [name, m] : membership_.members()) {
    out.push_back(name);  // one that left may come back with its data
  }
  return out;
}

std::uint64_t Pruning::MembersHash() const {
  std::vector<std::string> names = Others();
  names.push_back(options_.name);
  std::sort(names.begin(), names.end());
  std::uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (const std::string& n : names) h = crdt::internal::Mix64(h ^ Hash64(n, 0x11));
  return h;
}

// Hashes of our figures over every key (a key's figure of 0 left out), for
// the archive and for each id of `retired`: members whose hashes agree for
// an id rename it alike (with the archive's). `self`, our own current id,
// never agrees.
StatusOr<Pruning::Summaries> Pruning::Summarize(const std::vector<std::uint64_t>& retired,
                                                std::uint64_t self) const {
  const std::vector<crdt::ReplicaId> ids = AsIds(retired);
  Summaries out;
  out.archive = 0x5b3d;
  out.ids.assign(retired.size(), 0x5b3e);
  Status failed;
  Status scanned = store_.Scan("", "", [&](std::string_view key, std::string_view state) {
    StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(state);
    if (!type.ok()) {
      failed = type.status().WithContext("key '" + std::string(key) + "'");
      return false;
    }
    StatusOr<std::vector<std::uint64_t>> figures = (*type)->figures(state, ids);
    if (!figures.ok()) {
      failed = figures.status().WithContext("key '" + std::string(key) + "'");
      return false;
    }
    // Per id: one figure (causal types, GCounter) or two (PnCounter); the
    // archive's last.
    const std::size_t per = figures->size() / (ids.size() + 1);
    const auto mix = [&](std::uint64_t& h, std::size_t i) {
      const std::vector<std::uint64_t> mine(
          figures->begin() + static_cast<std::ptrdiff_t>(i * per),
          figures->begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
      if (std::all_of(mine.begin(), mine.end(), [](std::uint64_t f) { return f == 0; })) return;
      h = crdt::internal::Mix64(h ^ Hash64(key, 0x21) ^ Hash64(FiguresBytes(mine), 0x22));
    };
    if (per == 0) return true;  // a type that names no ids
    for (std::size_t i = 0; i < ids.size(); ++i) mix(out.ids[i], i);
    mix(out.archive, ids.size());
    return true;
  });
  CONVERGE_RETURN_IF_ERROR(scanned);
  CONVERGE_RETURN_IF_ERROR(failed);
  const std::set<std::uint64_t> current = Current(self);
  for (std::size_t i = 0; i < retired.size(); ++i) {
    if (current.contains(retired[i])) out.ids[i] = ~std::uint64_t{0};
  }
  return out;
}

bool Pruning::IsCoordinator(const std::string& name) const {
  if (name == options_.name || !membership_.contains(name)) return false;
  if (options_.name < name) return false;
  for (const std::string& other : Others()) {
    if (other < name) return false;
  }
  return true;
}

std::optional<PruneMessage> Pruning::MakeReport(std::uint64_t self) const {
  const records::PruneLevelRecord& p = *record_.pending;
  StatusOr<Summaries> summaries = Summarize(p.retired, self);
  if (!summaries.ok()) return std::nullopt;
  PruneMessage report = PruneMessage::Of(wire::PruneKind::REPORT, p.nonce, p.level);
  report.ok = true;
  report.summary = summaries->archive;
  report.id_summaries = std::move(summaries->ids);
  report.members = MembersHash();
  return report;
}

std::set<std::uint64_t> Pruning::Current(std::uint64_t self) const {
  std::set<std::uint64_t> current{self};
  for (const auto& [name, m] : membership_.members()) {
    if (m.replica != 0) current.insert(m.replica);
  }
  return current;
}

void Pruning::Freeze(std::uint64_t self) {
  frozen_.clear();
  if (!record_.pending) return;
  const std::set<std::uint64_t> current = Current(self);
  for (const std::uint64_t id : record_.pending->retired) {
    if (!current.contains(id)) frozen_.push_back(id);
  }
}

// The ids our states name that are no member's current one.
StatusOr<std::vector<std::uint64_t>> Pruning::Candidates(std::uint64_t self) const {
  for (const auto& [name, m] : membership_.members()) {
    if (m.replica == 0) {
      return std::vector<std::uint64_t>{};  // a member's current id is not known yet
    }
  }
  std::set<std::uint64_t> current = Current(self);
  current.insert(crdt::kArchiveReplica.value());
  std::set<std::uint64_t> named;
  Status failed;
  Status scanned = store_.Scan("", "", [&](std::string_view key, std::string_view state) {
    StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(state);
    StatusOr<std::vector<crdt::ReplicaId>> ids =
        type.ok() ? (*type)->replicas(state)
                  : StatusOr<std::vector<crdt::ReplicaId>>(type.status());
    if (!ids.ok()) {
      failed = ids.status().WithContext("key '" + std::string(key) + "'");
      return false;
    }
    for (const crdt::ReplicaId id : *ids) {
      if (!current.contains(id.value())) named.insert(id.value());
    }
    return true;
  });
  CONVERGE_RETURN_IF_ERROR(scanned);
  CONVERGE_RETURN_IF_ERROR(failed);
  return std::vector<std::uint64_t>(named.begin(), named.end());
}

// --- the coordinator --------------------------------------------------------------------

void Pruning::Round(std::uint64_t self) {
  ++rounds_;
  Freeze(self);  // the members' current ids change as they restart
  // A member waiting on a proposal asks its coordinator again now and then:
  // a lost commit or abort must not leave it waiting for good.
  if (record_.pending && record_.coordinator != options_.name &&
      rounds_ % kAskAgainEveryRounds == 0) {
    if (!last_report_ || last_report_->nonce != record_.pending->nonce) {
      last_report_ = MakeReport(self);  // after a restart
    }
    if (last_report_) host_.SendPrune(record_.coordinator, *last_report_);
  }
  if (proposal_) {
    if (rounds_ - proposal_->started_round > kAnswerWithinRounds) {
      Abort("not every member answered in time");
    } else if ((rounds_ - proposal_->started_round) % 3 == 0) {
      PruneMessage prepare = PruneMessage::Of(wire::PruneKind::PREPARE, proposal_->nonce,
                                              proposal_->level, proposal_->retired);
      for (const std::string& name : Others()) {
        if (!proposal_->reports.contains(name)) host_.SendPrune(name, prepare);
      }
    }
    return;
  }
  if (record_.pending && record_.coordinator == options_.name) {
    // Our own proposal from before a restart, never committed (a commit
    // clears it atomically): it goes on (our figures for its ids are
    // frozen like every member's), asking again for the reports.
    Resume(self);
    return;
  }
  if (!options_.prune_retired_ids || record_.pending || rounds_ < 3 ||
      (last_proposal_round_ != 0 && rounds_ - last_proposal_round_ < propose_every_rounds_)) {
    return;
  }
  const std::vector<std::string> others = Others();
  // The fence is every member: a node that knows fewer than the deployment
  // has (min_replicas), or none though it was given seeds (a new node that
  // has not met its cluster yet), is not the one to decide.
  if (others.size() + 1 < options_.min_replicas || (others.empty() && !options_.seeds.empty())) {
    return;
  }
  for (const std::string& name : others) {
    if (name < options_.name) return;  // not the coordinator
    // A member that is dead or left may hold dots nobody else has: levels
    // wait until it is back or forgotten (one that left, an hour later).
    const MemberState state = membership_.members().at(name).state;
    if (state == MemberState::kDead || state == MemberState::kLeft) return;
    const auto it = peer_levels_.find(name);
    if (it != peer_levels_.end() && it->second != record_.level) return;
  }
  Propose(self);
}

void Pruning::Resume(std::uint64_t self) {
  const records::PruneLevelRecord pending = *record_.pending;
  StatusOr<Summaries> summaries = Summarize(pending.retired, self);
  if (!summaries.ok()) {
    Abort("reading the states failed: " + summaries.status().ToString());
    return;
  }
  Proposal p;
  p.nonce = pending.nonce;
  p.level = pending.level;
  p.retired = pending.retired;
  p.summaries = std::move(summaries).value();
  Launch(std::move(p));
}

void Pruning::Launch(Proposal p) {
  p.members = MembersHash();
  p.started_round = rounds_;
  const PruneMessage prepare =
      PruneMessage::Of(wire::PruneKind::PREPARE, p.nonce, p.level, p.retired);
  proposal_ = std::move(p);
  for (const std::string& name : Others()) host_.SendPrune(name, prepare);
  Decide();  // a cluster of one decides at once
}

void Pruning::Propose(std::uint64_t self) {
  last_proposal_round_ = rounds_;
  // Reading every state costs each member O(keys): proposals are spaced so
  // that it takes at most a twentieth of the time (a million keys read in
  // about a second: a proposal every 20 s at most).
  const auto started = std::chrono::steady_clock::now();
  const auto space = [&] {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    propose_every_rounds_ = std::max<std::uint64_t>(
        kProposeEveryRounds, static_cast<std::uint64_t>(ms) * 20 /
                                 std::max<std::uint64_t>(1, options_.gossip_interval_ms));
  };
  StatusOr<std::vector<std::uint64_t>> candidates = Candidates(self);
  space();
  if (!candidates.ok()) {
    log_.Warn("replication: pruning: reading the states failed: " + candidates.status().ToString());
    return;
  }
  if (candidates->empty()) return;
  Proposal p;
  p.nonce = rng_() | 1;
  p.level = record_.level + 1;
  p.retired = std::move(candidates).value();
  StatusOr<Summaries> summaries = Summarize(p.retired, self);
  space();
  if (!summaries.ok()) {
    log_.Warn("replication: pruning: reading the states failed: " + summaries.status().ToString());
    return;
  }
  p.summaries = std::move(summaries).value();
  record_.pending = records::PruneLevelRecord{p.level, p.nonce, p.retired};
  record_.coordinator = options_.name;
  if (Status s = Persist(); !s.ok()) {
    record_.pending.reset();
    return;
  }
  ++stats_.prune_proposals;
  Launch(std::move(p));
}

void Pruning::Decide() {
  if (!proposal_) return;
  const std::vector<std::string> others = Others();
  // The ids every member holds alike (the others wait for a later level:
  // their dots are still spreading).
  std::vector<bool> agreed(proposal_->retired.size(), true);
  for (std::size_t i = 0; i < agreed.size(); ++i) {
    agreed[i] = proposal_->summaries.ids[i] != ~std::uint64_t{0};
  }
  for (const std::string& name : others) {
    const auto it = proposal_->reports.find(name);
    if (it == proposal_->reports.end()) return;  // still waiting
    const PruneMessage& r = it->second;
    if (!r.ok) return Abort(name + " refused");
    if (r.summary != proposal_->summaries.archive) return Abort(name + " holds other figures");
    if (r.members != proposal_->members) return Abort(name + " knows other members");
    if (r.id_summaries.size() != agreed.size()) return Abort(name + " answered malformed");
    for (std::size_t i = 0; i < agreed.size(); ++i) {
      agreed[i] = agreed[i] && r.id_summaries[i] == proposal_->summaries.ids[i];
    }
  }
  records::PruneLevelRecord level{proposal_->level, proposal_->nonce, {}};
  for (std::size_t i = 0; i < agreed.size(); ++i) {
    if (agreed[i]) level.retired.push_back(proposal_->retired[i]);
  }
  if (level.retired.empty()) return Abort("no id is held alike by every member yet");
  proposal_.reset();
  if (Status s = Sweep(level, /*strip=*/false); !s.ok()) {
    log_.Warn("replication: pruning: renaming the states failed: " + s.ToString());
    Abort("renaming failed here");
    return;
  }
  PruneMessage commit = PruneMessage::Of(wire::PruneKind::COMMIT, level.nonce, level.level);
  commit.tail = record_.tail;
  for (const std::string& name : others) host_.SendPrune(name, commit);
}

void Pruning::Abort(const std::string& why) {
  const std::uint64_t nonce = proposal_         ? proposal_->nonce
                              : record_.pending ? record_.pending->nonce
                                                : 0;
  const std::uint64_t level = proposal_ ? proposal_->level : record_.level + 1;
  proposal_.reset();
  last_proposal_round_ = rounds_;
  ++stats_.prune_aborts;
  if (record_.pending && record_.coordinator == options_.name) {
    record_.pending.reset();
    record_.coordinator.clear();
    (void)Persist();  // on failure the next start aborts it again
  }
  log_.Warn("replication: pruning: proposal of level " + std::to_string(level) +
            " given up: " + why);
  const PruneMessage abort = PruneMessage::Of(wire::PruneKind::ABORT, nonce, level);
  for (const std::string& name : Others()) host_.SendPrune(name, abort);
}

// --- members ------------------------------------------------------------------------------

void Pruning::OnMessage(const std::string& from, const PruneMessage& m, std::uint64_t self) {
  switch (m.kind) {
    case wire::PruneKind::PREPARE: {
      PruneMessage report = PruneMessage::Of(wire::PruneKind::REPORT, m.nonce, m.level);
      // A coordinator has one proposal at a time: a new one of the same
      // coordinator replaces the one recorded.
      const bool free = !record_.pending || record_.pending->nonce == m.nonce ||
                        (record_.coordinator == from && from != options_.name);
      if (m.level == record_.level + 1 && free && IsCoordinator(from) &&
          std::find(m.retired.begin(), m.retired.end(), crdt::kArchiveReplica.value()) ==
              m.retired.end()) {
        const records::PruneLevelRecord pending{m.level, m.nonce, m.retired};
        bool recorded = record_.pending == pending && record_.coordinator == from;
        if (!recorded) {
          record_.pending = pending;
          record_.coordinator = from;
          recorded = Persist().ok();
          if (!recorded) record_.pending.reset();
        }
        if (recorded) {
          Freeze(self);
          last_report_ = MakeReport(self);
          if (last_report_) report = *last_report_;
        }
      }
      host_.SendPrune(from, report);
      return;
    }
    case wire::PruneKind::REPORT: {
      if (proposal_ && proposal_->nonce == m.nonce) {
        proposal_->reports[from] = m;
        Decide();
        return;
      }
      // A report on a proposal decided already: the member missed the
      // outcome.
      const auto committed = std::find_if(record_.tail.begin(), record_.tail.end(),
                                          [&](const auto& l) { return l.nonce == m.nonce; });
      if (committed != record_.tail.end()) {
        PruneMessage commit = PruneMessage::Of(wire::PruneKind::COMMIT, m.nonce, record_.level);
        commit.tail.assign(committed, record_.tail.end());
        host_.SendPrune(from, commit);
      } else if (!(record_.pending && record_.pending->nonce == m.nonce)) {
        host_.SendPrune(from, PruneMessage::Of(wire::PruneKind::ABORT, m.nonce, m.level));
      }
      return;
    }
    case wire::PruneKind::COMMIT:
      // Levels a member at them passes on (its messages carry its level).
      if (const auto it = peer_levels_.find(from);
          it != peer_levels_.end() && !m.tail.empty() && it->second >= m.tail.back().level) {
        CatchUp(m.tail);
      }
      return;
    case wire::PruneKind::ABORT:
      if (record_.pending && record_.pending->nonce == m.nonce && record_.coordinator == from) {
        record_.pending.reset();
        record_.coordinator.clear();
        (void)Persist();  // on failure: refused entries a while longer
      }
      return;
  }
}

std::optional<PruneMessage> Pruning::ForPeer(const std::string& to) const {
  const auto it = peer_levels_.find(to);
  if (it == peer_levels_.end() || it->second >= record_.level || record_.tail.empty()) {
    return std::nullopt;
  }
  PruneMessage commit = PruneMessage::Of(wire::PruneKind::COMMIT, 0, record_.level);
  for (const records::PruneLevelRecord& l : record_.tail) {
    if (l.level > it->second) commit.tail.push_back(l);
  }
  return commit;
}

void Pruning::CatchUp(const std::vector<records::PruneLevelRecord>& tail) {
  std::vector<records::PruneLevelRecord> levels = tail;
  std::sort(levels.begin(), levels.end(),
            [](const auto& a, const auto& b) { return a.level < b.level; });
  for (const records::PruneLevelRecord& l : levels) {
    if (l.level <= record_.level) continue;
    if (l.level != record_.level + 1) {
      log_.Warn("replication: pruning: this node is at level " + std::to_string(record_.level) +
                " and its peers are past the levels they keep (" + std::to_string(l.level) +
                "); it cannot exchange states with them until its data is wiped");
      return;
    }
    // Renamed only after reporting on exactly this proposal: our figures
    // are then the coordinator's. Anything else holds nothing the members
    // lack of these ids (docs/replication.md): stripped.
    const bool reported =
        record_.pending && record_.pending->nonce == l.nonce && record_.pending->level == l.level;
    if (Status s = Sweep(l, /*strip=*/!reported); !s.ok()) {
      log_.Warn("replication: pruning: renaming the states failed (tried again): " + s.ToString());
      return;
    }
  }
}

void Pruning::Forgotten(const std::string& name) {
  peer_levels_.erase(name);
  if (record_.pending && record_.coordinator == name) {
    record_.pending.reset();
    record_.coordinator.clear();
    (void)Persist();
  }
  if (proposal_) Abort(name + " was forgotten");
}

// --- filters ------------------------------------------------------------------------------

bool Pruning::Refuses(std::string_view delta, const std::optional<std::string>& state) const {
  if (!record_.pending || frozen_.empty()) return false;
  const std::vector<crdt::ReplicaId> ids = AsIds(frozen_);
  StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(delta);
  if (!type.ok()) return false;  // the applier rejects it
  StatusOr<std::vector<std::uint64_t>> in = (*type)->figures(delta, ids);
  if (!in.ok()) return false;
  std::vector<std::uint64_t> here(in->size(), 0);
  if (state) {
    StatusOr<std::vector<std::uint64_t>> held = (*type)->figures(*state, ids);
    if (!held.ok()) return true;
    here = std::move(held).value();
  }
  for (std::size_t i = 0; i < in->size() && i < here.size(); ++i) {
    if ((*in)[i] > here[i]) return true;
  }
  return false;
}

std::optional<std::string> Pruning::StaleView(std::string_view delta,
                                              const std::optional<std::string>& state) const {
  StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(delta);
  if (!type.ok()) return std::nullopt;
  StatusOr<std::vector<crdt::ReplicaId>> ids = (*type)->replicas(delta);
  if (!ids.ok()) return std::nullopt;
  if (InTail(*ids)) {
    return "the update acted on a causal context read before this cluster pruned retired replica "
           "ids (pruning level " +
           std::to_string(record_.level) + "); read the key again and retry";
  }
  if (!std::binary_search(ids->begin(), ids->end(), crdt::kArchiveReplica)) return std::nullopt;
  const std::vector<crdt::ReplicaId> none;
  StatusOr<std::vector<std::uint64_t>> in = (*type)->figures(delta, none);
  std::vector<std::uint64_t> here{0};
  if (state) {
    StatusOr<std::vector<std::uint64_t>> held = (*type)->figures(*state, none);
    if (held.ok()) here = std::move(held).value();
  }
  if (in.ok() && !in->empty() && !here.empty() && in->front() > here.front()) {
    return "the update acted on a causal context read at a pruning level this replica has not "
           "reached yet (it is at " +
           std::to_string(record_.level) + "); retry in a moment";
  }
  return std::nullopt;
}

bool Pruning::InTail(const std::vector<crdt::ReplicaId>& ids) const {
  for (const records::PruneLevelRecord& l : record_.tail) {
    for (const crdt::ReplicaId id : ids) {
      if (std::find(l.retired.begin(), l.retired.end(), id.value()) != l.retired.end()) {
        return true;
      }
    }
  }
  return false;
}

// --- renaming -------------------------------------------------------------------------------

Status Pruning::Sweep(const records::PruneLevelRecord& level, bool strip) {
  const std::vector<crdt::ReplicaId> ids = AsIds(level.retired);
  const auto rename = [&](std::string& state, std::span<std::string> deltas) -> Status {
    StatusOr<const codec::TypeRegistry::Entry*> type = registry_.Lookup(state);
    if (!type.ok()) return type.status();
    return (*type)->relabel(state, deltas, ids,
                            strip ? crdt::RelabelMode::kStrip : crdt::RelabelMode::kRename);
  };
  records::PruneRecord next = record_;
  next.level = level.level;
  next.tail.push_back(level);
  if (next.tail.size() > kTailLevels) next.tail.erase(next.tail.begin());
  next.pending.reset();
  next.coordinator.clear();
  std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>> changes;
  const auto write_states = [&]() -> Status {
    storage::WriteBatch batch;
    Status failed;
    CONVERGE_RETURN_IF_ERROR(store_.Scan("", "", [&](std::string_view key, std::string_view bytes) {
      if (!strip && options_.on_prune_rename) {
        options_.on_prune_rename(level.level, level.retired, key, bytes);
      }
      std::string state(bytes);
      if (Status s = rename(state, {}); !s.ok()) {
        failed = s.WithContext("key '" + std::string(key) + "'");
        return false;
      }
      if (state != bytes) {
        const std::uint64_t digest = StateDigest(state);
        records::PutDigest(batch, tree_, key, digest);
        changes.emplace_back(std::string(key), StateDigest(bytes), digest);
        batch.Replace(std::string(key), std::move(state));
      }
      return true;
    }));
    CONVERGE_RETURN_IF_ERROR(failed);
    records::PutPrune(batch, next);
    batch.set_trusted(true);
    return store_.Write(batch);
  };
  CONVERGE_RETURN_IF_ERROR(deltas_.Rewrite(
      [&](const std::string& key, std::span<std::string> deltas) -> Status {
        StatusOr<std::optional<std::string>> state = store_.Get(key);
        if (!state.ok()) return state.status();
        // A key with buffered deltas has a state (they were joined into it).
        std::string copy = state->has_value() ? **state : deltas.front();
        return rename(copy, deltas);
      },
      write_states));
  for (const auto& [key, before, after] : changes) tree_.Update(key, before, after);
  record_ = std::move(next);
  if (strip) {
    ++stats_.prune_levels_stripped;
  } else {
    ++stats_.prune_levels_renamed;
  }
  log_.Warn("replication: pruning level " + std::to_string(level.level) + ": " +
            std::to_string(level.retired.size()) + " retired replica ids " +
            (strip ? "stripped" : "renamed onto the archive id") + " in " +
            std::to_string(changes.size()) + " keys");
  host_.Renamed();
  return Status::Ok();
}

}  // namespace converge::replication::internal
