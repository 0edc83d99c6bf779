// One coherence scan of a cluster, and the memory a standing service keeps
// between scans (docs/coherence.md, "How a scan works").
//
// A scan asks every node for /cluster (its name and replica id; with
// discovery, its members), lists every node's keys with their digests, and
// reads states where needed: every key whose digests differ is read from
// every node and classified (classify.h); a key whose digests agree is read
// from one node (taken in turn) for the cart rules. A key still differing
// after the grace period is reported; with repair, the join is pushed to the
// nodes that are behind or concurrent and the key is read again.
//
// Not thread-safe; the NodeApi objects are used from the calling thread.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_

#include <chrono>
#include <cstddef>
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
  std::chrono::milliseconds grace{2000};
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

// The environment a scan runs in, injectable for tests.
struct ScanEnvironment {
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
  std::function<void(Clock::duration)> sleep;  // default: std::this_thread::sleep_for
  // Makes the API of a node found through discovery.
  std::function<std::unique_ptr<NodeApi>(const HostPort&)> connect;
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
};

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_SCANNER_H_
