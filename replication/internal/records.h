// The node's persisted records: the layout of its auxiliary keys
// (storage::WriteBatch::PutAux), written atomically with the states they
// describe, and read back when a node starts. The one place that knows the
// layout; the frame fuzzer checks stores against it too.
//
//   d/<leaf BE32><key>   -> Fixed64 digest   the digest index (one per state)
//   u/seq                -> Fixed64          our update sequence
//   u/gen                -> Fixed64          the last process generation
//   o/<replica BE64>     -> Fixed64          the highest update seq held of an origin
//   m/<name>             -> 'a'|'l' Fixed64 generation, address
//                                            a member (alive or left; written
//                                            as 'A'|'L' address before the
//                                            generation was kept)
//   f/<name>             -> Fixed64 generation, Fixed64 wall ms
//                                            a member an operator forgot
//   x/<name>             -> Fixed64 gen, Fixed64 next
//                                            where we are in a peer's delta buffer
//   p/state              -> PruneRecord (Fixed64 fields, see records.cc)
//                                            pruning of retired replica ids
//
// Fixed64 is little-endian; the BE parts of keys are big-endian so that keys
// sort by leaf and by replica.

#ifndef CONVERGE_REPLICATION_INTERNAL_RECORDS_H_
#define CONVERGE_REPLICATION_INTERNAL_RECORDS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/codec/status.h"
#include "replication/hash_tree.h"
#include "storage/store.h"

namespace converge::replication::internal::records {

std::string Fixed64(std::uint64_t v);
std::optional<std::uint64_t> ReadFixed64(std::string_view bytes);

// --- the digest index ----------------------------------------------------------

std::string DigestKey(std::uint32_t leaf, std::string_view key);
// The first digest key of `leaf`; for leaf >= leaf_count, the end of the index.
std::string DigestLeafBegin(std::uint32_t leaf, std::uint32_t leaf_count);
// Calls fn(leaf, key, digest) for the keys of leaves [first, last), in leaf
// order (`leaf`: the one the entry is filed under; malformed entries are
// skipped); fn returns false to stop.
using DigestFn =
    std::function<bool(std::uint32_t leaf, std::string_view key, std::uint64_t digest)>;
Status ScanDigests(storage::Store& store, std::uint32_t first, std::uint32_t last,
                   std::uint32_t leaf_count, const DigestFn& fn);
// Puts a key's digest into `batch`.
void PutDigest(storage::WriteBatch& batch, const HashTree& tree, std::string_view key,
               std::uint64_t digest);
// Builds the tree from the whole digest index.
Status LoadTree(storage::Store& store, HashTree& tree);

// --- our update sequence and process generation ------------------------------

void PutUpdateSequence(storage::WriteBatch& batch, std::uint64_t seq);
StatusOr<std::uint64_t> LoadUpdateSequence(storage::Store& store);  // 0 when none
void PutGeneration(storage::WriteBatch& batch, std::uint64_t generation);
StatusOr<std::uint64_t> LoadGeneration(storage::Store& store);  // 0 when none

// --- origins: the highest update sequence held of each replica ---------------

void PutOrigin(storage::WriteBatch& batch, std::uint64_t replica, std::uint64_t seq);
void DeleteOrigin(storage::WriteBatch& batch, std::uint64_t replica);
StatusOr<std::map<std::uint64_t, std::uint64_t>> LoadOrigins(storage::Store& store);

// --- members -------------------------------------------------------------------

struct MemberRecord {
  std::string name;
  std::string address;
  bool left = false;
  std::uint64_t generation = 0;  // its process generation as last learned
};
void PutMember(storage::WriteBatch& batch, const MemberRecord& member);
void DeleteMember(storage::WriteBatch& batch, std::string_view name);
StatusOr<std::vector<MemberRecord>> LoadMembers(storage::Store& store);

// --- forgotten members ---------------------------------------------------------

struct ForgottenRecord {
  std::string name;
  std::uint64_t generation = 0;  // entries up to this generation are forgotten
  std::uint64_t wall_ms = 0;     // when
};
void PutForgotten(storage::WriteBatch& batch, const ForgottenRecord& forgotten);
void DeleteForgotten(storage::WriteBatch& batch, std::string_view name);
StatusOr<std::vector<ForgottenRecord>> LoadForgotten(storage::Store& store);

// --- pruning of retired replica ids (internal/pruning.h) ------------------------

struct PruneLevelRecord {
  std::uint64_t level = 0;
  std::uint64_t nonce = 0;             // of the proposal that made it
  std::vector<std::uint64_t> retired;  // renamed onto the archive, in this order
  friend bool operator==(const PruneLevelRecord&, const PruneLevelRecord&) = default;
};
struct PruneRecord {
  std::uint64_t level = 0;                  // the states' pruning level
  std::vector<PruneLevelRecord> tail;       // the latest levels, oldest first
  std::optional<PruneLevelRecord> pending;  // a proposal we reported on
  std::string coordinator;                  // who proposed `pending`
  friend bool operator==(const PruneRecord&, const PruneRecord&) = default;
};
void PutPrune(storage::WriteBatch& batch, const PruneRecord& record);
StatusOr<PruneRecord> LoadPrune(storage::Store& store);  // level 0 when none
StatusOr<PruneRecord> ParsePrune(std::string_view bytes);
std::string_view PruneKey();

// --- delta progress: where we are in each peer's delta buffer ---------------

struct ProgressRecord {
  std::string peer;
  std::uint64_t generation = 0;  // their process generation
  std::uint64_t expected = 1;    // the next entry of theirs we may apply
};
// The key and value of a progress record (it commits with the changes of the
// interval it follows, so the batch is made elsewhere).
std::pair<std::string, std::string> ProgressEntry(const ProgressRecord& progress);
void DeleteProgress(storage::WriteBatch& batch, std::string_view peer);
StatusOr<std::vector<ProgressRecord>> LoadProgress(storage::Store& store);

}  // namespace converge::replication::internal::records

#endif  // CONVERGE_REPLICATION_INTERNAL_RECORDS_H_
