#include "replication/internal/membership.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace converge::replication::internal {

namespace {

// The order of what is said of a member at one incarnation.
int Rank(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return 0;
    case MemberState::kSuspect:
      return 1;
    case MemberState::kDead:
      return 2;
    case MemberState::kLeft:
      return 3;
  }
  return 0;
}

MemberState FromWire(wire::MemberStatus status) {
  switch (status) {
    case wire::MemberStatus::ALIVE:
      return MemberState::kAlive;
    case wire::MemberStatus::LEFT:
      return MemberState::kLeft;
    case wire::MemberStatus::SUSPECT:
      return MemberState::kSuspect;
    case wire::MemberStatus::DEAD:
      return MemberState::kDead;
  }
  return MemberState::kAlive;  // a status from a later version: no claim
}

wire::MemberStatus ToWire(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return wire::MemberStatus::ALIVE;
    case MemberState::kSuspect:
      return wire::MemberStatus::SUSPECT;
    case MemberState::kDead:
      return wire::MemberStatus::DEAD;
    case MemberState::kLeft:
      return wire::MemberStatus::LEFT;
  }
  return wire::MemberStatus::ALIVE;
}

}  // namespace

std::string_view MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "alive";
}

void Membership::Restore(std::vector<records::MemberRecord> members,
                         std::vector<records::ForgottenRecord> forgotten, std::uint64_t now) {
  for (records::ForgottenRecord& record : forgotten) {
    forgotten_[std::move(record.name)] = Tombstone{record.generation, record.wall_ms};
  }
  for (records::MemberRecord& record : members) {
    if (record.name.empty() || record.name == options_.name) continue;
    Member m;
    m.left = record.left;
    m.generation = record.generation;
    m.address = std::move(record.address);
    m.state = m.left ? MemberState::kLeft : MemberState::kAlive;
    m.last_change_ms = now;
    members_.emplace(std::move(record.name), std::move(m));
  }
}

void Membership::Heard(const std::string& from, std::uint64_t now,
                       std::optional<std::int64_t> clock_offset_ms) {
  Contact& contact = contacts_[from];
  contact.last_heard_ms = now;
  if (clock_offset_ms) {
    contact.clock_offset_ms = *clock_offset_ms;
    contact.clock_sampled_ms = now;
  }
}

std::optional<std::uint64_t> Membership::last_heard_ms(const std::string& name) const {
  const auto it = contacts_.find(name);
  if (it == contacts_.end() || it->second.last_heard_ms == 0) return std::nullopt;
  return it->second.last_heard_ms;
}

std::vector<std::string> Membership::UpdateStates(std::uint64_t now, std::uint64_t wall_ms) {
  // Members that left long ago are forgotten (they would stay in every list
  // and every gossip message for good); one that comes back under its name
  // has a greater generation and joins again.
  std::vector<std::pair<std::string, std::uint64_t>> departed;
  for (const auto& [name, m] : members_) {
    if (m.left && now - m.last_change_ms > kForgetLeftAfterMs) {
      departed.emplace_back(name, m.generation);
    }
  }
  std::vector<std::string> removed;
  for (const auto& [name, generation] : departed) {
    if (Bury(name, Tombstone{generation, wall_ms})) removed.push_back(name);
  }
  for (auto it = forgotten_.begin(); it != forgotten_.end();) {
    if (wall_ms > it->second.wall_ms + kTombstoneMs) {
      storage::WriteBatch batch;
      records::DeleteForgotten(batch, it->first);
      (void)store_.Write(batch);
      it = forgotten_.erase(it);
    } else {
      ++it;
    }
  }
  if (Large() != large_) SwitchRegime(now);
  for (auto& [name, m] : members_) {
    if (m.left) {
      m.state = MemberState::kLeft;
      continue;
    }
    if (large_) {
      if (m.reported == MemberState::kSuspect && now - m.reported_ms > SuspicionTimeoutMs()) {
        m.reported = MemberState::kDead;
        m.reported_ms = now;
        Changed(name);
      }
      m.state = m.reported;
      continue;
    }
    const std::uint64_t silent = now - m.last_change_ms;
    m.state = silent > options_.dead_after_ms      ? MemberState::kDead
              : silent > options_.suspect_after_ms ? MemberState::kSuspect
                                                   : MemberState::kAlive;
  }
  return removed;
}

