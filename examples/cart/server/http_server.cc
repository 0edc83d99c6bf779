// HttpServer: see http_server.h.

#include "examples/cart/server/http_server.h"

// clang-format off
#include "replication/asio.h"  // first: it fixes Boost 1.74's includes
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

#include <chrono>
#include <list>
#include <mutex>

#include "replication/address.h"

namespace converge::cart {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::chrono::milliseconds Ms(std::uint64_t ms) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

// A parse error of a request that arrived (not a client going away).
bool IsMalformedRequest(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

std::string ErrorJson(std::string_view message) {
  std::string out = R"({"error":")";
  for (const char c : message) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"}";
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, HttpServerOptions options, Handler handler)
      : io_(io), options_(std::move(options)), handler_(std::move(handler)), acceptor_(io) {}

  Status Open() {
    const auto hp = replication::ParseHostPort(options_.listen);
    if (!hp) return InvalidArgument("--http: '" + options_.listen + "' is not HOST:PORT");
    error_code ec;
    const asio::ip::address address = asio::ip::make_address(hp->host, ec);
    if (ec) return InvalidArgument("--http: '" + hp->host + "' is not an IP address");
    const tcp::endpoint endpoint(address, hp->port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return IoError("cannot listen on " + options_.listen + ": " + ec.message());
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    std::lock_guard lock(mu_);
    local_address_ = bound.address().to_string() + ":" + std::to_string(bound.port());
    return Status::Ok();
  }

  std::string local_address() const {
    std::lock_guard lock(mu_);
    return local_address_;
  }

  void Start() { asio::co_spawn(io_, Accept(shared_from_this()), asio::detached); }

  void Stop() {
    asio::post(io_, [self = shared_from_this()] {
      self->stopping_ = true;
      error_code ignored;
      self->acceptor_.close(ignored);
      for (Connection& c : self->connections_) c.Close();
    });
  }

  HttpServerStats stats() const {
    HttpServerStats s;
    s.connections_accepted = accepted_.load();
    s.connections_open = open_.load();
    s.connections_evicted = evicted_.load();
    s.connections_refused = refused_.load();
    s.request_timeouts = timeouts_.load();
    s.requests = requests_.load();
    s.requests_rejected = rejected_.load();
    return s;
  }

 private:
  struct Connection {
    explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
    beast::tcp_stream stream;
    bool waiting = true;  // for (the rest of) a request, not in a handler
    void Close() {
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
  };
  using ConnectionList = std::list<Connection>;

  asio::awaitable<void> Accept(std::shared_ptr<Impl> self) {
    while (!stopping_) {
      error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of descriptors and the like: pause rather than spin.
        asio::steady_timer pause(io_, Ms(50));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      if (connections_.size() >= options_.max_connections && !EvictOne()) {
        ++refused_;
        socket.close(ec);
        continue;
      }
      ++accepted_;
      ++open_;
      socket.set_option(tcp::no_delay(true), ec);
      connections_.emplace_back(std::move(socket));
      asio::co_spawn(io_, Serve(self, std::prev(connections_.end())), asio::detached);
    }
  }

  // Closes the oldest connection that is waiting for a request.
  bool EvictOne() {
    for (Connection& c : connections_) {
      if (c.waiting && c.stream.socket().is_open()) {
        c.Close();
        ++evicted_;
        return true;
      }
    }
    return false;
  }

  // `self` keeps the server alive while the connection runs.
  asio::awaitable<void> Serve(std::shared_ptr<Impl> /*self*/, ConnectionList::iterator it) {
    Connection& c = *it;
    std::string remote;
    {
      error_code ec;
      const auto endpoint = c.stream.socket().remote_endpoint(ec);
      if (!ec) remote = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    }
    beast::flat_buffer buffer;
    for (;;) {
      c.waiting = true;
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
      parser.body_limit(std::max(options_.body_limit, options_.max_body_limit));
      c.stream.expires_after(Ms(options_.request_timeout_ms));
      error_code ec;
      const std::size_t header_bytes = co_await http::async_read_header(
          c.stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      // Beast applies its header limit to the request line and to the
      // fields separately, so together they could reach twice the limit;
      // the limit is on the whole header (docs/cart-api.md).
      if (!ec && header_bytes > options_.header_limit) ec = http::error::header_limit;
      std::size_t limit = options_.body_limit;
      if (!ec && options_.body_limit_for) {
        const auto target = parser.get().target();
        const auto method = parser.get().method_string();
        const std::string_view path(target.data(), std::min(target.size(), target.find('?')));
        limit =
            std::min(options_.max_body_limit,
                     std::max(limit, options_.body_limit_for(
                                         std::string_view(method.data(), method.size()), path)));
      }
      if (!ec) parser.body_limit(limit);  // for chunked bodies, checked as they arrive
      if (!ec && parser.content_length() && *parser.content_length() > limit) {
        ec = http::error::body_limit;
      }
      if (!ec && !parser.is_done()) {
        if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
          http::response<http::empty_body> go_on{http::status::continue_, 11};
          co_await http::async_write(c.stream, go_on,
                                     asio::redirect_error(asio::use_awaitable, ec));
        }
        if (!ec) {
          co_await http::async_read(c.stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      if (ec) {
        if (ec == beast::error::timeout) ++timeouts_;
        // Answer what can be answered; the connection ends either way.
        std::optional<HttpResponse> refusal;
        if (ec == http::error::body_limit) {
          refusal = HttpResponse{
              413, ErrorJson("request body exceeds " + std::to_string(limit) + " bytes")};
        } else if (ec == http::error::header_limit) {
          refusal = HttpResponse{431, ErrorJson("request headers exceed " +
                                                std::to_string(options_.header_limit) + " bytes")};
        } else if (IsMalformedRequest(ec)) {
          refusal = HttpResponse{400, ErrorJson("malformed HTTP request")};
        }
        if (refusal) {
          ++rejected_;
          co_await Write(c, *refusal, /*keep_alive=*/false);
        }
        break;
      }
      c.waiting = false;
      ++requests_;
      const http::request<http::string_body>& req = parser.get();
      HttpRequest request;
      request.method = std::string(req.method_string());
      request.target = std::string(req.target());
      const std::size_t q = request.target.find('?');
      request.path = request.target.substr(0, q);
      if (q != std::string::npos) request.query = request.target.substr(q + 1);
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        request.headers[name] = std::string(field.value());
      }
      request.body = req.body();
      request.remote = remote;
      const bool keep_alive = req.keep_alive();
      HttpResponse response = co_await handler_(std::move(request));
      if (stopping_) break;
      if (!co_await Write(c, response, keep_alive) || !keep_alive) break;
    }
    c.Close();
    --open_;
    connections_.erase(it);
  }

  asio::awaitable<bool> Write(Connection& c, const HttpResponse& r, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
    res.set(http::field::server, "converge-cart");
    res.set(http::field::content_type, r.content_type);
    res.set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    res.body() = r.body;
    res.prepare_payload();
    c.stream.expires_after(Ms(options_.write_timeout_ms));
    error_code ec;
    co_await http::async_write(c.stream, res, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }

  asio::io_context& io_;
  const HttpServerOptions options_;
  Handler handler_;
  tcp::acceptor acceptor_;
  ConnectionList connections_;  // io_context thread only
  bool stopping_ = false;
  mutable std::mutex mu_;
  std::string local_address_;
  std::atomic<std::uint64_t> accepted_{0}, open_{0}, evicted_{0}, refused_{0}, timeouts_{0},
      requests_{0}, rejected_{0};
};

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::Open() { return impl_->Open(); }
std::string HttpServer::local_address() const { return impl_->local_address(); }
void HttpServer::Start() { impl_->Start(); }
void HttpServer::Stop() { impl_->Stop(); }
HttpServerStats HttpServer::stats() const { return impl_->stats(); }

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex(text[i + 1]);
    const int lo = hex(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

StatusOr<std::optional<std::string>> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
      for (char& c : value) {
        if (c == '+') c = ' ';
      }
      std::optional<std::string> decoded = PercentDecode(value);
      if (!decoded) {
        return InvalidArgument("malformed percent-encoding in query parameter '" +
                               std::string(name) + "'");
      }
      return std::optional<std::string>(std::move(decoded));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::optional<std::string>();
}

}  // namespace converge::cart
