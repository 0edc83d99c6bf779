// NodeApi over HTTP/1.1 with Boost.Beast: synchronous calls made of
// asynchronous operations run on a private io_context, so that every step
// (resolve, connect, write, read) is bounded by one deadline per request.

// clang-format off
#include "replication/asio.h"  // first: it fixes Boost 1.74's Asio under C++20
// clang-format on

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <utility>

#include "examples/cart/coherence/node_api.h"
#include "examples/cart/coherence/text.h"

namespace converge::cart::coherence {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

struct Response {
  unsigned status = 0;
  std::string body;
};

class HttpNodeApi final : public NodeApi {
 public:
  HttpNodeApi(HostPort address, HttpOptions options)
      : address_(std::move(address)), options_(options), resolver_(ioc_) {}

  HttpNodeApi(const HttpNodeApi&) = delete;
  HttpNodeApi& operator=(const HttpNodeApi&) = delete;
  ~HttpNodeApi() override { Close(); }

  StatusOr<ClusterInfo> Cluster() override {
    StatusOr<Response> r = Send(http::verb::get, "/cluster", {});
    if (!r.ok()) return r.status();
    if (r->status != 200) return Unexpected("GET /cluster", *r);
    StatusOr<ClusterInfo> info = ParseCluster(r->body);
    if (!info.ok()) return info.status().WithContext("GET /cluster");
    return info;
  }

  StatusOr<KeyPage> Keys(std::string_view prefix, std::string_view after,
                         std::size_t limit) override {
    std::string target = "/internal/keys?prefix=" + QueryEscape(prefix);
    if (!after.empty()) target += "&after=" + QueryEscape(after);
    target += "&limit=" + std::to_string(limit);
    StatusOr<Response> r = Send(http::verb::get, target, {});
    if (!r.ok()) return r.status();
    if (r->status != 200) return Unexpected("GET /internal/keys", *r);
    StatusOr<KeyPage> page = ParseKeyPage(r->body, prefix, after, limit);
    if (!page.ok()) return page.status().WithContext("GET /internal/keys");
    return page;
  }

  StatusOr<std::optional<StateAnswer>> State(std::string_view key) override {
    StatusOr<Response> r = Send(http::verb::get, "/internal/state?key=" + QueryEscape(key), {});
    if (!r.ok()) return r.status();
    if (r->status == 404) return std::optional<StateAnswer>();
    if (r->status != 200) return Unexpected("GET /internal/state", *r);
    StatusOr<StateAnswer> state = ParseState(r->body, key, options_.max_state_bytes);
    if (!state.ok()) return state.status().WithContext("GET /internal/state");
    return std::optional<StateAnswer>(std::move(state).value());
  }

  StatusOr<MergeAnswer> Merge(std::string_view key, std::string_view state) override {
    StatusOr<Response> r = Send(http::verb::post, "/internal/merge", MergeBody(key, state));
    if (!r.ok()) return r.status();
    if (r->status == 404) {
      return Status(StatusCode::kFailedPrecondition,
                    "POST /internal/merge: 404 (is the node started with --allow-repair?) " +
                        ErrorOf(r->body));
    }
    if (r->status >= 400 && r->status < 500) {
      return Status(StatusCode::kFailedPrecondition, "POST /internal/merge: refused with HTTP " +
                                                         std::to_string(r->status) + " " +
                                                         ErrorOf(r->body));
    }
    if (r->status != 200) return Unexpected("POST /internal/merge", *r);
    StatusOr<MergeAnswer> answer = ParseMerge(r->body);
    if (!answer.ok()) return answer.status().WithContext("POST /internal/merge");
    return answer;
  }

  [[nodiscard]] Traffic traffic() const override { return traffic_; }

 private:
  static Status Unexpected(std::string_view what, const Response& r) {
    return {StatusCode::kUnavailable,
            std::string(what) + ": HTTP " + std::to_string(r.status) + " " + ErrorOf(r.body)};
  }

  Status Failure(std::string_view step, const beast::error_code& ec) const {
    const bool timeout = ec == beast::error::timeout || ec == asio::error::timed_out;
    return {timeout ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable,
            ToString(address_) + ": " + std::string(step) + ": " +
                (timeout ? std::string("timed out") : ec.message())};
  }

