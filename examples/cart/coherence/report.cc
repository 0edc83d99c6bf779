#include "examples/cart/coherence/report.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "examples/cart/coherence/text.h"

namespace converge::cart::coherence {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxLinesShown = 12;

std::string Fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

// Up to three decimals, without trailing zeros: 2, 0.5, 0.25.
std::string Short(double v) {
  std::string out = Fixed(v, 3);
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

std::string Plural(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string NodeName(const Report& r, std::size_t i) {
  if (i >= r.nodes.size()) return "?";
  return r.nodes[i].name.empty() ? r.nodes[i].address : r.nodes[i].name;
}

std::string LinesText(const NodeVerdict& v) {
  if (v.absent) return "(absent)";
  if (v.cls == NodeClass::kUnknown) return "(not read)";
  if (v.lines.empty()) return v.digest ? "(empty)" : "(unreadable)";
  std::string out;
  for (std::size_t i = 0; i < v.lines.size() && i < kMaxLinesShown; ++i) {
    if (!out.empty()) out += ' ';
    out += Printable(v.lines[i].sku, 40) + "=" + std::to_string(v.lines[i].quantity);
  }
  if (v.lines.size() > kMaxLinesShown) {
    out += " (+" + std::to_string(v.lines.size() - kMaxLinesShown) + " lines)";
  }
  return out;
}

bool KeyNeedsPerson(const KeyFinding& f) {
  return f.classification.cls == KeyClass::kUnexplainable;
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kClean:
      return "clean";
    case Outcome::kRepaired:
      return "repaired";
    case Outcome::kConverging:
      return "converging";
    case Outcome::kNeedsPerson:
      return "needs-attention";
  }
  return "?";
}

std::uint64_t CountDivergent(const Report& report, KeyClass cls) {
  return static_cast<std::uint64_t>(
      std::count_if(report.divergent.begin(), report.divergent.end(),
                    [&](const KeyFinding& f) { return f.classification.cls == cls; }));
}

std::vector<std::string> NeedsPersonReasons(const Report& report) {
  std::vector<std::string> out;
  for (const std::string& p : report.cluster_problems) out.push_back(p);
  const std::uint64_t unexplainable = CountDivergent(report, KeyClass::kUnexplainable);
  if (unexplainable > 0) {
    out.push_back(Plural(unexplainable, "unexplainable key", "unexplainable keys"));
  }
  if (!report.domain.empty()) {
    out.push_back(Plural(report.domain.size(), "key breaking the cart rules",
                         "keys breaking the cart rules"));
  }
  if (report.repairs_failed > 0) {
    out.push_back(Plural(report.repairs_failed, "failed repair", "failed repairs"));
  }
  return out;
}

std::vector<std::string> ScanErrors(const Report& report) {
  std::vector<std::string> out;
  const auto unreachable = static_cast<std::uint64_t>(std::count_if(
      report.nodes.begin(), report.nodes.end(), [](const NodeSummary& n) { return !n.reachable; }));
  if (report.nodes.empty()) out.push_back("no node to read");
  if (unreachable > 0) out.push_back(Plural(unreachable, "node unreachable", "nodes unreachable"));
  return out;
}

Outcome OutcomeOf(const Report& report) {
  if (!NeedsPersonReasons(report).empty() || !ScanErrors(report).empty()) {
    return Outcome::kNeedsPerson;
  }
  bool repaired_any = false;
  for (const KeyFinding& f : report.divergent) {
    if (f.after_repair == KeyClass::kEqual) {
      repaired_any = true;
    } else {
      return Outcome::kConverging;
    }
  }
  return repaired_any ? Outcome::kRepaired : Outcome::kClean;
}

int ExitCode(const Report& report) {
  if (!NeedsPersonReasons(report).empty()) return kExitNeedsPerson;
  if (!ScanErrors(report).empty()) return kExitError;
  return kExitOk;
}

std::string RenderHuman(const Report& r) {
  std::string out;
  out += "coherence-check: " + Plural(r.nodes.size(), "node", "nodes") + ", " +
         Plural(r.keys_scanned, "key", "keys") + " under prefix \"" + Printable(r.prefix) +
         "\", grace " + Short(r.grace_seconds) + " s\n";
  for (const NodeSummary& n : r.nodes) {
    out += "  " + (n.name.empty() ? std::string("?") : n.name) + "  " + n.address;
    if (n.replica) out += "  replica " + Hex16(*n.replica);
    if (n.discovered) out += "  (discovered)";
    if (n.reachable) {
      out += "  " + Plural(n.keys, "key", "keys") + "\n";
    } else {
      out += "  UNREACHABLE: " + n.error + "\n";
    }
  }
  for (const std::string& p : r.cluster_problems) out += "cluster: " + p + "\n";

  for (const KeyFinding& f : r.divergent) {
    const Classification& c = f.classification;
    std::string head = std::string(KeyClassName(c.cls));
    std::transform(head.begin(), head.end(), head.begin(), [](char ch) {
      return static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    });
    out += "\n" + Printable(f.key) + "  " + head +
           "  (differs for >= " + Fixed(f.divergent_seconds, 1) + " s)";
    if (c.cls == KeyClass::kBehind || c.cls == KeyClass::kConcurrent) {
      out += ": will converge";
    } else if (c.cls == KeyClass::kUnexplainable) {
      out += ": needs a person";
    }
    out += "\n";
    for (std::size_t i = 0; i < c.nodes.size(); ++i) {
      const NodeVerdict& v = c.nodes[i];
      std::string cls(NodeClassName(v.cls));
      if (v.cls == NodeClass::kBehind) {
        cls += " (below";
        for (const std::size_t j : v.behind) {
          cls += ' ';  // (not " " + name: g++ 12 -O3 warns falsely on that, -Wrestrict)
          cls += NodeName(r, j);
        }
        cls += ")";
      }
      out += "  " + NodeName(r, i) + "  " + cls + "  " + LinesText(v) + "\n";
      for (const std::string& p : v.problems) out += "      " + p + "\n";
    }
    for (const RepairResult& rr : f.repairs) {
      out += "  repair " + NodeName(r, rr.node) + ": " +
             (rr.ok ? "pushed the join, " : "FAILED: ") + rr.detail + "\n";
    }
    if (f.after_repair) {
      out += "  after repair: " + std::string(KeyClassName(*f.after_repair)) + "\n";
    } else if (c.cls == KeyClass::kUnexplainable) {
      out += "  not repaired: a state no CRDT history explains is left as evidence\n";
    }
  }

  if (!r.domain.empty()) out += "\n";
  for (const DomainFinding& d : r.domain) {
    std::string nodes;
    for (const std::string& n : d.nodes) nodes += (nodes.empty() ? "" : ", ") + n;
    for (const std::string& v : d.violations) {
      out += "domain: " + Printable(d.key) + " on " + nodes + ": " + v + "\n";
    }
  }

  out += "\nkeys: " + std::to_string(r.keys_scanned) + " scanned, " + std::to_string(r.keys_equal) +
         " equal (" + std::to_string(r.keys_converged_during_scan) +
         " converged during the scan), " + std::to_string(r.keys_within_grace) + " within grace, " +
         std::to_string(r.divergent.size()) + " past grace (" +
         std::to_string(CountDivergent(r, KeyClass::kBehind)) + " behind, " +
         std::to_string(CountDivergent(r, KeyClass::kConcurrent)) + " concurrent, " +
         std::to_string(CountDivergent(r, KeyClass::kUnexplainable)) + " unexplainable)\n";
  if (r.repairs_attempted > 0) {
    out += "repairs: " + std::to_string(r.repairs_attempted) + " pushed, " +
           std::to_string(r.repairs_failed) + " failed\n";
  }
  const Figures& fig = r.figures;
  out += "figures: scan " + Fixed(fig.scan_seconds, 3) + " s (grace wait " +
         Fixed(fig.grace_wait_seconds, 3) + " s), " + Fixed(fig.ms_per_1000_keys, 1) +
         " ms per 1,000 keys, " + std::to_string(fig.states_read) + " states read, " +
         std::to_string(fig.requests) + " requests, " + std::to_string(fig.bytes_received) +
         " bytes received\n";
  const Outcome outcome = OutcomeOf(r);
  out += "result: " + std::string(OutcomeName(outcome));
  if (outcome == Outcome::kNeedsPerson) {
    std::string reasons;
    for (const std::string& why : NeedsPersonReasons(r)) {
      reasons += (reasons.empty() ? "" : "; ") + why;
    }
    for (const std::string& why : ScanErrors(r)) {
      reasons += (reasons.empty() ? "scan incomplete: " : "; scan incomplete: ") + why;
    }
    out += " (" + reasons + ")";
  } else if (outcome == Outcome::kConverging) {
    out += " (every divergence is behind or concurrent: it will converge)";
  }
  out += "\n";
  return out;
}

std::string RenderJson(const Report& r) {
  json nodes = json::array();
  for (const NodeSummary& n : r.nodes) {
    nodes.push_back({{"address", n.address},
                     {"name", n.name},
                     {"replica", n.replica ? json(Hex16(*n.replica)) : json(nullptr)},
                     {"reachable", n.reachable},
                     {"discovered", n.discovered},
                     {"error", n.error},
                     {"keys", n.keys}});
  }
  json divergent = json::array();
  for (const KeyFinding& f : r.divergent) {
    const Classification& c = f.classification;
    json per_node = json::array();
    for (std::size_t i = 0; i < c.nodes.size(); ++i) {
      const NodeVerdict& v = c.nodes[i];
      json behind = json::array();
      for (const std::size_t j : v.behind) behind.push_back(NodeName(r, j));
      json lines = json::array();
      for (const Line& l : v.lines) lines.push_back({{"sku", l.sku}, {"quantity", l.quantity}});
      per_node.push_back({{"node", NodeName(r, i)},
                          {"class", NodeClassName(v.cls)},
                          {"absent", v.absent},
                          {"digest", v.digest ? json(Hex16(*v.digest)) : json(nullptr)},
                          {"behind", std::move(behind)},
                          {"problems", v.problems},
                          {"lines", std::move(lines)},
                          {"domain", v.domain}});
    }
    json repairs = json::array();
    for (const RepairResult& rr : f.repairs) {
      repairs.push_back({{"node", NodeName(r, rr.node)}, {"ok", rr.ok}, {"detail", rr.detail}});
    }
    divergent.push_back(
        {{"key", f.key},
         {"class", KeyClassName(c.cls)},
         {"divergent_seconds", f.divergent_seconds},
         {"needs_person", KeyNeedsPerson(f)},
         {"nodes", std::move(per_node)},
         {"repairs", std::move(repairs)},
         {"after_repair", f.after_repair ? json(KeyClassName(*f.after_repair)) : json(nullptr)}});
  }
  json domain = json::array();
  for (const DomainFinding& d : r.domain) {
    domain.push_back({{"key", d.key}, {"nodes", d.nodes}, {"violations", d.violations}});
  }
  const Figures& fig = r.figures;
  const Outcome outcome = OutcomeOf(r);
  json out = {
      {"result", OutcomeName(outcome)},
      {"exit_code", ExitCode(r)},
      {"needs_person", NeedsPersonReasons(r)},
      {"scan_errors", ScanErrors(r)},
      {"prefix", r.prefix},
      {"grace_seconds", r.grace_seconds},
      {"nodes", std::move(nodes)},
      {"cluster_problems", r.cluster_problems},
      {"keys",
       {{"scanned", r.keys_scanned},
        {"equal", r.keys_equal},
        {"converged_during_scan", r.keys_converged_during_scan},
        {"within_grace", r.keys_within_grace},
        {"divergent", r.divergent.size()},
        {"behind", CountDivergent(r, KeyClass::kBehind)},
        {"concurrent", CountDivergent(r, KeyClass::kConcurrent)},
        {"unexplainable", CountDivergent(r, KeyClass::kUnexplainable)},
        {"domain_violations", r.domain.size()}}},
      {"divergent", std::move(divergent)},
      {"domain", std::move(domain)},
      {"repairs", {{"attempted", r.repairs_attempted}, {"failed", r.repairs_failed}}},
      {"figures",
       {{"scan_seconds", fig.scan_seconds},
        {"grace_wait_seconds", fig.grace_wait_seconds},
        {"ms_per_1000_keys", fig.ms_per_1000_keys},
        {"states_read", fig.states_read},
        {"requests", fig.requests},
        {"bytes_received", fig.bytes_received},
        {"max_divergence_seconds", fig.max_divergence_seconds}}},
  };
  // States that went wrong may hold bytes that are not UTF-8: replace them.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace converge::cart::coherence
