#include "replication/internal/verifier.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "replication/internal/records.h"

namespace converge::replication::internal {
namespace {

// Leaves checked in one step at most (most of a small store's are empty:
// checking one is comparing its hash with 0).
constexpr std::uint32_t kMaxLeavesPerStep = 4096;

struct IndexEntry {
  std::uint32_t leaf;
  std::string key;
  std::uint64_t digest;
};

}  // namespace

StatusOr<std::uint64_t> Verifier::VerifyLeaves(std::uint32_t first, std::uint32_t last,
                                               std::size_t budget, std::uint32_t* end) {
  // The index entries of leaves [first, last), whole leaves only, about
  // `budget` keys.
  std::vector<IndexEntry> entries;
  *end = last;
  CONVERGE_RETURN_IF_ERROR(
      records::ScanDigests(store_, first, last, tree_.leaf_count(),
                           [&](std::uint32_t leaf, std::string_view key, std::uint64_t digest) {
                             if (entries.size() >= budget && leaf != entries.back().leaf) {
                               *end = leaf;
                               return false;
                             }
                             entries.push_back(IndexEntry{leaf, std::string(key), digest});
                             return true;
                           }));
  std::uint64_t repaired = 0;
  storage::WriteBatch fixes;
  std::vector<std::uint64_t> leaf_hashes(*end - first, 0);
  for (const IndexEntry& e : entries) {
    if (tree_.LeafOf(e.key) != e.leaf) {  // filed under the wrong leaf
      fixes.DeleteAux(records::DigestKey(e.leaf, e.key));
      continue;
    }
    StatusOr<std::optional<std::string>> state = store_.Get(e.key);
    if (!state.ok()) return state.status();
    if (!state->has_value()) {  // an entry for a key that has no state
      fixes.DeleteAux(records::DigestKey(e.leaf, e.key));
      continue;
    }
    const std::uint64_t actual = StateDigest(**state);
    if (actual != e.digest) records::PutDigest(fixes, tree_, e.key, actual);
    leaf_hashes[e.leaf - first] ^= HashTree::Contribution(e.key, actual);
  }
  if (!fixes.empty()) {
    CONVERGE_RETURN_IF_ERROR(store_.Write(fixes));
    stats_.digests_repaired += fixes.aux().size();
    repaired += fixes.aux().size();
  }
  for (std::uint32_t leaf = first; leaf < *end; ++leaf) {
    const std::uint64_t in_tree = tree_.NodeHash(tree_.depth(), leaf);
    if (in_tree == leaf_hashes[leaf - first]) continue;
    tree_.XorLeaf(leaf, in_tree ^ leaf_hashes[leaf - first]);
    ++stats_.tree_leaves_repaired;
    ++repaired;
  }
  return repaired;
}

StatusOr<std::uint64_t> Verifier::Step(std::size_t budget) {
  budget = std::max<std::size_t>(budget, 2);
  std::uint64_t repaired = 0;
  // The index and the tree, from the leaf cursor on.
  const std::uint32_t last = std::min(tree_.leaf_count(), next_leaf_ + kMaxLeavesPerStep);
  std::uint32_t end = last;
  StatusOr<std::uint64_t> leaves = VerifyLeaves(next_leaf_, last, budget / 2, &end);
  if (!leaves.ok()) return leaves.status();
  repaired += *leaves;
  next_leaf_ = end;
  if (next_leaf_ >= tree_.leaf_count()) {
    next_leaf_ = 0;
    ++stats_.verify_passes;
  }
  // States the index misses (or holds a malformed digest for), from the key
  // cursor on; their leaves are verified again once the entries are written.
  std::vector<std::pair<std::string, std::uint64_t>> missing;
  std::size_t states = 0;
  std::string last_key;
  bool more = false;
  std::string begin = next_key_;
  if (!begin.empty()) begin.push_back('\0');
  Status lookup = Status::Ok();
  CONVERGE_RETURN_IF_ERROR(
      store_.Scan(begin, "", [&](std::string_view key, std::string_view state) {
        if (states >= budget - budget / 2) {
          more = true;
          return false;
        }
        ++states;
        last_key = std::string(key);
        StatusOr<std::optional<std::string>> entry =
            store_.GetAux(records::DigestKey(tree_.LeafOf(key), key));
        if (!entry.ok()) {
          lookup = entry.status();
          return false;
        }
        if (!entry->has_value() || !records::ReadFixed64(**entry)) {
          missing.emplace_back(last_key, StateDigest(state));
        }
        return true;
      }));
  CONVERGE_RETURN_IF_ERROR(lookup);
  if (!missing.empty()) {
    storage::WriteBatch fixes;
    for (const auto& [key, digest] : missing) records::PutDigest(fixes, tree_, key, digest);
    CONVERGE_RETURN_IF_ERROR(store_.Write(fixes));
    stats_.digests_repaired += missing.size();
    repaired += missing.size();
    for (const auto& [key, digest] : missing) {
      const std::uint32_t leaf = tree_.LeafOf(key);
      std::uint32_t leaf_end = leaf + 1;
      StatusOr<std::uint64_t> again =
          VerifyLeaves(leaf, leaf + 1, std::numeric_limits<std::size_t>::max(), &leaf_end);
      if (!again.ok()) return again.status();
      repaired += *again;
    }
  }
  next_key_ = more ? last_key : std::string();
  return repaired;
}

}  // namespace converge::replication::internal
