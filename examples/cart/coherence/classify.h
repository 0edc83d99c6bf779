// The judgement coherence-check makes about one key (docs/coherence.md):
// given what every node answered for the key, is the cluster coherent, and
// when it is not, why? Pure functions over decoded states, no I/O.
//
// A cart is an OrMap<Sku, CausalCounter>: a causal CRDT (s, c) with a dot
// store s (the live increments, each dot carrying its amount, filed under
// its line's SKU) and a causal context c (every dot the replica has seen).
// The join keeps a dot that both stores hold, or that one store holds and
// the other context has not seen:
//
//   (s, c) ⊔ (s', c') = ((s ∩ s') ∪ (s \ c') ∪ (s' \ c), c ∪ c')
//
// and a state a is below b (a ≤ b) exactly when a ⊔ b == b. Between two
// states that gossip produced, every dot is in one of these cases:
//   live on both sides               the same write: same line, same amount
//   live on one, unseen by the other the other is behind on that write
//   live on one, seen but not live   the other removed it (an observed
//     on the other                   remove creates no dot, so this holds
//                                    even when both contexts are equal):
//                                    this side is behind on the removal
//   seen by one only, live nowhere   the other is behind on the removal
// so any two legitimate states are ordered (one behind) or concurrent, and
// the join of all of them is what every replica reaches after exchange. What
// no history explains is a dot stored with two payloads or under two lines
// (one dot names one write: corruption or a bug, and the join would keep
// whichever payload each side already holds, so the replicas would never
// converge), a state that does not decode and validate, a node whose
// reported digest is not that of its state, and a dot of a live replica's id
// beyond what that replica itself has issued for the key.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_CLASSIFY_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_CLASSIFY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crdt/replica_id.h"
#include "examples/cart/cart.h"

namespace converge::cart::coherence {

// The digest the anti-entropy tree keeps for a key: a 64-bit hash of the
// key's canonical encoded state (replication::StateDigest, which cart-server
// reports as "digest").
std::uint64_t StateDigest(std::string_view encoded_state);

// A node as the classifier names it.
struct NodeId {
  std::string name;
  // The replica id the node issues dots with now (from /cluster), when known;
  // enables the check that no state holds dots this replica never issued.
  std::optional<crdt::ReplicaId> replica;
};

// What one node answered for one key.
struct NodeRead {
  enum class Kind {
    kState,        // the node holds the key: `state` is the encoding it sent
    kAbsent,       // the node does not hold the key (404): bottom
    kUnreachable,  // no answer (connection, timeout, 5xx): unknown
    kBadAnswer,    // an answer outside the contract (bad JSON, base64...)
  };
  Kind kind = Kind::kAbsent;
  std::string state;                    // kState
  std::optional<std::uint64_t> digest;  // kState: the digest the node reported
  std::string error;                    // kUnreachable, kBadAnswer

  static NodeRead State(std::string bytes, std::optional<std::uint64_t> digest) {
    return {Kind::kState, std::move(bytes), digest, {}};
  }
  static NodeRead Absent() { return {}; }
  static NodeRead Unreachable(std::string why) {
    return {Kind::kUnreachable, {}, {}, std::move(why)};
  }
  static NodeRead BadAnswer(std::string why) { return {Kind::kBadAnswer, {}, {}, std::move(why)}; }
};

// The key as a whole, worst first.
enum class KeyClass {
  kEqual,          // every node that answered holds the same state
  kBehind,         // some node holds the join; the others are below it
  kConcurrent,     // no node holds the join: updates still to exchange
  kUnexplainable,  // some state no CRDT history explains: needs a person
};

enum class NodeClass {
  kCurrent,        // holds the join of every explainable state
  kBehind,         // below another node's state
  kConcurrent,     // below the join, but below no single other node
  kUnexplainable,  // its state (or answer) cannot be explained
  kUnknown,        // unreachable: not judged
};

std::string_view KeyClassName(KeyClass c);    // "equal", "behind", ...
std::string_view NodeClassName(NodeClass c);  // "current", "behind", ...

struct NodeVerdict {
  NodeClass cls = NodeClass::kUnknown;
  bool absent = false;                  // held no state (judged as bottom)
  std::optional<std::uint64_t> digest;  // of the bytes received
  std::vector<std::size_t> behind;      // kBehind: nodes whose state is above this one
  std::vector<std::string> problems;    // kUnexplainable: why, one line each
  std::vector<Line> lines;              // the cart as this node holds it (decodable states)
  std::vector<std::string> domain;      // DomainViolations of this node's state
};

struct Classification {
  KeyClass cls = KeyClass::kEqual;
  std::vector<NodeVerdict> nodes;  // parallel to the input
  // The key name itself breaks the cart rules (not "cart:<valid id>").
  std::optional<std::string> key_problem;
  // The join of every state that is not unexplainable (what the cluster
  // converges to); nullopt when there is none.
  std::optional<CartState> join;
  // Nodes whose finding could be an artefact of reading the nodes one after
  // another (a dot issued by its owner after the owner was read, a digest
  // read apart from its state): read them again, after the others, and
  // classify again before reporting.
  std::vector<std::size_t> reread;

  [[nodiscard]] bool HasDomainViolations() const;
};

// Classifies one key from every node's answer. `nodes` and `reads` are
// parallel. Unreachable nodes are not judged; the others are judged among
// themselves. Never throws on any input bytes.
Classification Classify(std::string_view key, std::span<const NodeId> nodes,
                        std::span<const NodeRead> reads);

// The cart rules for one decoded state (DomainViolations) and its key
// (CheckCartId of what follows "cart:").
std::vector<std::string> DomainCheck(const CartState& state);
std::optional<std::string> KeyCheck(std::string_view key);

// One POST /internal/merge of the repair.
struct RepairPush {
  std::size_t node = 0;
  std::string state;  // the canonical encoding of the join
};

// The repair of a classified key: push the join to every node that is
// behind or concurrent. Nothing when the key is equal or unexplainable (an
// unexplainable state is reported, never "repaired": joining into it would
// spread or bury the evidence).
std::vector<RepairPush> PlanRepair(const Classification& c);

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_CLASSIFY_H_
