// CartService: the HTTP API of one cart replica (docs/cart-api.md) over a
// replication Node.
//
// Requests are handled on the HTTP server's thread; everything that touches
// the node's state machine (writes, membership, statistics) is posted to the
// node's executor and awaited, reads go straight to the store (thread-safe).
// Writes run their checks inside the node's mutator, on the state they
// change, so a limit is never checked against a stale copy.
//
// Idempotency (Idempotency-Key): the first answer is recorded in the store's
// auxiliary key space in the same atomic batch as the write, so a retry never
// applies twice, also across restarts; see docs/cart-api.md.

#ifndef CONVERGE_EXAMPLES_CART_SERVER_CART_SERVICE_H_
#define CONVERGE_EXAMPLES_CART_SERVER_CART_SERVICE_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <set>
#include <string>

#include "examples/cart/cart.h"
#include "examples/cart/server/cart_context.h"
#include "examples/cart/server/http_server.h"
#include "replication/asio.h"
#include "replication/clock.h"
#include "replication/metrics.h"
#include "replication/node.h"
#include "replication/transport.h"
#include "storage/store.h"

namespace converge::cart {

struct CartServiceOptions {
  std::string node_name;
  std::string http_address;    // as peers and browsers reach it
  std::string gossip_address;  // as peers reach it
  bool fault_injection = false;
  bool allow_repair = false;
  bool allow_forget = false;  // DELETE /cluster/members/NAME (operators)
  storage::Durability durability = storage::Durability::kSync;
  std::uint64_t idempotency_ttl_ms = 24ull * 3600 * 1000;
  // Waiting for the node (a write's confirmations come within the node's
  // write timeout; this is the bound beyond it).
  std::uint64_t node_timeout_ms = 15'000;
};

class CartService {
 public:
  // Everything must outlive the service. `http` is the executor handlers
  // run on; `node_clock` is the node's (Post runs on its executor). The
  // keyring seals and opens cart contexts; the service adds the keys other
  // members advertise (member metadata "ctx_key") to it.
  CartService(CartServiceOptions options, replication::Node& node, replication::Clock& node_clock,
              replication::Transport& transport, storage::Store& store, ContextKeyring& keyring,
              asio::any_io_executor http);
  ~CartService();

  asio::awaitable<HttpResponse> Handle(HttpRequest request);

  // Starts the periodic work (CORS origins from the membership, expiry of
  // idempotency records) on the HTTP executor; Stop ends it.
  void Start();
  void Stop();

  // HTTP server counters for /metrics (optional; called on the HTTP thread).
  void set_http_stats(std::function<HttpServerStats()> stats);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_SERVER_CART_SERVICE_H_
