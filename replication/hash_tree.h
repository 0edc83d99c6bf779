// HashTree: the digest tree anti-entropy compares (docs/replication.md).
//
// Keys fall into 16^depth leaves by the top bits of a 64-bit hash of the key.
// Every key contributes H(key, digest of its state); a node's hash is the XOR
// of the contributions of the keys below it. XOR makes the tree incremental:
// a key whose state changes updates its leaf and each ancestor in O(depth),
// and nothing is ever rebuilt per round. Two replicas compare roots, then
// the children of differing nodes, down to the leaves, so the work follows
// the number of differing keys, not the number of keys.
//
// Memory: 8 bytes per node, (16^(depth+1) - 1) / 15 nodes; depth 4 (65,536
// leaves) is 559 KiB. Keys themselves are not held here (the store's digest
// index lists a leaf's keys).

#ifndef CONVERGE_REPLICATION_HASH_TREE_H_
#define CONVERGE_REPLICATION_HASH_TREE_H_

#include <array>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "crdt/replica_id.h"

namespace converge::replication {

// 64-bit hash of bytes (non-cryptographic; peers are authenticated).
inline std::uint64_t Hash64(std::string_view bytes, std::uint64_t seed = 0) {
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ seed ^ (bytes.size() * 0xff51afd7ed558ccdULL);
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    std::uint64_t word = 0;
    for (std::size_t b = 0; b < 8; ++b) {
      word |= std::uint64_t{static_cast<unsigned char>(bytes[i + b])} << (8 * b);
    }
    h = crdt::internal::Mix64(h ^ word) + 0x632be59bd9b4e019ULL;
  }
  std::uint64_t tail = 0;
  for (std::size_t b = 0; i + b < bytes.size(); ++b) {
    tail |= std::uint64_t{static_cast<unsigned char>(bytes[i + b])} << (8 * b);
  }
  return crdt::internal::Mix64(h ^ tail ^ 0xa0761d6478bd642fULL);
}

class HashTree {
 public:
  static constexpr int kFanout = 16;
  using Children = std::array<std::uint64_t, kFanout>;

  explicit HashTree(int depth = 4) : depth_(depth) {
    assert(depth >= 1 && depth <= 6);
    std::size_t width = 1;
    for (int level = 0; level <= depth; ++level) {
      levels_.emplace_back(width, 0);
      width *= kFanout;
    }
  }

  [[nodiscard]] int depth() const { return depth_; }
  [[nodiscard]] std::uint32_t leaf_count() const {
    return static_cast<std::uint32_t>(levels_.back().size());
  }
  // Nodes at `level` (16^level).
  [[nodiscard]] std::uint32_t NodeCount(int level) const {
    return static_cast<std::uint32_t>(levels_[static_cast<std::size_t>(level)].size());
  }

  [[nodiscard]] std::uint32_t LeafOf(std::string_view key) const {
    return static_cast<std::uint32_t>(Hash64(key, kKeySeed) >> (64 - 4 * depth_));
  }

  // What `key` with state digest `digest` contributes.
  static std::uint64_t Contribution(std::string_view key, std::uint64_t digest) {
    return crdt::internal::Mix64(Hash64(key, kEntrySeed) ^ digest) | 1;  // never 0
  }

  // The key's state digest changed from `before` (nullopt: the key was new)
  // to `after`.
  void Update(std::string_view key, std::optional<std::uint64_t> before, std::uint64_t after) {
    std::uint64_t change = Contribution(key, after);
    if (before) change ^= Contribution(key, *before);
    XorLeaf(LeafOf(key), change);
  }

  // XORs `change` into a leaf's hash and every node above it (a leaf's hash
  // is the XOR of its keys' contributions; a node's, of its children's).
  void XorLeaf(std::uint32_t leaf, std::uint64_t change) {
    std::uint64_t index = leaf;
    for (int level = depth_; level >= 0; --level) {
      levels_[static_cast<std::size_t>(level)][index] ^= change;
      index /= kFanout;
    }
  }

  [[nodiscard]] std::uint64_t root() const { return levels_[0][0]; }

  [[nodiscard]] std::uint64_t NodeHash(int level, std::uint32_t index) const {
    return levels_[static_cast<std::size_t>(level)][index];
  }

  // The hashes of the children of node (level, index); level < depth.
  [[nodiscard]] Children ChildrenOf(int level, std::uint32_t index) const {
    Children out{};
    const auto& next = levels_[static_cast<std::size_t>(level) + 1];
    for (int c = 0; c < kFanout; ++c) {
      out[static_cast<std::size_t>(c)] =
          next[std::size_t{index} * kFanout + static_cast<std::size_t>(c)];
    }
    return out;
  }

  void Clear() {
    for (auto& level : levels_) std::fill(level.begin(), level.end(), 0);
  }

 private:
  static constexpr std::uint64_t kKeySeed = 0x5eed0001;
  static constexpr std::uint64_t kEntrySeed = 0x5eed0002;

  int depth_;
  std::vector<std::vector<std::uint64_t>> levels_;
};

}  // namespace converge::replication

#endif  // CONVERGE_REPLICATION_HASH_TREE_H_
