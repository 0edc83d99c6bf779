// CartService: see cart_service.h and docs/cart-api.md.

#include "examples/cart/server/cart_service.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "crdt/codec/codec.h"
#include "examples/cart/server/request_parsing.h"
#include "examples/cart/server/web_assets.h"
#include "replication/address.h"
#include "replication/hash_tree.h"

namespace converge::cart {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxIdempotencyKeyBytes = 255;
constexpr std::string_view kIdempotencyPrefix = "i/";
constexpr std::size_t kDefaultKeysLimit = 1'000;
constexpr std::size_t kMaxKeysLimit = 10'000;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse Json(unsigned status, const json& body) { return HttpResponse{status, Dump(body)}; }

HttpResponse Error(unsigned status, std::string_view message) {
  return Json(status, json{{"error", std::string(message)}});
}

std::uint64_t WallMs() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// --- waiting for another executor ---------------------------------------------------

// Calls start(reply) and waits, on `executor`, until reply(R) was called
// (from any thread) or `timeout` passed (nullopt).
template <class R, class Start>
asio::awaitable<std::optional<R>> AwaitCallback(asio::any_io_executor executor,
                                                std::chrono::milliseconds timeout, Start start) {
  struct State {
    explicit State(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<R> result;
  };
  auto state = std::make_shared<State>(executor);
  state->timer.expires_after(timeout);
  start([state, executor](R r) {
    asio::post(executor, [state, r = std::move(r)]() mutable {
      if (state->result) return;
      state->result.emplace(std::move(r));
      state->timer.cancel();
    });
  });
  boost::system::error_code ec;
  co_await state->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return std::move(state->result);
}

// --- cart operations (run by the node, on the state they change) -----------------------

// An operation on a cart: returns the delta, or sets *conflict and returns
// bottom (nothing changes).
using CartOp = std::function<CartState(CartState&, crdt::ReplicaId, std::string* conflict)>;

bool RoomForLine(const CartState& cart, const std::string& sku, std::string* conflict) {
  if (cart.Contains(sku) || cart.size() < kMaxLines) return true;
  *conflict = "the cart already has " + std::to_string(kMaxLines) + " lines";
  return false;
}

CartOp AddOp(std::string sku, std::uint64_t q) {
  return [sku = std::move(sku), q](CartState& cart, crdt::ReplicaId self, std::string* conflict) {
    if (!RoomForLine(cart, sku, conflict)) return CartState{};
    const std::optional<crdt::CausalCounter> line = cart.Get(sku);
    const std::uint64_t have =
        line ? line->TryValue().value_or(std::numeric_limits<std::uint64_t>::max()) : 0;
    if (have > kMaxQuantity || q > kMaxQuantity - have) {
      *conflict = "line '" + sku + "' holds " + std::to_string(have) + "; adding " +
                  std::to_string(q) + " would pass " + std::to_string(kMaxQuantity);
      return CartState{};
    }
    return cart.Update(sku, [&](crdt::CausalCounter& c) { return c.Increment(self, q); });
  };
}

// With a client's context (`seen`), a set, a delete and an empty act on
// exactly the additions the client saw (docs/cart-api.md, "Cart contexts").
CartOp SetOp(std::string sku, std::uint64_t q, std::optional<SeenCart> seen) {
  return [sku = std::move(sku), q, seen = std::move(seen)](CartState& cart, crdt::ReplicaId self,
                                                           std::string* conflict) {
    if (q == 0) return seen ? cart.Remove(sku, seen->Line(sku)) : cart.Remove(sku);
    if (!RoomForLine(cart, sku, conflict)) return CartState{};
    if (!seen) return cart.Update(sku, [&](crdt::CausalCounter& c) { return c.Set(self, q); });
    // The additions the client did not see stay: the line must still fit.
    const crdt::CausalContext line_seen = seen->Line(sku);
    std::uint64_t kept = 0;
    if (const std::optional<crdt::CausalCounter> line = cart.Get(sku)) {
      for (const auto& item : line->store().items()) {
        if (!line_seen.Contains(item.dot)) {
          kept = item.value > kMaxQuantity ? kMaxQuantity + 1
                                           : std::min(kMaxQuantity + 1, kept + item.value);
        }
      }
    }
    if (kept > kMaxQuantity - q) {
      *conflict = "line '" + sku + "' keeps " + std::to_string(kept) +
                  " the context did not show; setting " + std::to_string(q) + " would pass " +
                  std::to_string(kMaxQuantity);
      return CartState{};
    }
    return cart.Update(sku, [&](crdt::CausalCounter& c) { return c.Set(self, q, line_seen); });
  };
}

CartOp RemoveOp(std::string sku, std::optional<SeenCart> seen) {
  return [sku = std::move(sku), seen = std::move(seen)](CartState& cart, crdt::ReplicaId,
                                                        std::string*) {
    return seen ? cart.Remove(sku, seen->Line(sku)) : cart.Remove(sku);
  };
}

CartOp ClearOp(std::optional<SeenCart> seen) {
  return [seen = std::move(seen)](CartState& cart, crdt::ReplicaId, std::string*) {
    return seen ? cart.Clear(seen->All()) : cart.Clear();
  };
}

// A state whose line `sku` carries another count under the same dots and
// context: what no history can produce (for /admin/corrupt).
StatusOr<CartState> Corrupted(const CartState& cart, const std::string& sku, std::uint64_t q) {
  if (!cart.Contains(sku))
    return Status(StatusCode::kNotFound, "the cart has no line '" + sku + "'");
  crdt::DotMap<std::string, crdt::DotFun<std::uint64_t>> store;
  for (const auto& entry : cart.store().entries()) {
    crdt::DotFun<std::uint64_t> values;
    bool first = true;
    for (const auto& item : entry.store.items()) {
      values.Insert(item.dot, entry.key == sku && first ? q : item.value);
      first = false;
    }
    store.Insert(entry.key, std::move(values));
  }
  return CartState::FromParts(std::move(store), cart.context());
}

// Histogram buckets for request latency, in seconds.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries buckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return buckets;
}

}  // namespace

