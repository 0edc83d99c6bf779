// HttpServer: a small HTTP/1.1 server on Boost.Beast, built to stay up
// under slow or abusive clients (TESTPLAN S5, S6).
//
// Each connection is one C++20 coroutine on the server's io_context (run by
// one thread: handlers need no locks). Limits, all in HttpServerOptions:
//   - request_timeout_ms: a request must arrive whole (headers and body)
//     within this time of the connection becoming ready for it, idle
//     keep-alive time included, so a slowloris client holds its slot for
//     at most this long;
//   - header_limit / body_limit (or body_limit_for a route): larger requests
//     get 431 / 413 and the connection is closed; a Content-Length over the
//     limit is refused before any of the body is read;
//   - max_connections: at the cap, a new connection evicts the oldest one
//     that is still waiting for its request (slow or idle clients make room
//     for new ones); if every connection is busy in a handler, the new one
//     is closed at once;
//   - write_timeout_ms: a client that does not read its answer is cut off.
// Handlers get the request and return the response as an awaitable; they
// may wait for other executors (see AwaitCallback in cart_service.cc).

#ifndef CONVERGE_EXAMPLES_CART_SERVER_HTTP_SERVER_H_
#define CONVERGE_EXAMPLES_CART_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "crdt/codec/status.h"
#include "replication/asio.h"

namespace converge::cart {

namespace asio = boost::asio;

struct HttpRequest {
  std::string method;                          // "GET", ...
  std::string target;                          // as sent: path and query, percent-encoded
  std::string path;                            // the target's path, still percent-encoded
  std::string query;                           // after '?', still percent-encoded
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote;  // "127.0.0.1:51234"

  [[nodiscard]] std::optional<std::string> Header(const std::string& lower_name) const {
    const auto it = headers.find(lower_name);
    if (it == headers.end()) return std::nullopt;
    return it->second;
  }
};

struct HttpResponse {
  HttpResponse() = default;
  HttpResponse(unsigned s, std::string b, std::string type = "application/json")
      : status(s), body(std::move(b)), content_type(std::move(type)) {}

  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpServerOptions {
  std::string listen;  // HOST:PORT (port 0 picks one)
  std::size_t max_connections = 1'000;
  std::size_t header_limit = 8 * 1024;
  std::size_t body_limit = 16 * 1024;
  // A larger limit for some requests (method, path): at most max_body_limit.
  std::function<std::size_t(std::string_view method, std::string_view path)> body_limit_for;
  std::size_t max_body_limit = 16 * 1024;
  std::uint64_t request_timeout_ms = 10'000;
  std::uint64_t write_timeout_ms = 10'000;
};

struct HttpServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;     // now
  std::uint64_t connections_evicted = 0;  // closed to make room at the cap
  std::uint64_t connections_refused = 0;  // the cap was reached and nothing could go
  std::uint64_t request_timeouts = 0;
  std::uint64_t requests = 0;
  std::uint64_t requests_rejected = 0;  // malformed, or over a size limit
};

class HttpServer {
 public:
  using Handler = std::function<asio::awaitable<HttpResponse>(HttpRequest)>;

  HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler);
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  ~HttpServer();

  // Binds the listening socket (InvalidArgument for a bad address, IoError
  // when it cannot listen).
  [[nodiscard]] Status Open();
  [[nodiscard]] std::string local_address() const;
  // Accepts connections (after Open), on the io_context.
  void Start();
  // Stops accepting and closes every connection; thread-safe.
  void Stop();
  // Thread-safe.
  [[nodiscard]] HttpServerStats stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Percent-decodes `text` ('+' is kept); nullopt for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text);

// The value of `name` in an application/x-www-form-urlencoded query
// ("a=1&b=2"), decoded; nullopt when absent; InvalidArgument when its
// percent-encoding is malformed (which must not pass for "absent").
StatusOr<std::optional<std::string>> QueryParam(std::string_view query, std::string_view name);

}  // namespace converge::cart

#endif  // CONVERGE_EXAMPLES_CART_SERVER_HTTP_SERVER_H_