Membership::Merged Membership::Merge(const std::string& from, wire::Gossip::Reader gossip,
                                     std::uint64_t now) {
  Merged merged;
  if (!from.empty()) contacts_[from].sends_whole = gossip.getList() == wire::MemberList::WHOLE;
  for (const auto f : gossip.getForgotten()) {
    const std::string name = f.getName();
    if (name.empty()) continue;
    if (name == options_.name) {
      merged.self_forgotten = std::max(merged.self_forgotten.value_or(0), f.getGeneration());
      continue;
    }
    if (Bury(name, Tombstone{f.getGeneration(), f.getWallMs()})) merged.removed.push_back(name);
  }
  for (const auto e : gossip.getMembers()) {
    const std::string name = e.getName();
    if (name.empty()) continue;
    if (name == options_.name) {
      MergeSelf(e);
    } else {
      MergeEntry(name, e, now);
    }
  }
  return merged;
}

void Membership::MergeEntry(const std::string& name, wire::Member::Reader e, std::uint64_t now) {
  if (const auto it = forgotten_.find(name);
      it != forgotten_.end() && e.getGeneration() <= it->second.generation) {
    return;  // a forgotten process of it, passed on by a node that did not know
  }
  const bool fresh = !members_.contains(name);
  Member& m = members_[name];
  if (!fresh && e.getGeneration() < m.generation) return;
  const MemberState said = FromWire(e.getStatus());
  std::string address = e.getAddress();
  const auto metadata = e.getMetadata();
  bool persist = false;
  bool spread = false;
  if (fresh || e.getGeneration() > m.generation) {
    persist = true;
    spread = true;
    m.generation = e.getGeneration();
    m.incarnation = e.getIncarnation();
    m.heartbeat = e.getHeartbeat();
    m.left = said == MemberState::kLeft;
    m.reported = m.left ? MemberState::kAlive : said;
    m.reported_ms = now;
    m.address = std::move(address);
    m.replica = e.getReplica();
    if (metadata.size() <= kMaxMetadataBytes) m.metadata = metadata;
    m.last_change_ms = now;
  } else {
    if (e.getHeartbeat() > m.heartbeat) {
      m.heartbeat = e.getHeartbeat();
      m.last_change_ms = now;
      persist = m.address != address;
      spread = persist || m.replica != e.getReplica() ||
               (metadata.size() <= kMaxMetadataBytes && m.metadata != metadata.cStr());
      m.address = std::move(address);
      m.replica = e.getReplica();
      if (metadata.size() <= kMaxMetadataBytes) m.metadata = metadata;
    }
    const auto theirs = std::make_pair(e.getIncarnation(), Rank(said));
    const auto ours = std::make_pair(m.incarnation, Rank(m.left ? MemberState::kLeft : m.reported));
    if (theirs > ours) {
      persist = persist || m.left != (said == MemberState::kLeft);
      spread = true;
      m.incarnation = e.getIncarnation();
      m.left = said == MemberState::kLeft;
      m.reported = m.left ? MemberState::kAlive : said;
      m.reported_ms = now;
    }
  }
  // Heartbeats judge liveness with whole lists; what is said of it, beyond.
  if (m.left) {
    m.state = MemberState::kLeft;
  } else if (large_) {
    m.state = m.reported;
  } else if (m.last_change_ms == now) {
    m.state = MemberState::kAlive;
  }
  if (persist) Persist(name, m);
  if (spread) Changed(name);
}

void Membership::MergeSelf(wire::Member::Reader e) {
  if (e.getGeneration() != generation_ || e.getIncarnation() < incarnation_) return;
  const MemberState said = FromWire(e.getStatus());
  // Suspected, declared dead, or said to have left while here: refute.
  if (said != MemberState::kAlive && !(said == MemberState::kLeft && left_)) {
    incarnation_ = e.getIncarnation() + 1;
    ++refuted_;
  }
}

void Membership::Changed(const std::string& name) {
  if (large_) changes_[name] = 0;
}

bool Membership::Bury(const std::string& name, Tombstone tombstone) {
  if (const auto it = forgotten_.find(name);
      it != forgotten_.end() && it->second.generation >= tombstone.generation) {
    return false;  // known already
  }
  forgotten_[name] = tombstone;
  storage::WriteBatch batch;
  records::PutForgotten(batch,
                        records::ForgottenRecord{name, tombstone.generation, tombstone.wall_ms});
  const auto it = members_.find(name);
  const bool removed = it != members_.end() && it->second.generation <= tombstone.generation;
  if (removed) {
    members_.erase(it);
    contacts_.erase(name);
    records::DeleteMember(batch, name);
  }
  (void)store_.Write(batch);  // best effort, as Persist
  return removed;
}