// --- the service ------------------------------------------------------------------------

class CartService::Impl {
 public:
  Impl(CartServiceOptions options, replication::Node& node, replication::Clock& node_clock,
       replication::Transport& transport, storage::Store& store, ContextKeyring& keyring,
       asio::any_io_executor http)
      : o_(std::move(options)),
        node_(node),
        node_clock_(node_clock),
        transport_(transport),
        store_(store),
        keyring_(keyring),
        own_key_(keyring.own()),
        http_(std::move(http)),
        registry_(std::make_shared<prometheus::Registry>()),
        requests_(prometheus::BuildCounter()
                      .Name("converge_http_requests_total")
                      .Help("HTTP requests answered, by method, route and status code")
                      .Register(*registry_)),
        latency_(prometheus::BuildHistogram()
                     .Name("converge_http_request_duration_seconds")
                     .Help("Time to answer an HTTP request, by route")
                     .Register(*registry_)),
        cart_writes_(prometheus::BuildCounter()
                         .Name("converge_cart_writes_total")
                         .Help("Cart writes by operation and outcome")
                         .Register(*registry_)),
        replays_(prometheus::BuildCounter()
                     .Name("converge_cart_idempotent_replays_total")
                     .Help("Retries answered from an Idempotency-Key record")
                     .Register(*registry_)
                     .Add({})),
        node_metrics_([this]() -> std::optional<replication::MetricsSnapshot> {
          // Called from Handle (the HTTP thread) with the snapshot taken.
          return last_snapshot_;
        }),
        refresh_timer_(http_) {}

  void Start() {
    running_ = true;
    asio::co_spawn(http_, Periodic(), asio::detached);
  }
  void Stop() {
    asio::post(http_, [this] {
      running_ = false;
      refresh_timer_.cancel();
    });
  }

  void set_http_stats(std::function<HttpServerStats()> stats) { http_stats_ = std::move(stats); }

