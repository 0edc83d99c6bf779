// How coherence-check talks to one cart-server: the four calls it makes
// (docs/cart-api.md), behind an interface so the scanner runs against fake
// nodes in tests and against HTTP in coherence-check.

#ifndef CONVERGE_EXAMPLES_CART_COHERENCE_NODE_API_H_
#define CONVERGE_EXAMPLES_CART_COHERENCE_NODE_API_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "crdt/codec/status.h"
#include "examples/cart/coherence/wire.h"

namespace converge::cart::coherence {

// Failures are Status values: kUnavailable for no usable answer (connection
// refused or lost, timeout, 5xx, an unexpected status), kInvalidArgument for
// an answer that breaks the contract, kNotFound for a 404 where the call
// has no absent case, kFailedPrecondition for a 4xx refusal.
class NodeApi {
 public:
  virtual ~NodeApi() = default;

  // GET /cluster
  virtual StatusOr<ClusterInfo> Cluster() = 0;
  // GET /internal/keys?prefix=&after=&limit=
  virtual StatusOr<KeyPage> Keys(std::string_view prefix, std::string_view after,
                                 std::size_t limit) = 0;
  // GET /internal/state?key= ; nullopt when the node does not hold the key.
  virtual StatusOr<std::optional<StateAnswer>> State(std::string_view key) = 0;
  // POST /internal/merge
  virtual StatusOr<MergeAnswer> Merge(std::string_view key, std::string_view state) = 0;

  // Requests made and body bytes received so far (for the figures).
  struct Traffic {
    std::uint64_t requests = 0;
    std::uint64_t bytes_received = 0;
  };
  [[nodiscard]] virtual Traffic traffic() const { return {}; }
};

struct HttpOptions {
  std::chrono::milliseconds timeout{5000};  // per request, connect included
  std::size_t max_body_bytes = 64u << 20;   // larger answers are refused
  std::size_t max_state_bytes = kDefaultMaxStateBytes;
};

// The HTTP/1.1 implementation: one keep-alive connection, plain TCP,
// synchronous calls bounded by HttpOptions. Not thread-safe.
std::unique_ptr<NodeApi> MakeHttpNodeApi(HostPort address, HttpOptions options);

}  // namespace converge::cart::coherence

#endif  // CONVERGE_EXAMPLES_CART_COHERENCE_NODE_API_H_