Status Membership::Forget(const std::string& name, std::uint64_t wall_ms) {
  const auto it = members_.find(name);
  if (it == members_.end()) {
    return Status(StatusCode::kNotFound, "no member named '" + name + "'");
  }
  if (it->second.state != MemberState::kDead && it->second.state != MemberState::kLeft) {
    return Status(StatusCode::kFailedPrecondition,
                  "member '" + name + "' is " + std::string(MemberStateName(it->second.state)) +
                      "; only a dead or departed member can be forgotten (stop it first)");
  }
  Bury(name, Tombstone{it->second.generation, wall_ms});
  return Status::Ok();
}

void Membership::FillEntry(wire::Member::Builder out, const std::string& name,
                           const Member& m) const {
  out.setName(name);
  out.setAddress(m.address);
  out.setGeneration(m.generation);
  out.setIncarnation(m.incarnation);
  out.setHeartbeat(m.heartbeat);
  // A small cluster's lists say nothing of suspicion: each node judges by
  // heartbeats itself.
  out.setStatus(m.left   ? wire::MemberStatus::LEFT
                : large_ ? ToWire(m.reported)
                         : wire::MemberStatus::ALIVE);
  out.setReplica(m.replica);
  out.setMetadata(m.metadata);
}

void Membership::Fill(wire::Gossip::Builder gossip, std::uint64_t replica, const std::string& to,
                      ListKind kind) {
  if (!forgotten_.empty()) {
    auto out = gossip.initForgotten(static_cast<unsigned>(forgotten_.size()));
    unsigned f = 0;
    for (const auto& [name, tombstone] : forgotten_) {
      out[f].setName(name);
      out[f].setGeneration(tombstone.generation);
      out[f].setWallMs(tombstone.wall_ms);
      ++f;
    }
  }
  // Which list: a small cluster's whole one; beyond, changes, unless the
  // receiver is a stranger (a seed, a joining node), keeps whole lists
  // itself, or this is a push-pull exchange.
  wire::MemberList list = wire::MemberList::WHOLE;
  if (large_) {
    const auto contact = contacts_.find(to);
    if (kind == ListKind::kPush || (kind == ListKind::kChosen && !members_.contains(to))) {
      list = wire::MemberList::PUSH;
    } else if (kind == ListKind::kPushReply ||
               (contact != contacts_.end() && contact->second.sends_whole)) {
      list = wire::MemberList::PUSH_REPLY;
    } else {
      list = wire::MemberList::UPDATES;
    }
  }
  gossip.setList(list);
  std::vector<const std::string*> chosen;
  if (list == wire::MemberList::UPDATES) {
    // The changes sent fewest times first, then the receiver's own entry if
    // we suspect it (so that it can refute).
    std::vector<std::pair<std::uint32_t, const std::string*>> order;
    order.reserve(changes_.size());
    for (const auto& [name, sent] : changes_) order.emplace_back(sent, &name);
    const std::size_t take = std::min(order.size(), options_.members_per_message);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(take), order.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
    // (Pointers to the members' names: a change sent often enough is erased
    // from changes_ below, its name with it.)
    for (std::size_t i = 0; i < take; ++i) {
      if (const auto m = members_.find(*order[i].second); m != members_.end()) {
        chosen.push_back(&m->first);
      }
    }
    const auto self = members_.find(to);
    if (ShouldHearItsEntry(to) && std::none_of(chosen.begin(), chosen.end(),
                                               [&](const std::string* n) { return *n == to; })) {
      chosen.push_back(&self->first);
    }
    const std::uint32_t limit = RetransmitLimit();
    for (std::size_t i = 0; i < take; ++i) {
      const auto change = changes_.find(*order[i].second);
      if (++change->second >= limit) changes_.erase(change);
    }
  } else {
    chosen.reserve(members_.size());
    for (const auto& [name, m] : members_) chosen.push_back(&name);
    // A whole list carries every change too.
    const std::uint32_t limit = RetransmitLimit();
    for (auto it = changes_.begin(); it != changes_.end();) {
      it = ++it->second >= limit ? changes_.erase(it) : std::next(it);
    }
  }
  auto members = gossip.initMembers(static_cast<unsigned>(chosen.size() + 1));
  auto self = members[0];
  self.setName(options_.name);
  self.setAddress(options_.address);
  self.setGeneration(generation_);
  self.setIncarnation(incarnation_);
  self.setHeartbeat(heartbeat_);
  self.setStatus(left_ ? wire::MemberStatus::LEFT : wire::MemberStatus::ALIVE);
  self.setReplica(replica);
  self.setMetadata(options_.metadata);
  unsigned i = 1;
  for (const std::string* name : chosen) FillEntry(members[i++], *name, members_.at(*name));
}

