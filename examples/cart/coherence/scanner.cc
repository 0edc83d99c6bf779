#include "examples/cart/coherence/scanner.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <utility>

#include "crdt/codec/codec.h"
#include "examples/cart/coherence/text.h"

namespace converge::cart::coherence {

// ---------------------------------------------------------------------------
// DivergenceTracker

Clock::time_point DivergenceTracker::Mark(const std::string& key, Clock::time_point now) {
  return since_.try_emplace(key, now).first->second;
}

std::optional<Clock::duration> DivergenceTracker::Clear(const std::string& key,
                                                        Clock::time_point now) {
  const auto it = since_.find(key);
  if (it == since_.end()) return std::nullopt;
  const Clock::duration lasted = now - it->second;
  since_.erase(it);
  return lasted;
}

std::vector<Clock::duration> DivergenceTracker::Retain(const std::set<std::string>& still,
                                                       Clock::time_point now) {
  std::vector<Clock::duration> ended;
  for (auto it = since_.begin(); it != since_.end();) {
    if (still.contains(it->first)) {
      ++it;
    } else {
      ended.push_back(now - it->second);
      it = since_.erase(it);
    }
  }
  return ended;
}

Clock::duration DivergenceTracker::Longest(Clock::time_point now) const {
  Clock::duration longest{0};
  for (const auto& [key, since] : since_) longest = std::max(longest, now - since);
  return longest;
}

// ---------------------------------------------------------------------------
// Progress

std::string ProgressLine(const ScanProgress& p) {
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, " (%.1f s)", p.seconds);
  std::string out = "coherence-check: ";
  switch (p.stage) {
    case ScanProgress::Stage::kListing:
      out += Printable(p.node) + ": " + std::to_string(p.keys_listed) + " keys listed";
      break;
    case ScanProgress::Stage::kReading:
      if (p.states_read == 0) {
        out += std::to_string(p.keys) + " keys listed, reading states";
      } else {
        out += std::to_string(p.states_read) + " states read, " + std::to_string(p.keys_judged) +
               " of " + std::to_string(p.keys) + " keys judged";
      }
      break;
    case ScanProgress::Stage::kRereading:
      out += std::to_string(p.states_read) + " states read, after the grace wait " +
             std::to_string(p.differing_done) + " of " + std::to_string(p.differing) +
             " differing keys read again";
      break;
    case ScanProgress::Stage::kRepairing:
      out += std::to_string(p.states_read) +
             " states read, repairing: " + std::to_string(p.differing_done) + " of " +
             std::to_string(p.differing) + " differing keys done";
      break;
    case ScanProgress::Stage::kDone:
      out += "scan done: " + std::to_string(p.keys) + " keys, " + std::to_string(p.states_read) +
             " states read";
      break;
  }
  return out + seconds;
}

// ---------------------------------------------------------------------------
// Scanner

struct Scanner::Active {
  NodeApi* api = nullptr;
  NodeSummary summary;
};

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void MarkUnreachable(NodeSummary& summary, std::string why) {
  if (!summary.reachable) return;
  summary.reachable = false;
  summary.error = std::move(why);
}

// The cart rules broken by the final reading of a key, grouped by the
// nodes that break the same ones.
void AddDomainFindings(Report& report, const std::string& key, const Classification& c,
                       const std::vector<NodeId>& ids) {
  if (c.key_problem) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < c.nodes.size(); ++i) {
      if (c.nodes[i].cls != NodeClass::kUnknown) names.push_back(ids[i].name);
    }
    report.domain.push_back(DomainFinding{key, std::move(names), {*c.key_problem}});
  }
  std::vector<bool> done(c.nodes.size(), false);
  for (std::size_t i = 0; i < c.nodes.size(); ++i) {
    if (done[i] || c.nodes[i].domain.empty()) continue;
    DomainFinding finding{key, {}, c.nodes[i].domain};
    for (std::size_t j = i; j < c.nodes.size(); ++j) {
      if (!done[j] && c.nodes[j].domain == c.nodes[i].domain) {
        finding.nodes.push_back(ids[j].name);
        done[j] = true;
      }
    }
    report.domain.push_back(std::move(finding));
  }
}

}  // namespace

Scanner::Scanner(std::vector<Node> nodes, ScanOptions options, ScanEnvironment env)
    : options_(std::move(options)), env_(std::move(env)) {
  if (!env_.now) env_.now = [] { return Clock::now(); };
  if (!env_.sleep) env_.sleep = [](Clock::duration d) { std::this_thread::sleep_for(d); };
  for (Node& node : nodes) known_.push_back(Known{std::move(node.address), std::move(node.api)});
}

