// What the frame fuzzer (frame_fuzzer.cc) and its corpus generator
// (make_corpus.cc) share: the node under test, "n1", set up identically in
// both, so that frames recorded from a simulated cluster (acks naming n1's
// generation, intervals continuing n1's buffer) mean the same to the fuzzed
// node as they did in the recording.
//
// The node's generation comes from its wall clock and NodeOptions::seed at
// Start; both clocks start at SimClock's default wall offset at virtual time
// 0, and the seed is fixed here.

#ifndef CONVERGE_REPLICATION_FUZZ_FRAME_HARNESS_H_
#define CONVERGE_REPLICATION_FUZZ_FRAME_HARNESS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "crdt/causal_counter.h"
#include "crdt/codec/registry.h"
#include "crdt/lww_register.h"
#include "crdt/or_map.h"
#include "crdt/replica_id.h"
#include "replication/node.h"

namespace converge::replication::fuzz {

using Cart = crdt::OrMap<std::string, crdt::CausalCounter>;
using Profile = crdt::LwwRegister<std::string>;

inline constexpr std::string_view kCluster = "converge";
inline constexpr std::string_view kTargetName = "n1";
// SimClock's default wall-clock offset (sim_world.h): WallMs at time 0.
inline constexpr std::uint64_t kWallOffsetMs = 1'700'000'000'000ULL;
// TcpTransportOptions::max_frame_bytes by default (tcp_transport.h), the
// cap of every frame after the hello; the node's message cap is the smaller
// of its own default and this (examples/cart/server/main.cc).
inline constexpr std::size_t kTransportMaxFrameBytes = std::size_t{4} << 20;
inline constexpr std::uint64_t kTargetReplica = 0x6e31'0000'0000'0001ULL;
inline constexpr std::uint64_t kGossipIntervalMs = 200;

inline std::shared_ptr<const codec::TypeRegistry> Registry() {
  static const auto registry =
      std::make_shared<const codec::TypeRegistry>(codec::TypeRegistry::WithBuiltins());
  return registry;
}

// The options of a node of the recorded cluster ("n1", "n2", ...): the
// cart server's defaults, sim addresses (the node name), n1 as the seed;
// but a digest tree of depth 2 (256 leaves) instead of 4: the same code
// paths, and a node costs 2 KiB of tree instead of 559 KiB, which a fresh
// node per fuzzer input would otherwise spend most of its time zeroing.
inline NodeOptions OptionsFor(const std::string& name, std::uint64_t seed) {
  NodeOptions o;
  o.name = name;
  o.address = name;
  o.cluster = std::string(kCluster);
  if (name != kTargetName) o.seeds = {std::string(kTargetName)};
  o.metadata = R"({"http":"127.0.0.1:80)" + name.substr(1) + R"("})";
  o.gossip_interval_ms = kGossipIntervalMs;
  o.max_message_bytes = std::min(o.max_message_bytes, kTransportMaxFrameBytes);
  o.tree_depth = 2;
  o.seed = seed;
  return o;
}

inline NodeOptions TargetOptions() { return OptionsFor(std::string(kTargetName), 0x5eed0001); }

// The target's own writes right after Start (so that acks, anti-entropy and
// pulls have something of its own to act on): two cart lines and an LWW
// register. Posted; the caller runs the clock's posted work.
inline void InitialWrites(Node& node) {
  const auto ignore = [](auto) {};
  node.Update<Cart>(
      "cart:alice",
      [](Cart& c, crdt::ReplicaId self) {
        return c.Update("apple", [&](crdt::CausalCounter& q) { return q.Increment(self, 2); });
      },
      WriteConsistency::kLocal, std::function<void(StatusOr<Cart>)>(ignore));
  node.Update<Cart>(
      "cart:bob",
      [](Cart& c, crdt::ReplicaId self) {
        return c.Update("pear", [&](crdt::CausalCounter& q) { return q.Increment(self, 1); });
      },
      WriteConsistency::kLocal, std::function<void(StatusOr<Cart>)>(ignore));
  node.Update<Profile>(
      "profile:alice",
      [&node](Profile& p, crdt::ReplicaId self) {
        return p.Assign(self, node.Now(), std::string("alice@example.org"));
      },
      WriteConsistency::kLocal, std::function<void(StatusOr<Profile>)>(ignore));
}

}  // namespace converge::replication::fuzz

#endif  // CONVERGE_REPLICATION_FUZZ_FRAME_HARNESS_H_