std::uint32_t Membership::RetransmitLimit() const {
  // Each change is sent about 4 log10 N times (memberlist's default).
  return static_cast<std::uint32_t>(
      4 * std::ceil(std::log10(static_cast<double>(members_.size() + 2))));
}

bool Membership::PushPullDue(std::uint64_t round) const {
  if (!large_) return false;
  // More changes than a few messages carry (members joining in numbers, a
  // partition healing): whole lists spread them faster, until they are out.
  if (changes_.size() > 4 * options_.members_per_message) return true;
  const std::uint64_t every = std::max<std::uint64_t>(32, members_.size() / 4);
  return round % every == 0;
}

std::uint64_t Membership::SuspicionTimeoutMs() const {
  // Long enough for the suspicion to reach the member and its refutation to
  // come back: a few epidemic spreads, each about log_{F+1} N rounds.
  const double n = static_cast<double>(members_.size() + 1);
  const double spread = std::ceil(std::log(n) / std::log(std::max(2, options_.fanout + 1)));
  const auto rounds = static_cast<std::uint64_t>(3 * (spread + 2));
  const std::uint64_t configured = options_.dead_after_ms > options_.suspect_after_ms
                                       ? options_.dead_after_ms - options_.suspect_after_ms
                                       : 0;
  return std::max(configured, rounds * options_.gossip_interval_ms);
}

bool Membership::ShouldHearItsEntry(const std::string& name) const {
  if (!large_) return false;
  const auto it = members_.find(name);
  return it != members_.end() && !it->second.left && it->second.reported != MemberState::kAlive;
}

void Membership::Suspect(const std::string& name, std::uint64_t now) {
  const auto it = members_.find(name);
  if (it == members_.end() || it->second.left || it->second.reported != MemberState::kAlive) return;
  it->second.reported = MemberState::kSuspect;
  it->second.reported_ms = now;
  it->second.state = MemberState::kSuspect;
  ++suspected_;
  Changed(name);
}

Membership::ProbePlan Membership::ProbeRound(std::uint64_t now, std::mt19937_64& rng) {
  ProbePlan plan;
  std::erase_if(relays_, [&](const auto& entry) { return entry.second.expires_ms < now; });
  if (!large_) {
    probe_.reset();
    return plan;
  }
  if (probe_) {
    const auto it = members_.find(probe_->target);
    const bool moved_on = it == members_.end() || it->second.left ||
                          it->second.generation != probe_->generation ||
                          it->second.incarnation != probe_->incarnation;
    // Any message from it, or a newer heartbeat of it, since the probe went
    // out answers as well as an ack (a lost ack is not a dead member).
    const auto contact = contacts_.find(probe_->target);
    const bool heard =
        !moved_on &&
        (it->second.last_change_ms > probe_->sent_ms ||
         (contact != contacts_.end() && contact->second.last_heard_ms > probe_->sent_ms));
    if (probe_->acked || moved_on || heard) {
      probe_.reset();
    } else if (!probe_->helpers_asked) {
      // No answer within a round: ask three others to try.
      probe_->helpers_asked = true;
      std::vector<std::string> candidates;
      for (const auto& [name, m] : members_) {
        if (m.state == MemberState::kAlive && name != probe_->target) candidates.push_back(name);
      }
      const std::size_t k = std::min<std::size_t>(3, candidates.size());
      for (std::size_t i = 0; i < k; ++i) {
        std::swap(candidates[i], candidates[i + rng() % (candidates.size() - i)]);
        plan.helpers.push_back(Endpoint{candidates[i], members_.at(candidates[i]).address});
      }
      plan.target = probe_->target;
      plan.target_address = it->second.address;
      plan.nonce = probe_->nonce;
      return plan;
    } else {
      Suspect(probe_->target, now);
      probe_.reset();
    }
  }
  // The next member in a shuffled round-robin order: each is probed once
  // per pass, so a failure is noticed within about a pass of the cluster.
  for (std::size_t tries = 0; tries <= members_.size(); ++tries) {
    if (probe_next_ >= probe_order_.size()) {
      probe_order_.clear();
      for (const auto& [name, m] : members_) {
        if (!m.left) probe_order_.push_back(name);
      }
      std::shuffle(probe_order_.begin(), probe_order_.end(), rng);
      probe_next_ = 0;
      if (probe_order_.empty()) return plan;
    }
    const std::string& name = probe_order_[probe_next_++];
    const auto it = members_.find(name);
    // The dead are knocked at by the node every few rounds instead.
    if (it == members_.end() || it->second.left || it->second.state == MemberState::kDead) continue;
    probe_ = Probe{name, ++next_nonce_, it->second.generation, it->second.incarnation, now};
    plan.probe = Endpoint{name, it->second.address};
    plan.nonce = probe_->nonce;
    break;
  }
  return plan;
}

