// The application of remote states: deltas from a peer's interval, states
// from an anti-entropy session or a repair tool, joined into the store as one
// durable batch together with what the node derives from them (the digest
// index and tree, the origin table). It returns what changed; forwarding the
// changes (the delta buffer), telling subscribers and the dot-safety check
// are the node's.

#ifndef CONVERGE_REPLICATION_INTERNAL_APPLY_H_
#define CONVERGE_REPLICATION_INTERNAL_APPLY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "crdt/codec/registry.h"
#include "crdt/codec/status.h"
#include "crdt/hlc.h"
#include "replication/hash_tree.h"
#include "replication/node.h"
#include "storage/store.h"

namespace converge::replication::internal {

// A remote delta or state; views into the message being handled (or the
// caller's strings).
struct RemoteEntry {
  std::string_view key;
  std::string_view delta;
  std::uint64_t origin = 0;      // the replica whose update made it (0: unknown)
  std::uint64_t origin_seq = 0;  // that replica's update sequence
};

struct Applied {
  struct Change {
    std::string_view key;  // a view into the entries
    std::optional<std::string> before;
    std::string now;
  };
  // The keys whose state changed, in the order of their first change.
  std::vector<Change> changes;
  // The entries that changed a state, in order (indexes into the entries).
  std::vector<std::size_t> applied;
  // The entries refused for a timestamp too far ahead of our clock.
  std::vector<std::size_t> refused;
  // The entries that do not decode as a type we know, or do not join into
  // our state (counted in messages_rejected too): not held.
  struct Rejection {
    std::size_t index;
    std::string reason;
  };
  std::vector<Rejection> rejected;
  // The highest update sequence of each origin among the entries.
  std::map<std::uint64_t, std::uint64_t> origins;
};

class StateApplier {
 public:
  StateApplier(storage::Store& store, const codec::TypeRegistry& registry, HashTree& tree,
               crdt::Hlc& hlc, NodeStats& stats)
      : store_(store), registry_(registry), tree_(tree), hlc_(hlc), stats_(stats) {}

  struct Options {
    // The time last-writer-wins timestamps are judged against; called once,
    // when an entry has a timestamp.
    std::function<std::uint64_t()> reference_ms;
    // Keys known not to be in the store (nothing to read): a bootstrap's.
    std::function<bool(std::string_view key)> known_absent;
    // An auxiliary write to commit with the changes, if there are any,
    // given the indexes of the entries not held (refused or rejected).
    std::function<std::pair<std::string, std::string>(const std::vector<std::size_t>& not_held)>
        progress;
    // Entries to refuse (not held, reported in Applied::refused) given our
    // state of the key: pruning's, while a proposal is recorded.
    std::function<bool(std::string_view delta, const std::optional<std::string>& state)> refuse;
  };

  // Joins `entries` into our states as one durable batch. Entries that do
  // not decode or join are skipped (Applied::rejected); an error means
  // nothing was written.
  StatusOr<Applied> Apply(std::span<const RemoteEntry> entries, const Options& options);

  // The origin table: the highest update sequence held of each replica
  // (loading keeps the greater of what is held and what is stored).
  Status LoadOrigins();
  [[nodiscard]] const std::map<std::uint64_t, std::uint64_t>& origins() const { return origins_; }
  // Drops the entries of every replica not in `keep` (retired incarnations,
  // forgotten members), from memory and the store: the table stays bounded
  // by the members, however many incarnations the cluster went through.
  // Only the current replicas' entries are ever read (gossip tells each
  // member what we hold of its current replica); a straggling delta of a
  // retired one only brings its entry back until the next call.
  void RetainOrigins(const std::set<std::uint64_t>& keep);

 private:
  storage::Store& store_;
  const codec::TypeRegistry& registry_;
  HashTree& tree_;
  crdt::Hlc& hlc_;
  NodeStats& stats_;
  std::map<std::uint64_t, std::uint64_t> origins_;
};

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_APPLY_H_
