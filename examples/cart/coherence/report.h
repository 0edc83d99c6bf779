// The report of one coherence scan (docs/coherence.md, "Report"): what was
// read, every key that diverged past the grace period and why, the cart
// rules broken, the repairs made, and the figures; rendered for a person or
// as one JSON object. Pure data and formatting.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_REPORT_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "examples/cart/coherence/classify.h"

namespace converge::cart::coherence {

struct NodeSummary {
  std::string address;  // HOST:PORT of its HTTP API
  std::string name;     // from /cluster ("" until it answered)
  std::optional<std::uint64_t> replica;
  bool reachable = false;
  bool discovered = false;  // found through /cluster, not given
  std::string error;        // why it is unreachable
  std::uint64_t keys = 0;   // keys it listed
};

struct RepairResult {
  std::size_t node = 0;  // index into Report::nodes
  bool ok = false;
  std::string detail;  // "changed", "unchanged", or why it failed
};

struct KeyFinding {
  std::string key;
  Classification classification;  // nodes parallel to Report::nodes
  double divergent_seconds = 0;   // lower bound: since first seen differing
  std::vector<RepairResult> repairs;
  std::optional<KeyClass> after_repair;  // the key re-read after the repair
};

struct DomainFinding {
  std::string key;
  std::vector<std::string> nodes;  // the nodes whose state breaks the rules
  std::vector<std::string> violations;
};

struct Figures {
  double scan_seconds = 0;        // wall time of the scan, grace wait included
  double grace_wait_seconds = 0;  // of which spent waiting out the grace period
  double ms_per_1000_keys = 0;    // (scan - wait) per 1,000 keys scanned
  std::uint64_t states_read = 0;
  std::uint64_t requests = 0;
  std::uint64_t bytes_received = 0;
  double max_divergence_seconds = 0;  // longest current divergence, grace included
};

struct Report {
  std::string prefix;
  double grace_seconds = 0;
  std::vector<NodeSummary> nodes;
  std::vector<std::string> cluster_problems;  // not about one key (shared replica ids...)
  std::uint64_t keys_scanned = 0;
  std::uint64_t keys_equal = 0;                  // equal on every node that answered
  std::uint64_t keys_converged_during_scan = 0;  // differed when listed, equal when re-read
  std::uint64_t keys_within_grace = 0;           // differ, but not yet for the grace period
  std::vector<KeyFinding> divergent;             // differ past the grace period, by key
  std::vector<DomainFinding> domain;             // by key
  std::uint64_t repairs_attempted = 0;
  std::uint64_t repairs_failed = 0;
  Figures figures;
};

enum class Outcome {
  kClean,        // nothing differs past the grace period, nothing is wrong
  kRepaired,     // what differed was pushed to equality by --repair
  kConverging,   // keys differ past grace, all behind or concurrent: will converge
  kNeedsPerson,  // the data needs a person (NeedsPersonReasons), or the scan
                 // could not be done (ScanErrors)
};
std::string_view OutcomeName(Outcome o);  // "clean", "repaired", "converging", "needs-attention"

Outcome OutcomeOf(const Report& report);
// What in the data needs a person, one phrase each ("1 unexplainable key",
// a broken cart rule, a failed repair, a cluster problem such as a shared
// replica id).
std::vector<std::string> NeedsPersonReasons(const Report& report);
// Why the scan could not be done in full, one phrase each ("no node to
// read", "1 node unreachable": no answer, or one outside the contract).
std::vector<std::string> ScanErrors(const Report& report);

// The exit status of coherence-check (docs/coherence.md, "Exit status").
inline constexpr int kExitOk = 0;           // nothing needs a person
inline constexpr int kExitNeedsPerson = 1;  // something in the data does
inline constexpr int kExitError = 2;        // bad flags, or the scan could not be done
// kExitNeedsPerson when NeedsPersonReasons is not empty (whatever the scan
// errors), else kExitError when ScanErrors is not empty, else kExitOk.
int ExitCode(const Report& report);
// Counts of KeyFinding by class.
std::uint64_t CountDivergent(const Report& report, KeyClass cls);

std::string RenderHuman(const Report& report);
std::string RenderJson(const Report& report);  // one line, no trailing newline

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_REPORT_H_
