// One coherence scan of a cluster, and the memory a standing service keeps
// between scans (docs/coherence.md, "How a scan works").
//
// A scan asks every node for /cluster (its name and replica id; with
// discovery, its members), lists every node's keys with their digests, and
// reads states where needed: every key whose digests differ is read from
// every node and classified (classify.h); a key whose digests agree is read
// from one node (taken in turn) for the cart rules. A key still differing
// after the grace period is reported; with repair, the join is pushed to the
// nodes that are behind or concurrent and the key is read again. A scan of
// more than kProgressEvery keys reports its progress (ScanEnvironment).
//
// Not thread-safe; the NodeApi objects are used from the calling thread.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "examples/cart/coherence/classify.h"
#include "examples/cart/coherence/node_api.h"
#include "examples/cart/coherence/report.h"

namespace converge::cart::coherence {

using Clock = std::chrono::steady_clock;

// How long each key has been seen differing, across scans.
class DivergenceTracker {
 public:
  // When `key` was first seen differing (`now` if it is new).
  Clock::time_point Mark(const std::string& key, Clock::time_point now);
  // Ends the divergence of `key`; how long it lasted (nullopt: not tracked).
  std::optional<Clock::duration> Clear(const std::string& key, Clock::time_point now);
  // Ends every divergence whose key is not in `still`; how long each lasted.
  std::vector<Clock::duration> Retain(const std::set<std::string>& still, Clock::time_point now);
  // The longest divergence going on, zero when none.
  [[nodiscard]] Clock::duration Longest(Clock::time_point now) const;
  [[nodiscard]] std::size_t size() const { return since_.size(); }

 private:
  std::map<std::string, Clock::time_point> since_;
};

struct ScanOptions {
  std::string prefix{kKeyPrefix};
  Clock::duration grace = std::chrono::seconds(2);
  // One-shot mode: a key differing within the grace period is read again
  // once the period has passed (the scan waits). Watch mode: it is carried
  // to the next scan by the tracker instead.
  bool wait_for_grace = true;
  bool repair = false;
  // Read one copy of every key whose digests agree, for the cart rules.
  // Off: only differing keys are read (faster; rules checked on those only).
  bool read_equal_states = true;
  // Add the members /cluster lists (not those that left) to the nodes given.
  bool discover = false;
  std::size_t page_limit = 1000;
  std::size_t max_keys = 1'000'000;  // per node; more is refused as an answer
};

// Progress is reported only by a scan that has passed this many keys (on
// one node, or in all), every this many keys listed by a node and every this
// many states read, plus once when the scan ends.
inline constexpr std::uint64_t kProgressEvery = 10'000;

// Where a large scan is (ScanEnvironment::progress).
struct ScanProgress {
  enum class Stage {
    kListing,    // `node` has listed `keys_listed` keys so far
    kReading,    // the first reading: `keys_judged` of `keys` keys judged
    kRereading,  // one-shot, after the grace wait: `differing_done` of
                 // `differing` differing keys read again
    kRepairing,  // --repair: `differing_done` of `differing` keys done
    kDone,       // the scan is over: `keys` keys, `states_read` states read
  };
  Stage stage = Stage::kListing;
  std::string node;  // kListing: the node's name (or address)
  std::uint64_t keys_listed = 0;
  std::uint64_t keys = 0;  // from kReading on: the keys of the scan (all nodes)
  std::uint64_t keys_judged = 0;
  std::uint64_t differing = 0;  // kRereading, kRepairing: keys found differing
  std::uint64_t differing_done = 0;
  std::uint64_t states_read = 0;  // in this scan, from kReading on
  double seconds = 0;             // since the scan began
};
// One line for a person, without a newline ("coherence-check: ...").
std::string ProgressLine(const ScanProgress& progress);

// The environment a scan runs in, injectable for tests.
struct ScanEnvironment {
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
  std::function<void(Clock::duration)> sleep;  // default: std::this_thread::sleep_for
  // Makes the API of a node found through discovery.
  std::function<std::unique_ptr<NodeApi>(const HostPort&)> connect;
  // Told the progress of a scan past kProgressEvery keys (none by default;
  // coherence-check prints it on stderr).
  std::function<void(const ScanProgress&)> progress;
};

class Scanner {
 public:
  struct Node {
    HostPort address;
    std::unique_ptr<NodeApi> api;
  };

  Scanner(std::vector<Node> nodes, ScanOptions options, ScanEnvironment env = {});

  // One scan. The tracker carries over to the next call.
  Report Scan();

  // How long each divergence that ended in the last scan had lasted.
  [[nodiscard]] const std::vector<Clock::duration>& resolved() const { return resolved_; }

 private:
  struct Active;  // a node taking part in this scan

  std::vector<Active> Membership(Report& report);
  void ListKeys(Active& node,
                std::map<std::string, std::vector<std::optional<std::uint64_t>>>& keys,
                std::size_t index, std::size_t count);
  NodeRead ReadOne(Active& node, const std::string& key);
  Classification ReadAndClassify(std::vector<Active>& nodes, const std::vector<NodeId>& ids,
                                 const std::string& key);
  void Repair(std::vector<Active>& nodes, const std::vector<NodeId>& ids, KeyFinding& finding,
              Report& report);
  void Progress(ScanProgress progress);

  struct Known {
    HostPort address;
    std::unique_ptr<NodeApi> api;
    bool discovered = false;
  };
  std::vector<Known> known_;  // given nodes first, then discovered ones
  ScanOptions options_;
  ScanEnvironment env_;
  DivergenceTracker tracker_;
  std::vector<Clock::duration> resolved_;
  std::uint64_t states_read_ = 0;
  std::size_t next_reader_ = 0;  // which node reads the next agreeing key
  // The scan under way, for its progress.
  struct Current {
    Clock::time_point start;
    std::uint64_t states_before = 0;  // states_read_ when it began
    bool large = false;               // past kProgressEvery keys: progress is reported
    ScanProgress where;               // the stage and counts the next report gives
  };
  Current current_;
};

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_