std::optional<std::pair<std::string, std::uint64_t>> Membership::Acked(std::uint64_t nonce) {
  if (probe_ && probe_->nonce == nonce) {
    probe_->acked = true;
    return std::nullopt;
  }
  const auto it = relays_.find(nonce);
  if (it == relays_.end()) return std::nullopt;
  std::pair<std::string, std::uint64_t> back{std::move(it->second.requester), it->second.nonce};
  relays_.erase(it);
  return back;
}

std::uint64_t Membership::ProbeFor(const std::string& requester, std::uint64_t their_nonce,
                                   std::uint64_t now) {
  const std::uint64_t nonce = ++next_nonce_;
  // Bounded: a member asks for at most a few a round.
  if (relays_.size() < 4 * options_.members_per_message) {
    relays_[nonce] = Relay{requester, their_nonce, now + 3 * options_.gossip_interval_ms};
  }
  return nonce;
}

void Membership::SwitchRegime(std::uint64_t now) {
  large_ = Large();
  changes_.clear();
  probe_.reset();
  relays_.clear();
  probe_order_.clear();
  probe_next_ = 0;
  for (auto& [name, m] : members_) {
    if (large_) {
      // What silence said so far becomes what is said of it.
      m.reported = m.state == MemberState::kDead || m.state == MemberState::kSuspect
                       ? m.state
                       : MemberState::kAlive;
      m.reported_ms = now;
    } else {
      // Heartbeats were not spread in a large cluster: a fresh start.
      m.last_change_ms = now;
      m.reported = MemberState::kAlive;
    }
  }
}

std::optional<Endpoint> Membership::EndpointOf(const std::string& name) const {
  const auto it = members_.find(name);
  if (it == members_.end()) return std::nullopt;
  return Endpoint{name, it->second.address};
}

std::vector<std::string> Membership::Live() const {
  std::vector<std::string> live;
  for (const auto& [name, m] : members_) {
    if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) live.push_back(name);
  }
  return live;
}

std::vector<std::string> Membership::Dead() const {
  std::vector<std::string> dead;
  for (const auto& [name, m] : members_) {
    if (m.state == MemberState::kDead) dead.push_back(name);
  }
  return dead;
}

bool Membership::Counts(const std::string& name) const {
  const auto it = members_.find(name);
  return it != members_.end() && it->second.state != MemberState::kDead &&
         it->second.state != MemberState::kLeft;
}

bool Membership::KnowsAddress(std::string_view address) const {
  return std::any_of(members_.begin(), members_.end(),
                     [&](const auto& entry) { return entry.second.address == address; });
}

bool Membership::Known() const {
  if (!members_.empty()) return true;
  return std::all_of(options_.seeds.begin(), options_.seeds.end(),
                     [&](const std::string& seed) { return seed == options_.address; });
}

std::size_t Membership::AcksNeeded(WriteConsistency consistency) const {
  std::size_t replicas = 1;
  for (const auto& [name, m] : members_) {
    if (m.state != MemberState::kLeft) ++replicas;
  }
  replicas = std::max(replicas, options_.min_replicas);
  switch (consistency) {
    case WriteConsistency::kLocal:
      return 0;
    case WriteConsistency::kMajority:
      return replicas / 2;
    case WriteConsistency::kAll:
      return replicas - 1;
  }
  return 0;
}

std::int64_t Membership::ClusterClockOffsetMs(std::uint64_t now) const {
  std::vector<std::int64_t> offsets = {0};
  for (const auto& [name, m] : members_) {
    if (m.state != MemberState::kAlive && m.state != MemberState::kSuspect) continue;
    const auto it = contacts_.find(name);
    if (it == contacts_.end() || it->second.clock_sampled_ms == 0 ||
        now - it->second.clock_sampled_ms > options_.dead_after_ms) {
      continue;
    }
    offsets.push_back(it->second.clock_offset_ms);
  }
  std::sort(offsets.begin(), offsets.end());
  const std::size_t mid = offsets.size() / 2;
  if (offsets.size() % 2 == 1) return offsets[mid];
  const std::int64_t low = offsets[mid - 1], high = offsets[mid];
  return (low < 0 ? -low : low) <= (high < 0 ? -high : high) ? low : high;
}

void Membership::Persist(const std::string& name, const Member& m) {
  storage::WriteBatch batch;
  records::PutMember(batch, records::MemberRecord{name, m.address, m.left, m.generation});
  (void)store_.Write(batch);
}

}  // namespace converge::replication::internal