  asio::awaitable<HttpResponse> Handle(HttpRequest request) {
    const auto started = Clock::now();
    std::string route = "other";
    HttpResponse response = co_await Dispatch(request, &route);
    const std::optional<std::string> origin = request.Header("origin");
    if (origin && allowed_origins_.contains(*origin)) {
      response.headers.emplace_back("Access-Control-Allow-Origin", *origin);
      response.headers.emplace_back("Access-Control-Expose-Headers", "Cart-Context");
      response.headers.emplace_back("Vary", "Origin");
    }
    static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "DELETE", "OPTIONS"};
    requests_
        .Add({{"method", kMethods.contains(request.method) ? request.method : "other"},
              {"route", route},
              {"code", std::to_string(response.status)}})
        .Increment();
    latency_.Add({{"route", route}}, LatencyBuckets())
        .Observe(std::chrono::duration<double>(Clock::now() - started).count());
    co_return response;
  }

 private:
  struct Outcome {
    std::string conflict;
    std::string body;                    // the cart after the write, as JSON
    std::optional<std::string> context;  // its context
  };

  asio::awaitable<HttpResponse> Dispatch(const HttpRequest& request, std::string* route) {
    std::vector<std::string> segments;
    {
      std::string_view path = request.path;
      if (path.empty() || path[0] != '/')
        co_return Error(400, "the target must be an absolute path");
      path.remove_prefix(1);
      while (!path.empty()) {
        const std::size_t slash = path.find('/');
        const std::optional<std::string> segment = PercentDecode(path.substr(0, slash));
        if (!segment) co_return Error(400, "malformed percent-encoding in the path");
        segments.push_back(*segment);
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
      }
    }
    const std::string& m = request.method;
    const auto is = [&](std::initializer_list<std::string_view> names) {
      if (segments.size() != names.size()) return false;
      std::size_t i = 0;
      for (const std::string_view n : names) {
        if (!n.empty() && segments[i] != n) return false;
        ++i;
      }
      return true;
    };
    if (m == "OPTIONS") {
      *route = "preflight";
      HttpResponse r{204, ""};
      const std::optional<std::string> origin = request.Header("origin");
      if (origin && allowed_origins_.contains(*origin)) {
        r.headers = {
            {"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"},
            {"Access-Control-Allow-Headers", "Content-Type, Idempotency-Key, Cart-Context"},
            {"Access-Control-Max-Age", "600"}};
      }
      co_return r;
    }
    const auto method_not_allowed = [](std::string allow) {
      HttpResponse r = Error(405, "method not allowed; allowed: " + allow);
      r.headers.emplace_back("Allow", std::move(allow));
      return r;
    };
    if (segments.empty() || is({"app.js"}) || is({"style.css"}) || is({"index.html"})) {
      *route = "page";
      if (m != "GET") co_return method_not_allowed("GET");
      const std::string name = segments.empty() ? "index.html" : segments[0];
      const WebAsset* asset = FindWebAsset(name);
      if (asset == nullptr) co_return Error(404, "no such page");
      co_return HttpResponse{200, std::string(asset->content), std::string(asset->content_type)};
    }
    if (is({"healthz"})) {
      *route = "healthz";
      if (m != "GET") co_return method_not_allowed("GET");
      co_return Json(200, json{{"status", "ok"}, {"node", o_.node_name}});
    }
    if (is({"metrics"})) {
      *route = "metrics";
      if (m != "GET") co_return method_not_allowed("GET");
      co_return co_await Metrics();
    }
    if (is({"cluster"})) {
      *route = "cluster";
      if (m != "GET") co_return method_not_allowed("GET");
      co_return co_await Cluster();
    }
    if (segments.size() == 3 && segments[0] == "cluster" && segments[1] == "members" &&
        o_.allow_forget) {
      *route = "member";
      if (m != "DELETE") co_return method_not_allowed("DELETE");
      co_return co_await Forget(segments[2]);
    }
    if (!segments.empty() && segments[0] == "carts" && segments.size() >= 2 &&
        segments.size() <= 4) {
      const std::string& id = segments[1];
      if (const auto why = CheckCartId(id)) co_return Error(400, *why);
      if (segments.size() == 2) {
        *route = "cart";
        if (m == "GET") co_return ReadCart(id);
        if (m == "DELETE") {
          StatusOr<std::optional<SeenCart>> seen = co_await SeenFrom(request, id);
          if (!seen.ok()) co_return Error(400, seen.status().message());
          co_return co_await Write(request, id, "clear", ClearOp(std::move(*seen)));
        }
        co_return method_not_allowed("GET, DELETE");
      }
      if (segments[2] != "items") co_return Error(404, "no such resource");
      if (segments.size() == 3) {
        *route = "items";
        if (m != "POST") co_return method_not_allowed("POST");
        StatusOr<json> body = ParseObject(request.body, {"sku", "quantity"});
        if (!body.ok()) co_return Error(400, body.status().message());
        StatusOr<std::string> sku = SkuField(*body);
        if (!sku.ok()) co_return Error(400, sku.status().message());
        StatusOr<std::uint64_t> q = Quantity(*body, 1);
        if (!q.ok()) co_return Error(400, q.status().message());
        co_return co_await Write(request, id, "add", AddOp(*sku, *q));
      }
      *route = "item";
      const std::string& sku = segments[3];
      if (const auto why = CheckSku(sku)) co_return Error(400, *why);
      if (m == "PUT") {
        StatusOr<json> body = ParseObject(request.body, {"quantity"});
        if (!body.ok()) co_return Error(400, body.status().message());
        StatusOr<std::uint64_t> q = Quantity(*body, 0);
        if (!q.ok()) co_return Error(400, q.status().message());
        StatusOr<std::optional<SeenCart>> seen = co_await SeenFrom(request, id);
        if (!seen.ok()) co_return Error(400, seen.status().message());
        co_return co_await Write(request, id, "set", SetOp(sku, *q, std::move(*seen)));
      }
      if (m == "DELETE") {
        StatusOr<std::optional<SeenCart>> seen = co_await SeenFrom(request, id);
        if (!seen.ok()) co_return Error(400, seen.status().message());
        co_return co_await Write(request, id, "remove", RemoveOp(sku, std::move(*seen)));
      }
      co_return method_not_allowed("PUT, DELETE");
    }
    if (!segments.empty() && segments[0] == "admin" && o_.fault_injection) {
      if (is({"admin", "partition"})) {
        *route = "admin";
        if (m == "POST") co_return Partition(request);
        if (m == "DELETE") {
          transport_.UnblockAll();
          blocked_.clear();
          co_return Json(200, json{{"blocked", json::array()}});
        }
        co_return method_not_allowed("POST, DELETE");
      }
      if (is({"admin", "corrupt"})) {
        *route = "admin";
        if (m != "POST") co_return method_not_allowed("POST");
        co_return Corrupt(request);
      }
    }
    if (!segments.empty() && segments[0] == "internal") {
      *route = "internal";
      if (is({"internal", "keys"})) {
        if (m != "GET") co_return method_not_allowed("GET");
        co_return Keys(request);
      }
      if (is({"internal", "state"})) {
        if (m != "GET") co_return method_not_allowed("GET");
        co_return State(request);
      }
      if (is({"internal", "merge"}) && o_.allow_repair) {
        if (m != "POST") co_return method_not_allowed("POST");
        co_return co_await Merge(request);
      }
    }
    co_return Error(404, "no such resource");
  }

  // --- carts ---------------------------------------------------------------------------

  HttpResponse ReadCart(const std::string& id) {
    StatusOr<CartState> cart = node_.Read<CartState>(CartKey(id));
    if (!cart.ok()) return Error(500, "cannot read the cart: " + cart.status().ToString());
    const std::optional<std::string> context = SealContext(own_key_, id, *cart);
    HttpResponse response{200, CartJson(id, *cart, context)};
    if (context) response.headers.emplace_back("Cart-Context", *context);
    return response;
  }

  // The client's context of a write (the Cart-Context header), opened; none
  // without the header. A context sealed by a key not learned yet waits for
  // one refresh of the members' keys.
  asio::awaitable<StatusOr<std::optional<SeenCart>>> SeenFrom(const HttpRequest& request,
                                                              const std::string& id) {
    const std::optional<std::string> token = request.Header("cart-context");
    if (!token) co_return std::optional<SeenCart>();
    StatusOr<SeenCart> seen = OpenContext(keyring_, id, *token);
    if (!seen.ok() && seen.status().code() == StatusCode::kNotFound) {
      if (const std::optional<NodeView> view = co_await View()) LearnKeys(*view);
      seen = OpenContext(keyring_, id, *token);
    }
    if (!seen.ok()) co_return InvalidArgument(seen.status().message());
    co_return std::optional<SeenCart>(std::move(*seen));
  }

  asio::awaitable<HttpResponse> Write(const HttpRequest& request, const std::string& id,
                                      const std::string& op_name, CartOp op) {
    replication::WriteConsistency w = replication::WriteConsistency::kLocal;
    const StatusOr<std::optional<std::string>> w_param = QueryParam(request.query, "w");
    if (!w_param.ok()) co_return Error(400, w_param.status().message());
    if (*w_param) {
      const auto parsed = replication::ParseWriteConsistency(**w_param);
      if (!parsed) co_return Error(400, "w must be local, majority or all");
      w = *parsed;
    }
    const std::optional<std::string> idem = request.Header("idempotency-key");
    std::string fingerprint;
    if (idem) {
      if (idem->empty() || idem->size() > kMaxIdempotencyKeyBytes ||
          !std::all_of(idem->begin(), idem->end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
        co_return Error(400, "Idempotency-Key must be 1-255 printable ASCII characters");
      }
      fingerprint = Hex64(replication::Hash64(
          request.method + ' ' + request.path +
          "\nw=" + std::string(replication::WriteConsistencyName(w)) +
          "\ncontext=" + request.Header("cart-context").value_or("-") + '\n' + request.body));
      if (in_flight_.contains(*idem)) {
        co_return Error(409, "a request with this Idempotency-Key is still in progress");
      }
      StatusOr<std::optional<json>> record = LoadRecord(*idem);
      if (!record.ok()) co_return Error(500, record.status().ToString());
      if (record->has_value()) {
        const json& r = **record;
        if (r.value("fp", "") != fingerprint) {
          co_return Error(422, "this Idempotency-Key was used for a different request");
        }
        replays_.Increment();
        HttpResponse replay{r.value("status", 200u), r.value("body", "")};
        replay.headers.emplace_back("Idempotent-Replay", "true");
        co_return replay;
      }
    }

    auto outcome = std::make_shared<Outcome>();
    replication::Node::AlsoWriteFn<CartState> also_write;
    if (idem) {
      // The answer commits with the write; a local write's answer is final.
      also_write = [this, outcome, key = *idem, fingerprint,
                    final = w == replication::WriteConsistency::kLocal](
                       const CartState&, storage::WriteBatch& batch) {
        batch.PutAux(RecordKey(key), Record(fingerprint, 200, outcome->body, final));
      };
      in_flight_.insert(*idem);
    }
    auto mutate = [op = std::move(op), outcome, id, key = own_key_](CartState& cart,
                                                                    crdt::ReplicaId self) {
      CartState delta = op(cart, self, &outcome->conflict);
      outcome->context = SealContext(key, id, cart);
      outcome->body = CartJson(id, cart, outcome->context);
      return delta;
    };
    std::optional<StatusOr<CartState>> result = co_await AwaitCallback<StatusOr<CartState>>(
        http_, std::chrono::milliseconds(static_cast<std::int64_t>(o_.node_timeout_ms)),
        [&](auto reply) { node_.Update<CartState>(CartKey(id), mutate, w, reply, also_write); });
    if (idem) in_flight_.erase(*idem);

    HttpResponse response;
    if (!result) {
      response = Error(503, "the replica did not answer in time");
    } else if (!outcome->conflict.empty()) {
      response = Error(409, outcome->conflict);
    } else if (result->ok()) {
      response = HttpResponse{200, outcome->body};
      if (outcome->context) response.headers.emplace_back("Cart-Context", *outcome->context);
    } else if (result->status().code() == StatusCode::kDeadlineExceeded) {
      response = Json(504, json{{"error", result->status().message()},
                                {"durable", true},
                                {"cart", json::parse(outcome->body, nullptr, false)}});
    } else if (result->status().code() == StatusCode::kInvalidArgument ||
               result->status().code() == StatusCode::kFailedPrecondition) {
      // A counter overflow; a client context read before a pruning level.
      response = Error(409, result->status().message());
    } else if (result->status().code() == StatusCode::kUnavailable) {
      response = Error(503, result->status().message());
    } else {
      response = Error(500, result->status().ToString());
    }
    cart_writes_.Add({{"op", op_name}, {"code", std::to_string(response.status)}}).Increment();
    // Record what the answer turned out to be when the batch could not: a
    // no-op (no batch was written) or a majority/all write's outcome.
    const bool changed = result && result->ok() && !(*result)->IsBottom();
    const bool recorded_final = changed && w == replication::WriteConsistency::kLocal;
    const bool answered = response.status == 200 || response.status == 504;
    if (idem && answered && !recorded_final) {
      storage::WriteBatch batch;
      batch.PutAux(RecordKey(*idem), Record(fingerprint, response.status, response.body, true));
      (void)store_.Write(batch);  // at worst a retry repeats a no-op or replays "200"
    }
    co_return response;
  }

  static std::string RecordKey(const std::string& idempotency_key) {
    return std::string(kIdempotencyPrefix) + idempotency_key;
  }
  static std::string Record(const std::string& fingerprint, unsigned status,
                            const std::string& body, bool final) {
    return Dump(json{{"fp", fingerprint},
                     {"status", status},
                     {"body", body},
                     {"at", WallMs()},
                     {"final", final}});
  }
  StatusOr<std::optional<json>> LoadRecord(const std::string& key) {
    StatusOr<std::optional<std::string>> raw = store_.GetAux(RecordKey(key));
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) return std::optional<json>();
    json r = json::parse(**raw, nullptr, false);
    if (!r.is_object()) return std::optional<json>();
    if (WallMs() - r.value("at", std::uint64_t{0}) > o_.idempotency_ttl_ms) {
      return std::optional<json>();  // expired (and collected soon)
    }
    return std::optional<json>(std::move(r));
  }

  // --- cluster, metrics -----------------------------------------------------------------

  struct NodeView {
    std::vector<replication::PeerStatus> peers;
    replication::NodeStats stats;
    replication::MetricsSnapshot metrics;
    crdt::ReplicaId replica;
  };

  asio::awaitable<std::optional<NodeView>> View() {
    co_return co_await AwaitCallback<NodeView>(
        http_, std::chrono::milliseconds(2'000), [this](auto reply) {
          node_clock_.Post([this, reply] {
            NodeView v;
            v.peers = node_.Peers();
            v.stats = node_.stats();
            v.metrics = replication::MetricsSnapshot{v.stats, v.peers, transport_.stats()};
            v.replica = node_.replica();
            reply(std::move(v));
          });
        });
  }

  static std::string HttpOf(const replication::PeerStatus& p) {
    const json meta = json::parse(p.metadata, nullptr, false);
    if (!meta.is_object()) return {};
    const auto it = meta.find("http");
    if (it == meta.end() || !it->is_string()) return {};
    std::string http = it->get<std::string>();
    return replication::ParseHostPort(http) ? http : std::string();
  }

  // Adds the context keys the members advertise (metadata "ctx_key").
  void LearnKeys(const NodeView& view) {
    for (const auto& p : view.peers) {
      const json meta = json::parse(p.metadata, nullptr, false);
      if (!meta.is_object()) continue;
      const auto it = meta.find("ctx_key");
      if (it == meta.end() || !it->is_string()) continue;
      (void)keyring_.Learn(it->get<std::string>(), store_);  // malformed: not a key
    }
  }

  void UpdateOrigins(const NodeView& view) {
    std::set<std::string> origins = {"http://" + o_.http_address};
    for (const auto& p : view.peers) {
      const std::string http = HttpOf(p);
      if (!http.empty()) origins.insert("http://" + http);
    }
    allowed_origins_ = std::move(origins);
  }

  asio::awaitable<HttpResponse> Cluster() {
    const std::optional<NodeView> view = co_await View();
    if (!view) co_return Error(503, "the replica did not answer in time");
    UpdateOrigins(*view);
    json members = json::array();
    for (const auto& p : view->peers) {
      members.push_back({{"name", p.name},
                         {"http", HttpOf(p)},
                         {"gossip", p.address},
                         {"state", p.state},
                         {"lag", p.lag},
                         {"acked", p.acked},
                         {"last_heard_ms_ago", p.last_heard_ms_ago}});
    }
    const replication::NodeStats& s = view->stats;
    json stats = {{"updates", s.updates},
                  {"deltas_sent", s.deltas_sent},
                  {"deltas_acked", s.deltas_acked},
                  {"deltas_applied", s.deltas_applied},
                  {"intervals_rejected", s.intervals_rejected},
                  {"ae_sessions", s.ae_sessions},
                  {"ae_repairs", s.ae_repairs},
                  {"ae_keys_repaired", s.ae_keys_repaired},
                  {"bytes_sent", s.bytes_sent},
                  {"bytes_received", s.bytes_received},
                  {"messages_rejected", s.messages_rejected},
                  {"entries_rejected", s.entries_rejected},
                  {"retirements", s.retirements},
                  {"write_timeouts", s.write_timeouts},
                  {"buffer_entries", s.buffer_entries},
                  {"rounds", s.rounds}};
    const storage::Identity identity = store_.identity();
    co_return Json(200, json{{"node", o_.node_name},
                             {"http", o_.http_address},
                             {"gossip", o_.gossip_address},
                             {"replica", Hex64(view->replica.value())},
                             {"incarnation", identity.incarnation},
                             {"durability", std::string(storage::DurabilityName(o_.durability))},
                             {"fault_injection", o_.fault_injection},
                             {"blocked", blocked_},
                             {"members", std::move(members)},
                             {"stats", std::move(stats)}});
  }

  asio::awaitable<HttpResponse> Metrics() {
    const std::optional<NodeView> view = co_await View();
    last_snapshot_ = view ? std::optional(view->metrics) : std::nullopt;
    std::vector<prometheus::MetricFamily> families = registry_->Collect();
    for (auto& f : node_metrics_.Collect()) families.push_back(std::move(f));
    if (http_stats_) {
      const HttpServerStats h = http_stats_();
      const auto add = [&](std::string name, std::string help, prometheus::MetricType type,
                           std::uint64_t value) {
        prometheus::MetricFamily f{std::move(name), std::move(help), type, {}};
        prometheus::ClientMetric metric;
        if (type == prometheus::MetricType::Counter) {
          metric.counter.value = static_cast<double>(value);
        } else {
          metric.gauge.value = static_cast<double>(value);
        }
        f.metric.push_back(std::move(metric));
        families.push_back(std::move(f));
      };
      add("converge_http_connections", "Open HTTP connections", prometheus::MetricType::Gauge,
          h.connections_open);
      add("converge_http_connections_accepted_total", "HTTP connections accepted",
          prometheus::MetricType::Counter, h.connections_accepted);
      add("converge_http_connections_evicted_total",
          "Connections waiting for a request closed to make room at the connection cap",
          prometheus::MetricType::Counter, h.connections_evicted);
      add("converge_http_connections_refused_total",
          "Connections refused at the cap (every connection busy)", prometheus::MetricType::Counter,
          h.connections_refused);
      add("converge_http_request_timeouts_total",
          "Connections closed because a request did not arrive whole in time",
          prometheus::MetricType::Counter, h.request_timeouts);
      add("converge_http_requests_rejected_total",
          "Requests refused before routing (malformed, over a size limit)",
          prometheus::MetricType::Counter, h.requests_rejected);
    }
    co_return HttpResponse{200, prometheus::TextSerializer().Serialize(families),
                           "text/plain; version=0.0.4"};
  }

  // --- fault injection --------------------------------------------------------------------

  HttpResponse Partition(const HttpRequest& request) {
    StatusOr<json> body = ParseObject(request.body, {"peers"});
    if (!body.ok()) return Error(400, body.status().message());
    const auto it = body->find("peers");
    if (it == body->end() || !it->is_array() || it->empty() || it->size() > 64) {
      return Error(400, "'peers' must be a list of 1-64 node names");
    }
    std::vector<std::string> peers;
    for (const json& p : *it) {
      if (!p.is_string() || !replication::ValidNodeName(p.get<std::string>())) {
        return Error(400, "'peers' must hold node names");
      }
      if (p.get<std::string>() == o_.node_name) return Error(400, "a node cannot cut itself off");
      peers.push_back(p.get<std::string>());
    }
    for (const std::string& p : peers) {
      transport_.Block(p);
      if (std::find(blocked_.begin(), blocked_.end(), p) == blocked_.end()) blocked_.push_back(p);
    }
    std::sort(blocked_.begin(), blocked_.end());
    return Json(200, json{{"blocked", blocked_}});
  }

  HttpResponse Corrupt(const HttpRequest& request) {
    StatusOr<json> body = ParseObject(request.body, {"key", "sku", "quantity"});
    if (!body.ok()) return Error(400, body.status().message());
    const auto key = body->find("key");
    if (key == body->end() || !key->is_string()) return Error(400, "'key' must be a string");
    StatusOr<std::string> sku = SkuField(*body);
    if (!sku.ok()) return Error(400, sku.status().message());
    StatusOr<std::uint64_t> q = Quantity(*body, 1);
    if (!q.ok()) return Error(400, q.status().message());
    StatusOr<CartState> cart = node_.Read<CartState>(key->get<std::string>());
    if (!cart.ok()) return Error(400, cart.status().ToString());
    StatusOr<CartState> bad = Corrupted(*cart, *sku, *q);
    if (!bad.ok()) return Error(404, bad.status().message());
    const std::string bytes = codec::Encode(*bad);
    if (Status s = store_.OverwriteRaw(key->get<std::string>(), bytes); !s.ok()) {
      return Error(500, s.ToString());
    }
    return Json(200, json{{"key", key->get<std::string>()},
                          {"digest", Hex64(replication::StateDigest(bytes))}});
  }

  // --- internal (coherence-check) -----------------------------------------------------------

  HttpResponse Keys(const HttpRequest& request) {
    const StatusOr<std::optional<std::string>> prefix_param = QueryParam(request.query, "prefix");
    const StatusOr<std::optional<std::string>> after_param = QueryParam(request.query, "after");
    const StatusOr<std::optional<std::string>> limit_param = QueryParam(request.query, "limit");
    for (const auto* p : {&prefix_param, &after_param, &limit_param}) {
      if (!p->ok()) return Error(400, p->status().message());
    }
    const std::string prefix = prefix_param->value_or("");
    const std::string after = after_param->value_or("");
    std::size_t limit = kDefaultKeysLimit;
    if (const std::optional<std::string>& l = *limit_param) {
      std::size_t used = 0;
      try {
        limit = std::stoul(*l, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != l->size() || limit == 0 || limit > kMaxKeysLimit) {
        return Error(400, "limit must be 1.." + std::to_string(kMaxKeysLimit));
      }
    }
    std::string begin = prefix;
    if (!after.empty()) begin = std::max(prefix, after + '\0');
    std::string end = prefix;
    while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
    if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
    json keys = json::array();
    std::string last;
    std::size_t count = 0;
    bool more = false;
    Status s = store_.Scan(begin, end, [&](std::string_view k, std::string_view state) {
      if (count == limit) {
        more = true;
        return false;
      }
      keys.push_back({{"key", std::string(k)}, {"digest", Hex64(replication::StateDigest(state))}});
      last = std::string(k);
      ++count;
      return true;
    });
    if (!s.ok()) return Error(500, s.ToString());
    return Json(200, json{{"keys", std::move(keys)}, {"next", more ? json(last) : json(nullptr)}});
  }

  HttpResponse State(const HttpRequest& request) {
    const StatusOr<std::optional<std::string>> key_param = QueryParam(request.query, "key");
    if (!key_param.ok()) return Error(400, key_param.status().message());
    const std::optional<std::string>& key = *key_param;
    if (!key || key->empty()) return Error(400, "key is required");
    StatusOr<std::optional<std::string>> raw = store_.ReadRaw(*key);
    if (!raw.ok()) return Error(500, raw.status().ToString());
    if (!raw->has_value()) return Error(404, "no such key");
    return Json(200, json{{"key", *key},
                          {"digest", Hex64(replication::StateDigest(**raw))},
                          {"state", Base64Encode(**raw)}});
  }

  asio::awaitable<HttpResponse> Merge(const HttpRequest& request) {
    StatusOr<json> body = ParseObject(request.body, {"key", "state"});
    if (!body.ok()) co_return Error(400, body.status().message());
    const auto key = body->find("key");
    const auto state = body->find("state");
    if (key == body->end() || !key->is_string() || key->get<std::string>().empty()) {
      co_return Error(400, "'key' must be a non-empty string");
    }
    if (state == body->end() || !state->is_string())
      co_return Error(400, "'state' must be a string");
    const std::optional<std::string> bytes = Base64Decode(state->get<std::string>());
    if (!bytes) co_return Error(400, "'state' is not canonical base64");
    const std::string k = key->get<std::string>();
    std::optional<StatusOr<bool>> changed =
        co_await AwaitCallback<StatusOr<bool>>(http_, std::chrono::milliseconds(5'000),
                                               [&](auto reply) { node_.Merge(k, *bytes, reply); });
    if (!changed) co_return Error(503, "the replica did not answer in time");
    if (!changed->ok()) co_return Error(400, changed->status().ToString());
    StatusOr<std::optional<std::string>> now = store_.ReadRaw(k);
    const std::string digest =
        now.ok() && now->has_value() ? Hex64(replication::StateDigest(**now)) : "";
    co_return Json(200, json{{"changed", **changed}, {"digest", digest}});
  }

  // An operator removes a member that is gone for good (docs/operations.md).
  asio::awaitable<HttpResponse> Forget(const std::string& name) {
    std::optional<Status> forgot = co_await AwaitCallback<Status>(
        http_, std::chrono::milliseconds(5'000), [&](auto reply) { node_.Forget(name, reply); });
    if (!forgot) co_return Error(503, "the replica did not answer in time");
    if (forgot->code() == StatusCode::kNotFound) co_return Error(404, forgot->message());
    if (forgot->code() == StatusCode::kFailedPrecondition) co_return Error(409, forgot->message());
    if (!forgot->ok()) co_return Error(500, forgot->ToString());
    co_return Json(200, json{{"forgotten", name}});
  }

  // --- periodic work ------------------------------------------------------------------------

  asio::awaitable<void> Periodic() {
    std::uint64_t ticks = 0;
    while (running_) {
      if (const std::optional<NodeView> view = co_await View()) {
        UpdateOrigins(*view);
        LearnKeys(*view);
      }
      if (ticks++ % 300 == 0) CollectExpiredRecords();
      refresh_timer_.expires_after(std::chrono::seconds(2));
      boost::system::error_code ec;
      co_await refresh_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  void CollectExpiredRecords() {
    storage::WriteBatch batch;
    const std::uint64_t now = WallMs();
    (void)store_.ScanAux(kIdempotencyPrefix, "i0", [&](std::string_view k, std::string_view v) {
      const json r = json::parse(v, nullptr, false);
      if (!r.is_object() || now - r.value("at", std::uint64_t{0}) > o_.idempotency_ttl_ms) {
        batch.DeleteAux(std::string(k));
      }
      return batch.aux().size() < 10'000;
    });
    if (!batch.empty()) (void)store_.Write(batch);
  }

  const CartServiceOptions o_;
  replication::Node& node_;
  replication::Clock& node_clock_;
  replication::Transport& transport_;
  storage::Store& store_;
  ContextKeyring& keyring_;   // HTTP thread only
  const ContextKey own_key_;  // seals contexts, also on the node's thread
  asio::any_io_executor http_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& cart_writes_;
  prometheus::Counter& replays_;
  std::optional<replication::MetricsSnapshot> last_snapshot_;
  replication::NodeMetrics node_metrics_;
  asio::steady_timer refresh_timer_;
  std::function<HttpServerStats()> http_stats_;
  // HTTP thread only.
  bool running_ = false;
  std::set<std::string> in_flight_;
  std::set<std::string> allowed_origins_ = {"http://" + o_.http_address};
  std::vector<std::string> blocked_;
};

CartService::CartService(CartServiceOptions options, replication::Node& node,
                         replication::Clock& node_clock, replication::Transport& transport,
                         storage::Store& store, ContextKeyring& keyring, asio::any_io_executor http)
    : impl_(std::make_unique<Impl>(std::move(options), node, node_clock, transport, store, keyring,
                                   std::move(http))) {}
CartService::~CartService() = default;
asio::awaitable<HttpResponse> CartService::Handle(HttpRequest request) {
  return impl_->Handle(std::move(request));
}
void CartService::Start() { impl_->Start(); }
void CartService::set_http_stats(std::function<HttpServerStats()> stats) {
  impl_->set_http_stats(std::move(stats));
}
void CartService::Stop() { impl_->Stop(); }

}  // namespace converge::cart
