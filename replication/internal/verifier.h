// Self-checking state (docs/replication.md, "Self-checking state"): the
// digest tree and the digest index are derived from the stored states, and
// a node trusts them to find what differs between replicas. A wrong digest
// would keep two replicas apart forever (anti-entropy compares the wrong
// thing) without anyone noticing. So the node rebuilds the tree from the
// store when the store reopened after a disk error, and verifies the index
// and the tree against the states continuously, a few keys per round, fixing
// what it finds (like Riak's active anti-entropy tree rebuilds).

#ifndef CONVERGE_REPLICATION_INTERNAL_VERIFIER_H_
#define CONVERGE_REPLICATION_INTERNAL_VERIFIER_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "crdt/codec/status.h"
#include "replication/hash_tree.h"
#include "replication/node.h"
#include "storage/store.h"

namespace converge::replication::internal {

class Verifier {
 public:
  Verifier(storage::Store& store, HashTree& tree, NodeStats& stats)
      : store_(store), tree_(tree), stats_(stats) {}

  // Verifies about `budget` keys (at least one leaf): the next leaves of the
  // digest index against the states and the tree, and the next states
  // against the index. Returns what it repaired (0: all was well); an error
  // when the store failed (the same keys are verified again next time).
  StatusOr<std::uint64_t> Step(std::size_t budget);

 private:
  // Checks leaves [first, *end): every index entry against its key's state
  // (fixing wrong or dangling entries), then each leaf's hash in the tree
  // against the states. Stops after the leaf at which about `budget` keys
  // were read: *end is set to the first leaf not checked (<= last).
  StatusOr<std::uint64_t> VerifyLeaves(std::uint32_t first, std::uint32_t last, std::size_t budget,
                                       std::uint32_t* end);

  storage::Store& store_;
  HashTree& tree_;
  NodeStats& stats_;
  std::uint32_t next_leaf_ = 0;
  std::string next_key_;  // the states' cursor ("": from the first key)
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_VERIFIER_H_