std::vector<Scanner::Active> Scanner::Membership(Report& report) {
  std::vector<Active> active;
  std::set<std::string> names;
  // Discovered nodes take part only while a reachable node lists them as a
  // member that has not left.
  std::map<std::string, std::string> listed;  // address -> member name
  for (std::size_t k = 0; k < known_.size(); ++k) {
    const std::string address = ToString(known_[k].address);
    const bool discovered = known_[k].discovered;
    NodeApi* api = known_[k].api.get();
    if (discovered && !listed.contains(address)) continue;
    Active a{api, NodeSummary{address, {}, std::nullopt, false, discovered, {}, 0}};
    if (discovered) a.summary.name = listed[address];
    StatusOr<ClusterInfo> info = api->Cluster();
    if (!info.ok()) {
      a.summary.error = info.status().message();
      active.push_back(std::move(a));
      continue;
    }
    // The same node under a second address (localhost and 127.0.0.1).
    if (names.contains(info->node)) continue;
    names.insert(info->node);
    a.summary.name = info->node;
    a.summary.replica = info->replica;
    a.summary.reachable = true;
    if (options_.discover) {
      for (const ClusterMember& m : info->members) {
        if (m.state == "left" || m.http.empty()) continue;
        StatusOr<HostPort> address_of = ParseNodeAddress(m.http);
        if (!address_of.ok()) {
          report.cluster_problems.push_back(
              info->node + " lists member " + m.name +
              " with a bad HTTP address: " + address_of.status().message());
          continue;
        }
        const std::string member_address = ToString(*address_of);
        listed.emplace(member_address, m.name);
        const bool known = std::any_of(known_.begin(), known_.end(), [&](const Known& kn) {
          return ToString(kn.address) == member_address;
        });
        if (!known && env_.connect) {
          known_.push_back(Known{*address_of, env_.connect(*address_of), /*discovered=*/true});
        }
      }
    }
    active.push_back(std::move(a));
  }
  // A discovered node that did not answer, under the name of a node that
  // did (a second address of it), is not a second node.
  std::erase_if(active, [&](const Active& a) {
    return a.summary.discovered && !a.summary.reachable && names.contains(a.summary.name);
  });
  return active;
}

void Scanner::Progress(ScanProgress progress) {
  if (!env_.progress || !current_.large) return;
  progress.seconds = Seconds(env_.now() - current_.start);
  env_.progress(progress);
}

void Scanner::ListKeys(Active& node,
                       std::map<std::string, std::vector<std::optional<std::uint64_t>>>& keys,
                       std::size_t index, std::size_t count) {
  std::string after;
  std::uint64_t total = 0;
  std::uint64_t marks_reported = 0;  // progress: multiples of kProgressEvery passed
  for (;;) {
    StatusOr<KeyPage> page = node.api->Keys(options_.prefix, after, options_.page_limit);
    if (!page.ok()) {
      MarkUnreachable(node.summary, "listing keys: " + page.status().message());
      return;
    }
    for (KeyDigest& k : page->keys) {
      if (++total > options_.max_keys) {
        MarkUnreachable(node.summary, "lists more than " + std::to_string(options_.max_keys) +
                                          " keys (--max-keys)");
        return;
      }
      auto& digests = keys[k.key];
      digests.resize(count);
      digests[index] = k.digest;
    }
    node.summary.keys = total;
    if (total > kProgressEvery && (total - 1) / kProgressEvery > marks_reported) {
      marks_reported = (total - 1) / kProgressEvery;
      current_.large = true;
      ScanProgress p;
      p.stage = ScanProgress::Stage::kListing;
      p.node = node.summary.name.empty() ? node.summary.address : node.summary.name;
      p.keys_listed = total;
      Progress(std::move(p));
    }
    if (!page->next) return;
    std::string next = page->keys.empty() ? *page->next : page->keys.back().key;
    if (next <= after) {
      MarkUnreachable(node.summary, "listing keys: the pages do not advance");
      return;
    }
    after = std::move(next);
  }
}

NodeRead Scanner::ReadOne(Active& node, const std::string& key) {
  if (!node.summary.reachable) return NodeRead::Unreachable(node.summary.error);
  ++states_read_;
  if ((states_read_ - current_.states_before) % kProgressEvery == 0) {
    current_.where.states_read = states_read_ - current_.states_before;
    Progress(current_.where);
  }
  StatusOr<std::optional<StateAnswer>> answer = node.api->State(key);
  if (answer.ok()) {
    if (!*answer) return NodeRead::Absent();
    return NodeRead::State(std::move((*answer)->state), (*answer)->digest);
  }
  if (answer.status().code() == StatusCode::kInvalidArgument) {
    return NodeRead::BadAnswer(answer.status().message());
  }
  // A node that fails a read fails the next ones too (each costing the
  // timeout): it is out of this scan.
  MarkUnreachable(node.summary, "reading " + Printable(key) + ": " + answer.status().message());
  return NodeRead::Unreachable(node.summary.error);
}

