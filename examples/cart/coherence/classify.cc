#include "examples/cart/coherence/classify.h"

#include <algorithm>
#include <cassert>
#include <unordered_map>
#include <utility>

#include "crdt/codec/codec.h"
#include "examples/cart/coherence/text.h"
#include "replication/node.h"

namespace converge::cart::coherence {

std::uint64_t StateDigest(std::string_view encoded_state) {
  return replication::StateDigest(encoded_state);
}

std::string_view KeyClassName(KeyClass c) {
  switch (c) {
    case KeyClass::kEqual:
      return "equal";
    case KeyClass::kBehind:
      return "behind";
    case KeyClass::kConcurrent:
      return "concurrent";
    case KeyClass::kUnexplainable:
      return "unexplainable";
  }
  return "?";
}

std::string_view NodeClassName(NodeClass c) {
  switch (c) {
    case NodeClass::kCurrent:
      return "current";
    case NodeClass::kBehind:
      return "behind";
    case NodeClass::kConcurrent:
      return "concurrent";
    case NodeClass::kUnexplainable:
      return "unexplainable";
    case NodeClass::kUnknown:
      return "unknown";
  }
  return "?";
}

bool Classification::HasDomainViolations() const {
  if (key_problem) return true;
  return std::any_of(nodes.begin(), nodes.end(),
                     [](const NodeVerdict& v) { return !v.domain.empty(); });
}

std::vector<std::string> DomainCheck(const CartState& state) { return DomainViolations(state); }

std::optional<std::string> KeyCheck(std::string_view key) {
  if (!key.starts_with(kKeyPrefix)) {
    return "key '" + Printable(key) + "' is not a cart key (" + std::string(kKeyPrefix) + "<id>)";
  }
  if (const auto why = CheckCartId(key.substr(kKeyPrefix.size()))) {
    return "key '" + Printable(key) + "': " + *why;
  }
  return std::nullopt;
}

namespace {

// At most this many problems are listed per node; the rest are counted.
constexpr std::size_t kMaxProblemsListed = 8;

std::string DotText(const crdt::Dot& d) {
  return "(" + Hex16(d.replica.value()) + "," + std::to_string(d.counter) + ")";
}

struct Write {
  const std::string* sku;
  std::uint64_t amount;
  friend bool operator==(const Write& a, const Write& b) {
    return *a.sku == *b.sku && a.amount == b.amount;
  }
};

std::string WriteText(const Write& w) {
  return "line '" + Printable(*w.sku) + "' amount " + std::to_string(w.amount);
}

std::string NodeList(std::span<const NodeId> nodes, const std::vector<std::size_t>& which) {
  std::string out;
  for (const std::size_t i : which) {
    if (!out.empty()) out += ", ";
    out += nodes[i].name;
  }
  return out;
}

// One dot names one write: every node storing a dot stores it with the same
// payload under the same line. The payload most nodes agree on is taken as
// the write; the nodes holding another are the suspects. Without a strict
// majority every holder is a suspect.
void CheckOneDotOneWrite(std::span<const NodeId> nodes,
                         const std::vector<std::optional<CartState>>& states,
                         std::vector<std::vector<std::string>>& problems) {
  std::unordered_map<crdt::Dot, std::vector<std::pair<std::size_t, Write>>> holders;
  std::size_t decoded = 0;
  for (const auto& s : states) {
    if (s && !s->store().empty()) ++decoded;
  }
  if (decoded < 2) return;
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (!states[i]) continue;
    for (const auto& entry : states[i]->store().entries()) {
      for (const auto& item : entry.store.items()) {
        holders[item.dot].emplace_back(i, Write{&entry.key, item.value});
      }
    }
  }
  // Deterministic report order: by dot.
  std::vector<crdt::Dot> dots;
  for (const auto& [dot, list] : holders) {
    if (list.size() < 2) continue;
    const Write& first = list.front().second;
    if (std::all_of(list.begin(), list.end(), [&](const auto& h) { return h.second == first; }))
      continue;
    dots.push_back(dot);
  }
  std::sort(dots.begin(), dots.end());
  for (const crdt::Dot& dot : dots) {
    const auto& list = holders[dot];
    std::vector<std::pair<Write, std::vector<std::size_t>>> variants;
    for (const auto& [node, write] : list) {
      auto it = std::find_if(variants.begin(), variants.end(),
                             [&](const auto& v) { return v.first == write; });
      if (it == variants.end()) {
        variants.push_back({write, {node}});
      } else {
        it->second.push_back(node);
      }
    }
    std::size_t best = 0;
    bool unique = true;
    for (std::size_t v = 1; v < variants.size(); ++v) {
      if (variants[v].second.size() > variants[best].second.size()) {
        best = v;
        unique = true;
      } else if (variants[v].second.size() == variants[best].second.size()) {
        unique = false;
      }
    }
    for (std::size_t v = 0; v < variants.size(); ++v) {
      if (unique && v == best) continue;
      std::string others;
      for (std::size_t w = 0; w < variants.size(); ++w) {
        if (w == v) continue;
        if (!others.empty()) others += "; ";
        others += WriteText(variants[w].first) + " on " + NodeList(nodes, variants[w].second);
      }
      const std::string why = "dot " + DotText(dot) + " is " + WriteText(variants[v].first) +
                              " here, but " + others +
                              (unique ? "" : " (no majority: cannot tell which is right)") +
                              ": one dot names one write, so this is corruption or a bug";
      for (const std::size_t node : variants[v].second) problems[node].push_back(why);
    }
  }
}

// A node issues its dots from its own context of the key, so no state holds
// a dot of a live replica's id beyond the highest that replica has in its
// own state of the key. One that does holds a write its replica never made
// (or the replica lost history and will issue that dot again for another
// write). Reading the owner before the holder can show a dot issued in
// between: the finding asks for a re-read of the owner.
void CheckIssuedDots(std::span<const NodeId> nodes, std::span<const NodeRead> reads,
                     const std::vector<std::optional<CartState>>& states,
                     std::vector<std::vector<std::string>>& problems,
                     std::vector<std::size_t>& reread) {
  for (std::size_t owner = 0; owner < nodes.size(); ++owner) {
    if (!nodes[owner].replica || !states[owner]) continue;
    const crdt::ReplicaId replica = *nodes[owner].replica;
    const std::uint64_t issued = states[owner]->context().Max(replica);
    for (std::size_t holder = 0; holder < nodes.size(); ++holder) {
      if (holder == owner || !states[holder]) continue;
      const std::uint64_t seen = states[holder]->context().Max(replica);
      if (seen <= issued) continue;
      problems[holder].push_back(
          "holds dot " + DotText(crdt::Dot{replica, seen}) + " of " + nodes[owner].name +
          "'s replica, but " + nodes[owner].name + " has issued only up to " +
          std::to_string(issued) + " for this key" +
          (reads[owner].kind == NodeRead::Kind::kAbsent ? " (it does not hold the key)" : "") +
          ": a write that replica never made, or it lost history and will reuse the dot");
      if (std::find(reread.begin(), reread.end(), owner) == reread.end()) reread.push_back(owner);
    }
  }
}

}  // namespace