  // Runs what `start` began until its handler ran or the deadline passed;
  // past the deadline, cancels and drains.
  template <class Start>
  beast::error_code Run(Start&& start, Clock::time_point deadline) {
    std::optional<beast::error_code> result;
    std::forward<Start>(start)(result);
    ioc_.restart();
    ioc_.run_until(deadline + std::chrono::milliseconds(50));
    if (!result) {
      resolver_.cancel();
      if (stream_) stream_->close();
      ioc_.restart();
      ioc_.run();
      stream_.reset();
      return asio::error::timed_out;
    }
    return *result;
  }

  Status Connect(Clock::time_point deadline) {
    tcp::resolver::results_type endpoints;
    beast::error_code ec = Run(
        [&](std::optional<beast::error_code>& result) {
          resolver_.async_resolve(address_.host, std::to_string(address_.port),
                                  [&](beast::error_code e, tcp::resolver::results_type r) {
                                    endpoints = std::move(r);
                                    result = e;
                                  });
        },
        deadline);
    if (ec) return Failure("resolve", ec);
    stream_.emplace(ioc_);
    stream_->expires_at(deadline);
    ec = Run(
        [&](std::optional<beast::error_code>& result) {
          stream_->async_connect(endpoints,
                                 [&](beast::error_code e, const tcp::endpoint&) { result = e; });
        },
        deadline);
    if (ec) {
      Close();
      return Failure("connect", ec);
    }
    buffer_.clear();
    return Status::Ok();
  }

  void Close() {
    if (!stream_) return;
    beast::error_code ignored;
    stream_->socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_->close();
    stream_.reset();
  }

  StatusOr<Response> Send(http::verb verb, const std::string& target, std::string body) {
    const Clock::time_point deadline = Clock::now() + options_.timeout;
    // A kept-alive connection the server closed in the meantime fails before
    // any answer: retry once on a new one (every call here is idempotent:
    // reads, and a merge is a join).
    for (int attempt = 0;; ++attempt) {
      const bool reused = stream_.has_value();
      if (!reused) CONVERGE_RETURN_IF_ERROR(Connect(deadline));
      bool answered = false;
      StatusOr<Response> r = Exchange(verb, target, body, deadline, &answered);
      if (r.ok() || !reused || answered || attempt > 0 || Clock::now() >= deadline) return r;
    }
  }

  StatusOr<Response> Exchange(http::verb verb, const std::string& target, const std::string& body,
                              Clock::time_point deadline, bool* answered) {
    ++traffic_.requests;
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, ToString(address_));
    req.set(http::field::user_agent, "coherence-check");
    req.set(http::field::accept, "application/json");
    req.keep_alive(true);
    if (verb == http::verb::post) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();

    stream_->expires_at(deadline);
    beast::error_code ec = Run(
        [&](std::optional<beast::error_code>& result) {
          http::async_write(*stream_, req, [&](beast::error_code e, std::size_t) { result = e; });
        },
        deadline);
    if (ec) {
      Close();
      return Failure("write", ec);
    }
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(options_.max_body_bytes);
    // Boost 1.74's read does not refuse a Content-Length past body_limit
    // when the header arrives (only once that many bytes came): read the
    // header first and check it here.
    ec = Run(
        [&](std::optional<beast::error_code>& result) {
          http::async_read_header(*stream_, buffer_, parser,
                                  [&](beast::error_code e, std::size_t) { result = e; });
        },
        deadline);
    if (!ec && parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
      ec = http::error::body_limit;
    }
    if (!ec) {
      ec = Run(
          [&](std::optional<beast::error_code>& result) {
            http::async_read(*stream_, buffer_, parser,
                             [&](beast::error_code e, std::size_t) { result = e; });
          },
          deadline);
    }
    if (stream_ && parser.got_some()) *answered = true;
    if (ec) {
      Close();
      if (ec == http::error::body_limit) {
        return Status(StatusCode::kInvalidArgument, ToString(address_) + ": answer larger than " +
                                                        std::to_string(options_.max_body_bytes) +
                                                        " bytes");
      }
      if (ec == http::error::header_limit) {
        return Status(StatusCode::kInvalidArgument, ToString(address_) + ": headers too large");
      }
      return Failure("read", ec);
    }
    http::response<http::string_body> res = parser.release();
    traffic_.bytes_received += res.body().size();
    if (!res.keep_alive()) Close();
    return Response{res.result_int(), std::move(res.body())};
  }

  HostPort address_;
  HttpOptions options_;
  asio::io_context ioc_;
  tcp::resolver resolver_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  Traffic traffic_;
};

}  // namespace

std::unique_ptr<NodeApi> MakeHttpNodeApi(HostPort address, HttpOptions options) {
  return std::make_unique<HttpNodeApi>(std::move(address), options);
}

}  // namespace converge::cart::coherence
