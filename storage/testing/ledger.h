// Ledger: what a fault test's writer acknowledged, and the check that the
// store still holds it (TESTPLAN R8, R10, R11).
//
// The writer updates shopping carts (OrMap<std::string, CausalCounter>):
// increments of an item, which issue one dot each, and removes of an item,
// which remove the dots the writer observed. It tells the ledger, in this
// order:
//   - before a remove is written: TryRemove (the dots it removes), because
//     a remove that was written but not acknowledged (a crash between the
//     two) may still have removed acknowledged increments;
//   - after a write is acknowledged (Update returned ok): AckIncrement or
//     AckRemove. Nothing is acknowledged for a write that failed.
// A child process does the same with one text line each (Format*/AddLine).
//
// Check() then asserts, against the store after the faults:
//   - every acknowledged increment is there: its dot is in the key's causal
//     context and, unless a remove that may have landed covers it, the
//     item holds that dot with that amount ("lost" otherwise);
//   - no (replica, key, counter) was acknowledged for two writes ("dot
//     reused");
//   - the dot lease covers every counter acknowledged under the store's
//     current replica id.

#ifndef CONVERGE_STORAGE_TESTING_LEDGER_H_
#define CONVERGE_STORAGE_TESTING_LEDGER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "crdt/crdt.h"
#include "storage/store.h"

namespace converge::storage::testing {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;

class Ledger {
 public:
  struct Report {
    std::uint64_t acked_increments = 0;
    std::uint64_t acked_removes = 0;
    std::uint64_t tried_removes = 0;
    std::uint64_t lost = 0;         // acknowledged increments missing
    std::uint64_t dots_reused = 0;  // (replica, key, counter) acknowledged twice
    std::uint64_t lease_behind = 0;
    std::set<std::uint64_t> replicas;   // replica ids that acknowledged writes
    std::vector<std::string> problems;  // the first few, with detail

    [[nodiscard]] bool ok() const { return lost == 0 && dots_reused == 0 && lease_behind == 0; }
    [[nodiscard]] std::string Summary() const;
  };

  void AckIncrement(const std::string& key, const std::string& item, crdt::Dot dot,
                    std::uint64_t amount);
  void TryRemove(const std::string& key, const std::string& item,
                 const std::vector<crdt::Dot>& dots);
  void AckRemove(const std::string& key, const std::string& item);

  // Text form, one line each (no newline): written by a child process.
  static std::string FormatIncrement(const std::string& key, const std::string& item, crdt::Dot dot,
                                     std::uint64_t amount);
  static std::string FormatTryRemove(const std::string& key, const std::string& item,
                                     const std::vector<crdt::Dot>& dots);
  static std::string FormatAckRemove(const std::string& key, const std::string& item);
  // Parses a line written by Format*; lines starting with '#' are comments
  // and ignored. Returns false for anything else.
  bool AddLine(std::string_view line);

  [[nodiscard]] std::uint64_t acked_writes() const {
    return report_.acked_increments + report_.acked_removes;
  }

  // Checks the store; the counts of the ledger are in the report too.
  [[nodiscard]] Report Check(Store& store) const;

 private:
  struct Increment {
    std::string key;
    std::string item;
    crdt::Dot dot;
    std::uint64_t amount;
  };
  void Problem(Report& report, std::string what) const;

  std::vector<Increment> increments_;
  // (key, item) -> dots that some remove (acknowledged or not) covered.
  std::map<std::pair<std::string, std::string>, std::set<crdt::Dot>> removed_;
  std::map<std::tuple<std::uint64_t, std::string, std::uint64_t>, std::uint64_t> issued_;
  Report report_;
};

}  // namespace converge::storage::testing

#endif  // CONVERGE_STORAGE_TESTING_LEDGER_H_