Classification Scanner::ReadAndClassify(std::vector<Active>& nodes, const std::vector<NodeId>& ids,
                                        const std::string& key) {
  std::vector<NodeRead> reads;
  reads.reserve(nodes.size());
  for (Active& node : nodes) reads.push_back(ReadOne(node, key));
  Classification c = Classify(key, ids, reads);
  if (!c.reread.empty()) {
    // Read the suspects' owners again, now after everyone else.
    for (const std::size_t i : c.reread) reads[i] = ReadOne(nodes[i], key);
    c = Classify(key, ids, reads);
  }
  return c;
}

void Scanner::Repair(std::vector<Active>& nodes, const std::vector<NodeId>& ids,
                     KeyFinding& finding, Report& report) {
  const std::vector<RepairPush> pushes = PlanRepair(finding.classification);
  if (pushes.empty()) return;
  for (const RepairPush& push : pushes) {
    ++report.repairs_attempted;
    Active& node = nodes[push.node];
    RepairResult result{push.node, false, {}};
    if (!node.summary.reachable) {
      result.detail = "unreachable";
    } else if (StatusOr<MergeAnswer> answer = node.api->Merge(finding.key, push.state);
               answer.ok()) {
      result.ok = true;
      result.detail = answer->changed ? "changed" : "unchanged";
    } else {
      result.detail = answer.status().message();
    }
    if (!result.ok) ++report.repairs_failed;
    finding.repairs.push_back(std::move(result));
  }
  finding.after_repair = ReadAndClassify(nodes, ids, finding.key).cls;
}