Classification Classify(std::string_view key, std::span<const NodeId> nodes,
                        std::span<const NodeRead> reads) {
  assert(nodes.size() == reads.size());
  const std::size_t n = reads.size();
  Classification out;
  out.nodes.resize(n);
  out.key_problem = KeyCheck(key);

  std::vector<std::optional<CartState>> states(n);
  std::vector<std::vector<std::string>> problems(n);
  for (std::size_t i = 0; i < n; ++i) {
    const NodeRead& read = reads[i];
    NodeVerdict& verdict = out.nodes[i];
    switch (read.kind) {
      case NodeRead::Kind::kUnreachable:
        verdict.cls = NodeClass::kUnknown;
        continue;
      case NodeRead::Kind::kBadAnswer:
        problems[i].push_back("the node's answer breaks the contract: " + read.error);
        continue;
      case NodeRead::Kind::kAbsent:
        verdict.absent = true;
        states[i] = CartState{};
        break;
      case NodeRead::Kind::kState: {
        verdict.digest = StateDigest(read.state);
        if (read.digest && *read.digest != *verdict.digest) {
          problems[i].push_back("the node reports digest " + Hex16(*read.digest) +
                                " but the state it sent has digest " + Hex16(*verdict.digest) +
                                ": its anti-entropy tree and its store disagree");
          out.reread.push_back(i);
        }
        StatusOr<CartState> decoded = codec::Decode<CartState>(read.state);
        if (!decoded.ok()) {
          problems[i].push_back("the state does not decode as a cart: " +
                                decoded.status().message());
          continue;
        }
        states[i] = std::move(decoded).value();
        break;
      }
    }
    verdict.lines = Lines(*states[i]);
    verdict.domain = DomainCheck(*states[i]);
  }

  CheckOneDotOneWrite(nodes, states, problems);
  CheckIssuedDots(nodes, reads, states, problems, out.reread);

  // Judge the explainable states in the lattice order.
  std::vector<std::size_t> sound;
  for (std::size_t i = 0; i < n; ++i) {
    if (!problems[i].empty()) {
      NodeVerdict& verdict = out.nodes[i];
      verdict.cls = NodeClass::kUnexplainable;
      const std::size_t total = problems[i].size();
      if (total > kMaxProblemsListed) {
        problems[i].resize(kMaxProblemsListed);
        problems[i].push_back("... and " + std::to_string(total - kMaxProblemsListed) + " more");
      }
      verdict.problems = std::move(problems[i]);
      out.cls = KeyClass::kUnexplainable;
    } else if (states[i]) {
      sound.push_back(i);
    }
  }
  if (!sound.empty()) {
    CartState join;
    for (const std::size_t i : sound) join.Join(*states[i]);
    bool concurrent = false;
    bool behind = false;
    for (const std::size_t i : sound) {
      NodeVerdict& verdict = out.nodes[i];
      if (*states[i] == join) {
        verdict.cls = NodeClass::kCurrent;
        continue;
      }
      for (const std::size_t j : sound) {
        if (j == i || *states[j] == *states[i]) continue;
        CartState joined = *states[i];
        joined.Join(*states[j]);
        if (joined == *states[j]) verdict.behind.push_back(j);
      }
      if (verdict.behind.empty()) {
        verdict.cls = NodeClass::kConcurrent;
        concurrent = true;
      } else {
        verdict.cls = NodeClass::kBehind;
        behind = true;
      }
    }
    if (out.cls != KeyClass::kUnexplainable) {
      out.cls =
          concurrent ? KeyClass::kConcurrent : (behind ? KeyClass::kBehind : KeyClass::kEqual);
    }
    out.join = std::move(join);
  }
  return out;
}

std::vector<RepairPush> PlanRepair(const Classification& c) {
  std::vector<RepairPush> pushes;
  if (c.cls != KeyClass::kBehind && c.cls != KeyClass::kConcurrent) return pushes;
  if (!c.join) return pushes;
  const std::string state = codec::Encode(*c.join);
  for (std::size_t i = 0; i < c.nodes.size(); ++i) {
    const NodeClass cls = c.nodes[i].cls;
    if (cls == NodeClass::kBehind || cls == NodeClass::kConcurrent) {
      pushes.push_back(RepairPush{i, state});
    }
  }
  return pushes;
}

}  // namespace converge::cart::coherence
