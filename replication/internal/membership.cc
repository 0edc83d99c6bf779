#include "replication/internal/membership.h"

#include <algorithm>
#include <utility>

namespace converge::replication::internal {

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
  for (auto& [name, m] : members_) {
    if (m.left) {
      m.state = MemberState::kLeft;
      continue;
    }
    const std::uint64_t silent = now - m.last_change_ms;
    m.state = silent > options_.dead_after_ms      ? MemberState::kDead
              : silent > options_.suspect_after_ms ? MemberState::kSuspect
                                                   : MemberState::kAlive;
  }
  return removed;
}

Membership::Merged Membership::Merge(wire::Gossip::Reader gossip, std::uint64_t now) {
  Merged merged;
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
    if (name.empty() || name == options_.name) continue;
    if (const auto it = forgotten_.find(name);
        it != forgotten_.end() && e.getGeneration() <= it->second.generation) {
      continue;  // a forgotten process of it, passed on by a node that did not know
    }
    const bool fresh = !members_.contains(name);
    Member& m = members_[name];
    const auto theirs = std::make_pair(e.getGeneration(), e.getHeartbeat());
    if (fresh || theirs > std::make_pair(m.generation, m.heartbeat)) {
      const bool left = e.getStatus() == wire::MemberStatus::LEFT;
      std::string address = e.getAddress();
      const bool changed =
          fresh || m.address != address || m.left != left || m.generation != e.getGeneration();
      m.address = std::move(address);
      m.generation = e.getGeneration();
      m.heartbeat = e.getHeartbeat();
      m.left = left;
      m.replica = e.getReplica();
      const auto metadata = e.getMetadata();
      if (metadata.size() <= kMaxMetadataBytes) m.metadata = metadata;
      m.last_change_ms = now;
      m.state = m.left ? MemberState::kLeft : MemberState::kAlive;
      if (changed) Persist(name, m);
    }
  }
  return merged;
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

void Membership::Fill(wire::Gossip::Builder gossip, std::uint64_t replica) const {
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
  auto members = gossip.initMembers(static_cast<unsigned>(members_.size() + 1));
  auto self = members[0];
  self.setName(options_.name);
  self.setAddress(options_.address);
  self.setGeneration(generation_);
  self.setHeartbeat(heartbeat_);
  self.setStatus(left_ ? wire::MemberStatus::LEFT : wire::MemberStatus::ALIVE);
  self.setReplica(replica);
  self.setMetadata(options_.metadata);
  unsigned i = 1;
  for (const auto& [name, m] : members_) {
    auto out = members[i++];
    out.setName(name);
    out.setAddress(m.address);
    out.setGeneration(m.generation);
    out.setHeartbeat(m.heartbeat);
    out.setStatus(m.left ? wire::MemberStatus::LEFT : wire::MemberStatus::ALIVE);
    out.setReplica(m.replica);
    out.setMetadata(m.metadata);
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