Report Scanner::Scan() {
  const Clock::time_point start = env_.now();
  const auto traffic = [&] {
    NodeApi::Traffic sum;
    for (const Known& k : known_) {
      const NodeApi::Traffic t = k.api->traffic();
      sum.requests += t.requests;
      sum.bytes_received += t.bytes_received;
    }
    return sum;
  };
  const NodeApi::Traffic traffic_before = traffic();
  const std::uint64_t states_before = states_read_;
  resolved_.clear();
  current_ = Current{start, states_before, false, {}};

  Report report;
  report.prefix = options_.prefix;
  report.grace_seconds = Seconds(options_.grace);
  std::vector<Active> nodes = Membership(report);
  const std::size_t n = nodes.size();

  std::map<std::string, std::vector<std::optional<std::uint64_t>>> keys;
  for (std::size_t i = 0; i < n; ++i) {
    if (nodes[i].summary.reachable) ListKeys(nodes[i], keys, i, n);
  }
  const Clock::time_point listed = env_.now();
  current_.where.stage = ScanProgress::Stage::kReading;
  current_.where.keys = keys.size();
  if (keys.size() > kProgressEvery) current_.large = true;
  Progress(current_.where);

  std::vector<NodeId> ids;
  for (const Active& a : nodes) {
    ids.push_back(NodeId{
        a.summary.name.empty() ? a.summary.address : a.summary.name,
        a.summary.replica ? std::optional(crdt::ReplicaId{*a.summary.replica}) : std::nullopt});
  }
  // Two nodes issuing dots under one replica id would make their writes
  // collide (a copied data directory, say).
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (nodes[i].summary.replica && nodes[i].summary.replica == nodes[j].summary.replica) {
        report.cluster_problems.push_back("nodes " + ids[i].name + " and " + ids[j].name +
                                          " share replica id " + Hex16(*nodes[i].summary.replica) +
                                          ": their dots collide");
      }
    }
  }

  struct Differing {
    std::string key;
    Classification c;
    Clock::time_point since;
    bool done = false;
  };
  std::vector<Differing> differing;
  std::set<std::string> still;  // keys still differing at the end
  for (auto& [key, digests] : keys) {
    current_.where.keys_judged = report.keys_scanned;
    ++report.keys_scanned;
    digests.resize(n);
    std::optional<std::uint64_t> common;
    bool agree = true;
    std::vector<std::size_t> reachable;
    for (std::size_t i = 0; i < n; ++i) {
      if (!nodes[i].summary.reachable) continue;
      reachable.push_back(i);
      if (!digests[i] || (common && *common != *digests[i])) agree = false;
      common = digests[i];
    }
    if (reachable.empty()) continue;
    if (agree) {
      if (!options_.read_equal_states) {
        ++report.keys_equal;
        if (const auto lasted = tracker_.Clear(key, listed)) resolved_.push_back(*lasted);
        continue;
      }
      Active& reader = nodes[reachable[next_reader_++ % reachable.size()]];
      const NodeRead read = ReadOne(reader, key);
      if (read.kind == NodeRead::Kind::kState && read.digest == common &&
          StateDigest(read.state) == *common) {
        StatusOr<CartState> state = codec::Decode<CartState>(read.state);
        if (state.ok()) {
          ++report.keys_equal;
          if (const auto lasted = tracker_.Clear(key, env_.now())) resolved_.push_back(*lasted);
          std::vector<std::string> violations = DomainCheck(*state);
          if (const auto why = KeyCheck(key)) violations.insert(violations.begin(), *why);
          if (!violations.empty()) {
            std::vector<std::string> names;
            for (const std::size_t i : reachable) names.push_back(ids[i].name);
            report.domain.push_back(DomainFinding{key, std::move(names), std::move(violations)});
          }
          continue;
        }
      }
      // Anything unexpected about the one copy: read them all.
    }
    Classification c = ReadAndClassify(nodes, ids, key);
    if (c.cls == KeyClass::kEqual) {
      ++report.keys_equal;
      if (!agree) ++report.keys_converged_during_scan;
      if (const auto lasted = tracker_.Clear(key, env_.now())) resolved_.push_back(*lasted);
      AddDomainFindings(report, key, c, ids);
      continue;
    }
    differing.push_back(Differing{key, std::move(c), tracker_.Mark(key, listed)});
  }

  current_.where.keys_judged = report.keys_scanned;
  current_.where.differing = differing.size();

  // One-shot: wait out the grace period of what differs, then look again.
  double waited = 0;
  if (options_.wait_for_grace && options_.grace.count() > 0) {
    current_.where.stage = ScanProgress::Stage::kRereading;
    Clock::time_point latest = listed;
    for (const Differing& d : differing) latest = std::max(latest, d.since + options_.grace);
    const Clock::time_point before_wait = env_.now();
    if (latest > before_wait) {
      env_.sleep(latest - before_wait);
      waited = Seconds(env_.now() - before_wait);
    }
    for (Differing& d : differing) {
      current_.where.differing_done = static_cast<std::uint64_t>(&d - differing.data());
      if (d.since + options_.grace <= listed) continue;  // already past grace when read
      d.c = ReadAndClassify(nodes, ids, d.key);
      if (d.c.cls == KeyClass::kEqual) {
        d.done = true;
        ++report.keys_equal;
        ++report.keys_converged_during_scan;
        if (const auto lasted = tracker_.Clear(d.key, env_.now())) resolved_.push_back(*lasted);
        AddDomainFindings(report, d.key, d.c, ids);
      }
    }
  }
  current_.where.stage = ScanProgress::Stage::kRepairing;  // reads only with --repair
  for (Differing& d : differing) {
    current_.where.differing_done = static_cast<std::uint64_t>(&d - differing.data());
    if (d.done) continue;
    AddDomainFindings(report, d.key, d.c, ids);
    const Clock::duration age = env_.now() - d.since;
    if (age < options_.grace) {
      ++report.keys_within_grace;
      still.insert(d.key);
      continue;
    }
    KeyFinding finding{d.key, std::move(d.c), Seconds(age), {}, std::nullopt};
    if (options_.repair) Repair(nodes, ids, finding, report);
    if (finding.after_repair == KeyClass::kEqual) {
      if (const auto lasted = tracker_.Clear(d.key, env_.now())) resolved_.push_back(*lasted);
    } else {
      still.insert(d.key);
    }
    report.divergent.push_back(std::move(finding));
  }

  const Clock::time_point end = env_.now();
  for (const Clock::duration lasted : tracker_.Retain(still, end)) resolved_.push_back(lasted);
  std::stable_sort(report.domain.begin(), report.domain.end(),
                   [](const DomainFinding& a, const DomainFinding& b) { return a.key < b.key; });

  for (Active& a : nodes) report.nodes.push_back(std::move(a.summary));
  const NodeApi::Traffic traffic_after = traffic();
  Figures& fig = report.figures;
  fig.scan_seconds = Seconds(end - start);
  fig.grace_wait_seconds = waited;
  fig.ms_per_1000_keys = report.keys_scanned == 0 ? 0
                                                  : (fig.scan_seconds - waited) * 1e6 /
                                                        static_cast<double>(report.keys_scanned);
  fig.states_read = states_read_ - states_before;
  fig.requests = traffic_after.requests - traffic_before.requests;
  fig.bytes_received = traffic_after.bytes_received - traffic_before.bytes_received;
  fig.max_divergence_seconds = Seconds(tracker_.Longest(end));
  {
    ScanProgress p;
    p.stage = ScanProgress::Stage::kDone;
    p.keys = report.keys_scanned;
    p.keys_judged = report.keys_scanned;
    p.states_read = fig.states_read;
    Progress(std::move(p));
  }
  return report;
}

}  // namespace converge::cart::coherence
