// libFuzzer target: the bytes an HTTP client sends to cart-server
// (TESTPLAN S2, S5).
//
// The input is a client's byte stream, possibly several pipelined requests.
// Each request is read by a Beast http::request_parser<http::string_body>
// with HttpServer's limits (HttpServerOptions' header and body limits, the
// larger body limit cart-server's main.cc gives POST /internal/merge), fed
// in chunks the way HttpServer's reads feed it (header first, then the
// body, eager), answered 413/431/400 where HttpServer answers them, and
// turned into an HttpRequest as HttpServer does. Then it goes through what
// CartService does with a request before any state is touched: the path
// split into percent-decoded segments, the routes, the query parameters
// (QueryParam), the strict JSON bodies (ParseObject, Quantity, SkuField),
// cart ids and SKUs (CheckCartId, CheckSku), base64 (Base64Decode), the
// Idempotency-Key and ?w= rules and the request fingerprint.
//
// Real code where it is reachable (examples/cart/server/request_parsing.h,
// http_server.h's PercentDecode and QueryParam, examples/cart/cart.h). What
// is still private to cart_service.cc and http_server.cc is copied below in
// the sections marked TEMPORARY MIRROR, to be replaced by calls once those
// pieces move to a header (docs/wire-format.md, "Fuzzing the frame and HTTP
// paths", lists them).
//
// Besides crashes, hangs, leaks and sanitizer reports, it aborts when:
//   - a request Beast accepted has more header bytes than the header limit,
//     or a body larger than its route's limit, or a body that disagrees with
//     its Content-Length;
//   - CheckSku accepts something that is not 1-128 bytes of well-formed
//     UTF-8 without controls, surrogates and noncharacters, or refuses
//     something that is (checked against an independent decoder, on every
//     path segment, JSON string and a prefix of every body); the same for
//     CheckCartId against its character set;
//   - PercentDecode accepts a malformed escape or refuses a well-formed one,
//     decodes differently from an independent decoder, or does not invert a
//     percent-encoding; QueryParam differs from an independent reading;
//   - Base64Decode accepts a non-canonical text (its encoding differs) or
//     does not invert Base64Encode;
//   - ParseObject's nesting check disagrees with the depth of what the JSON
//     parser reads (valid JSON deeper than kMaxJsonDepth accepted, or
//     shallower refused as too deep), it accepts invalid JSON, a duplicate
//     key at any level, a non-object or an unknown field, refuses a body
//     that has none of these, or returns another value than the parser;
//   - Quantity or SkuField accepts or refuses against the contract
//     (docs/cart-api.md);
//   - a request that reaches a write has not passed every check.
//
// Built with clang (-fsanitize=fuzzer,address,undefined) by
// examples/cart/fuzz/CMakeLists.txt; run by crdt/codec/fuzz/run_fuzzer.sh
// (ctest converge.cart.fuzz_http, label fuzz). Seed corpus:
// examples/cart/fuzz/corpus/ (make_corpus.py).

// clang-format off
#include "replication/asio.h"  // first: it fixes Boost 1.74's includes
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "examples/cart/cart.h"
#include "examples/cart/server/http_server.h"
#include "examples/cart/server/request_parsing.h"
#include "replication/address.h"
#include "replication/hash_tree.h"

namespace converge::cart::fuzz {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using nlohmann::json;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "http_fuzzer: %s\n", what.c_str());
  std::abort();
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes.substr(0, 64)) {
    out += digits[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += digits[static_cast<unsigned char>(c) & 0xf];
  }
  if (bytes.size() > 64) out += "...";
  return out;
}

// --- independent checkers ------------------------------------------------------

// The SKU rule of docs/cart-api.md, by the well-formed byte sequences of
// Unicode (Table 3-7) rather than by decoding and range checks.
bool SkuIsValid(std::string_view s) {
  if (s.empty() || s.size() > kMaxSkuBytes) return false;
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto in = [](unsigned char v, unsigned lo, unsigned hi) { return v >= lo && v <= hi; };
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char b0 = b(i);
    std::size_t n = 0;
    bool ok = false;
    if (b0 <= 0x7f) {
      n = 1, ok = true;
    } else if (in(b0, 0xc2, 0xdf)) {
      n = 2, ok = i + 1 < s.size() && in(b(i + 1), 0x80, 0xbf);
    } else if (b0 == 0xe0) {
      n = 3, ok = i + 2 < s.size() && in(b(i + 1), 0xa0, 0xbf) && in(b(i + 2), 0x80, 0xbf);
    } else if (in(b0, 0xe1, 0xec) || in(b0, 0xee, 0xef)) {
      n = 3, ok = i + 2 < s.size() && in(b(i + 1), 0x80, 0xbf) && in(b(i + 2), 0x80, 0xbf);
    } else if (b0 == 0xed) {
      n = 3, ok = i + 2 < s.size() && in(b(i + 1), 0x80, 0x9f) && in(b(i + 2), 0x80, 0xbf);
    } else if (b0 == 0xf0) {
      n = 4, ok = i + 3 < s.size() && in(b(i + 1), 0x90, 0xbf) && in(b(i + 2), 0x80, 0xbf) &&
                  in(b(i + 3), 0x80, 0xbf);
    } else if (in(b0, 0xf1, 0xf3)) {
      n = 4, ok = i + 3 < s.size() && in(b(i + 1), 0x80, 0xbf) && in(b(i + 2), 0x80, 0xbf) &&
                  in(b(i + 3), 0x80, 0xbf);
    } else if (b0 == 0xf4) {
      n = 4, ok = i + 3 < s.size() && in(b(i + 1), 0x80, 0x8f) && in(b(i + 2), 0x80, 0xbf) &&
                  in(b(i + 3), 0x80, 0xbf);
    }
    if (!ok) return false;
    std::uint32_t cp = n == 1 ? b0 : n == 2 ? b0 & 0x1f : n == 3 ? b0 & 0x0f : b0 & 0x07;
    for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (b(i + k) & 0x3f);
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return false;                    // controls
    if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe) return false;  // nonchars
    i += n;
  }
  return true;
}

bool CartIdIsValid(std::string_view id) {
  static constexpr std::string_view kAllowed =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
  return !id.empty() && id.size() <= kMaxCartIdBytes &&
         id.find_first_not_of(kAllowed) == std::string_view::npos;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> ReferencePercentDecode(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t pct = text.find('%', i);
    out.append(text.substr(i, pct == std::string_view::npos ? std::string_view::npos : pct - i));
    if (pct == std::string_view::npos) break;
    if (text.size() - pct < 3) return std::nullopt;
    const int hi = HexDigit(text[pct + 1]), lo = HexDigit(text[pct + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>((hi << 4) | lo);
    i = pct + 3;
  }
  return out;
}

std::string PercentEncodeAll(std::string_view bytes, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += '%';
    out += digits[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += digits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

// QueryParam's contract: the first '&'-separated pair whose (raw) name is
// `name`, its value with '+' as space, percent-decoded; an error when that
// value's percent-encoding is malformed. (A '&' at the very end ends the
// query: no empty pair after it.)
struct QueryValue {
  bool malformed = false;
  std::optional<std::string> value;
};

QueryValue ReferenceQueryParam(std::string_view query, std::string_view name) {
  if (query.empty()) return {};
  std::vector<std::string_view> pairs;
  for (std::size_t start = 0;;) {
    const std::size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) {
      if (start < query.size()) pairs.push_back(query.substr(start));
      break;
    }
    pairs.push_back(query.substr(start, amp - start));
    start = amp + 1;
  }
  for (const std::string_view pair : pairs) {
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    std::replace(value.begin(), value.end(), '+', ' ');
    std::optional<std::string> decoded = ReferencePercentDecode(value);
    if (!decoded) return {true, std::nullopt};
    return {false, std::move(decoded)};
  }
  return {};
}

// What the JSON parser reads, through its SAX interface: validity, depth,
// duplicate keys at any level, the kind of each top-level field.
struct JsonFacts {
  bool valid = false;
  int max_depth = 0;
  bool duplicate = false;
  bool object = false;  // the top level is an object
  std::set<std::string> top_keys;
  std::map<std::string, std::string> top_kind;  // "unsigned", "integer", "float", "string", ...
  std::map<std::string, std::uint64_t> top_unsigned;
  std::map<std::string, std::int64_t> top_integer;
  std::map<std::string, std::string> top_string;
  std::vector<std::string> strings;  // every string and key (valid UTF-8 per the parser)
};

class FactsSax final : public nlohmann::json_sax<json> {
 public:
  explicit FactsSax(JsonFacts* f) : f_(f) {}
  bool null() override { return Value("null"); }
  bool boolean(bool) override { return Value("boolean"); }
  bool number_integer(number_integer_t v) override {
    if (AtTop()) f_->top_integer[key_] = v;
    return Value("integer");
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (AtTop()) f_->top_unsigned[key_] = v;
    return Value("unsigned");
  }
  bool number_float(number_float_t, const string_t&) override { return Value("float"); }
  bool string(string_t& v) override {
    f_->strings.push_back(v);
    if (AtTop()) f_->top_string[key_] = v;
    return Value("string");
  }
  bool binary(binary_t&) override { return Value("binary"); }
  bool start_object(std::size_t) override {
    Value("object");
    if (depth_ == 0) f_->object = true;
    Push(true);
    return true;
  }
  bool key(string_t& k) override {
    f_->strings.push_back(k);
    if (!keys_.back().insert(k).second) f_->duplicate = true;
    if (depth_ == 1) f_->top_keys.insert(k);
    key_ = k;
    return true;
  }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override {
    Value("array");
    Push(false);
    return true;
  }
  bool end_array() override { return Pop(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  bool AtTop() const { return depth_ == 1 && in_object_.back(); }
  bool Value(const char* kind) {
    if (AtTop()) f_->top_kind[key_] = kind;
    return true;
  }
  void Push(bool object) {
    ++depth_;
    f_->max_depth = std::max(f_->max_depth, depth_);
    in_object_.push_back(object);
    keys_.emplace_back();
  }
  bool Pop() {
    --depth_;
    in_object_.pop_back();
    keys_.pop_back();
    return true;
  }

  JsonFacts* f_;
  int depth_ = 0;
  std::vector<bool> in_object_{false};
  std::vector<std::set<std::string>> keys_{{}};
  std::string key_;
};

JsonFacts Facts(std::string_view body) {
  JsonFacts f;
  FactsSax sax(&f);
  f.valid = json::sax_parse(body.begin(), body.end(), &sax);
  // JSON text cannot hold a raw NUL (RFC 8259: outside strings only
  // whitespace, inside them control characters are escaped).
  if (body.find('\0') != std::string_view::npos) f.valid = false;
  return f;
}

// --- checks of the parsing helpers -----------------------------------------------

void CheckSkuAgainstReference(std::string_view s, const char* where) {
  const bool accepted = !CheckSku(s).has_value();
  if (accepted != SkuIsValid(s)) {
    Fail(std::string("CheckSku ") + (accepted ? "accepts" : "refuses") + " " + where + " " +
         Hex(s) + (accepted ? ", which breaks the SKU rule" : ", which keeps the SKU rule"));
  }
}

void CheckCartIdAgainstReference(std::string_view s) {
  const bool accepted = !CheckCartId(s).has_value();
  if (accepted != CartIdIsValid(s)) {
    Fail(std::string("CheckCartId ") + (accepted ? "accepts " : "refuses ") + Hex(s));
  }
}

void CheckPercentDecode(std::string_view text) {
  const std::optional<std::string> got = PercentDecode(text);
  const std::optional<std::string> want = ReferencePercentDecode(text);
  if (got != want) {
    Fail("PercentDecode(" + Hex(text) + ") " + (got ? "gives " + Hex(*got) : "refuses") +
         ", the reference " + (want ? "gives " + Hex(*want) : "refuses"));
  }
  for (const bool upper : {true, false}) {
    const std::string source = got ? *got : std::string(text);
    const std::optional<std::string> back = PercentDecode(PercentEncodeAll(source, upper));
    if (!back || *back != source)
      Fail("PercentDecode does not invert percent-encoding of " + Hex(source));
  }
}

void CheckQueryParam(std::string_view query, std::string_view name) {
  const StatusOr<std::optional<std::string>> got = QueryParam(query, name);
  const QueryValue want = ReferenceQueryParam(query, name);
  const auto show = [](bool malformed, const std::optional<std::string>& v) {
    return malformed ? std::string("an error") : v ? "'" + Hex(*v) + "'" : std::string("nothing");
  };
  if (got.ok() == want.malformed || (got.ok() && *got != want.value)) {
    Fail("QueryParam(" + Hex(query) + ", " + Hex(name) + ") gives " +
         show(!got.ok(), got.ok() ? *got : std::nullopt) + ", the reference " +
         show(want.malformed, want.value));
  }
  if (!got.ok() && got.status().message().empty()) Fail("QueryParam refuses without a reason");
  if (got.ok() && *got) {
    // Written back as a parameter, the value reads the same.
    const std::string again = std::string(name) + "=" + PercentEncodeAll(**got, true) + "&x=1";
    const StatusOr<std::optional<std::string>> back = QueryParam(again, name);
    if (!back.ok() || *back != *got) Fail("QueryParam does not read back " + Hex(**got));
  }
}

void CheckBase64(std::string_view text) {
  if (const std::optional<std::string> bytes = Base64Decode(text)) {
    if (Base64Encode(*bytes) != text) Fail("Base64Decode accepts the non-canonical " + Hex(text));
  }
  const std::string encoded = Base64Encode(text);
  const std::optional<std::string> back = Base64Decode(encoded);
  if (!back || *back != text) Fail("Base64Decode does not invert Base64Encode of " + Hex(text));
}

// ParseObject against what the parser reads; returns its result.
StatusOr<json> CheckParseObject(std::string_view body,
                                std::initializer_list<std::string_view> allowed) {
  StatusOr<json> got = ParseObject(body, allowed);
  const JsonFacts f = Facts(body);
  const std::string what = "ParseObject(" + Hex(body) + ")";
  const bool too_deep = !got.ok() && got.status().message().starts_with("JSON nested deeper than");
  if (f.valid && too_deep && f.max_depth <= kMaxJsonDepth) {
    Fail(what + " calls valid JSON of depth " + std::to_string(f.max_depth) + " too deep");
  }
  if (f.valid && f.max_depth > kMaxJsonDepth && !too_deep) {
    Fail(what + " lets through JSON of depth " + std::to_string(f.max_depth));
  }
  bool unknown = false;
  for (const std::string& k : f.top_keys) {
    unknown = unknown || std::find(allowed.begin(), allowed.end(), k) == allowed.end();
  }
  const bool acceptable =
      f.valid && f.max_depth <= kMaxJsonDepth && !f.duplicate && f.object && !unknown;
  if (got.ok() != acceptable) {
    Fail(what + (got.ok() ? " accepts" : " refuses (" + got.status().message() + ")") + "; valid " +
         std::to_string(f.valid) + ", depth " + std::to_string(f.max_depth) + ", duplicate " +
         std::to_string(f.duplicate) + ", object " + std::to_string(f.object) + ", unknown field " +
         std::to_string(unknown));
  }
  if (!got.ok() && got.status().message().empty()) Fail(what + " refuses without a reason");
  if (got.ok()) {
    const json plain = json::parse(body.begin(), body.end(), nullptr, false);
    if (plain != *got) Fail(what + " returns another value than the parser reads");
    // What the service answers with must serialise (strict: valid UTF-8).
    try {
      (void)got->dump();
    } catch (const json::exception& e) {
      Fail(what + " accepted a value that does not serialise: " + e.what());
    }
    for (const std::string& s : f.strings) CheckSkuAgainstReference(s, "a JSON string");
  }
  return got;
}

void CheckQuantity(const json& body, const JsonFacts& f, std::uint64_t min) {
  const StatusOr<std::uint64_t> got = Quantity(body, min);
  const auto kind = f.top_kind.find("quantity");
  std::optional<std::uint64_t> want;
  if (kind != f.top_kind.end() && kind->second == "unsigned") {
    const std::uint64_t q = f.top_unsigned.at("quantity");
    if (q >= min && q <= kMaxQuantity) want = q;
  } else if (kind != f.top_kind.end() && kind->second == "integer") {
    const std::int64_t q = f.top_integer.at("quantity");
    if (q >= 0 && static_cast<std::uint64_t>(q) >= min &&
        static_cast<std::uint64_t>(q) <= kMaxQuantity)
      want = static_cast<std::uint64_t>(q);
  }
  if (got.ok() != want.has_value() || (got.ok() && *got != *want)) {
    Fail("Quantity(" + body.dump() + ", " + std::to_string(min) + ") " +
         (got.ok() ? "gives " + std::to_string(*got) : "refuses") + " against the contract");
  }
}

void CheckSkuField(const json& body, const JsonFacts& f) {
  const StatusOr<std::string> got = SkuField(body);
  const auto kind = f.top_kind.find("sku");
  const bool want =
      kind != f.top_kind.end() && kind->second == "string" && SkuIsValid(f.top_string.at("sku"));
  if (got.ok() != want) Fail("SkuField(" + Hex(body.dump()) + ") disagrees with the SKU rule");
  if (got.ok() && *got != f.top_string.at("sku")) Fail("SkuField returns another string");
}

// --- TEMPORARY MIRROR of cart_service.cc --------------------------------------------
// Private to CartService::Impl (Dispatch, Write, Keys, Partition, Merge) and
// copied here until they move to request_parsing.h; keep in step with
// cart_service.cc. Everything up to the point where the service would
// touch the node or the store; the answer's status code.

constexpr std::size_t kMaxIdempotencyKeyBytes = 255;  // cart_service.cc
constexpr std::size_t kMaxKeysLimit = 10'000;         // cart_service.cc

// Dispatch's path split.
std::optional<std::vector<std::string>> MirrorSegments(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path[0] != '/') return std::nullopt;
  path.remove_prefix(1);
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    const std::optional<std::string> segment = PercentDecode(path.substr(0, slash));
    if (!segment) return std::nullopt;
    segments.push_back(*segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// replication::ParseWriteConsistency (node.cc, not linked here).
bool MirrorWriteConsistency(std::string_view w) {
  return w == "local" || w == "majority" || w == "all";
}

// Write's checks before the node; 0 when the write would go to the node.
unsigned MirrorWrite(const HttpRequest& request) {
  std::string w = "local";
  const StatusOr<std::optional<std::string>> w_param = QueryParam(request.query, "w");
  if (!w_param.ok()) return 400;
  if (*w_param) {
    if (!MirrorWriteConsistency(**w_param)) return 400;
    w = **w_param;
  }
  if (const std::optional<std::string> idem = request.Header("idempotency-key")) {
    if (idem->empty() || idem->size() > kMaxIdempotencyKeyBytes ||
        !std::all_of(idem->begin(), idem->end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
      return 400;
    }
    const std::string fingerprint = Hex64(replication::Hash64(request.method + ' ' + request.path +
                                                              "\nw=" + w + '\n' + request.body));
    if (fingerprint.size() != 16) Fail("a fingerprint is not 16 hex digits");
  }
  return 0;
}

// Keys' limit parameter.
bool MirrorKeysLimit(const std::string& l) {
  std::size_t used = 0;
  std::size_t limit = 0;
  try {
    limit = std::stoul(l, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  return !(used == 0 || used != l.size() || limit == 0 || limit > kMaxKeysLimit);
}

unsigned MirrorDispatch(const HttpRequest& request) {
  const std::optional<std::vector<std::string>> parsed = MirrorSegments(request.path);
  if (!parsed) return 400;
  const std::vector<std::string>& segments = *parsed;
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
  if (m == "OPTIONS") return 204;
  if (segments.empty() || is({"app.js"}) || is({"style.css"}) || is({"index.html"}))
    return m == "GET" ? 200 : 405;
  if (is({"healthz"}) || is({"metrics"}) || is({"cluster"})) return m == "GET" ? 200 : 405;
  if (!segments.empty() && segments[0] == "carts" && segments.size() >= 2 && segments.size() <= 4) {
    const std::string& id = segments[1];
    if (CheckCartId(id)) return 400;
    if (!CartIdIsValid(id)) Fail("a request with the cart id " + Hex(id) + " passed");
    if (segments.size() == 2) {
      if (m == "GET") return 200;
      if (m == "DELETE") return MirrorWrite(request);
      return 405;
    }
    if (segments[2] != "items") return 404;
    if (segments.size() == 3) {
      if (m != "POST") return 405;
      StatusOr<json> body = CheckParseObject(request.body, {"sku", "quantity"});
      if (!body.ok()) return 400;
      const JsonFacts f = Facts(request.body);
      CheckSkuField(*body, f);
      CheckQuantity(*body, f, 1);
      StatusOr<std::string> sku = SkuField(*body);
      if (!sku.ok()) return 400;
      StatusOr<std::uint64_t> q = Quantity(*body, 1);
      if (!q.ok()) return 400;
      if (!SkuIsValid(*sku) || *q < 1 || *q > kMaxQuantity) Fail("an invalid add passed");
      return MirrorWrite(request);
    }
    const std::string& sku = segments[3];
    if (CheckSku(sku)) return 400;
    if (m == "PUT") {
      StatusOr<json> body = CheckParseObject(request.body, {"quantity"});
      if (!body.ok()) return 400;
      CheckQuantity(*body, Facts(request.body), 0);
      StatusOr<std::uint64_t> q = Quantity(*body, 0);
      if (!q.ok()) return 400;
      if (!SkuIsValid(sku) || *q > kMaxQuantity) Fail("an invalid set passed");
      return MirrorWrite(request);
    }
    if (m == "DELETE") return MirrorWrite(request);
    return 405;
  }
  // The fault-injection and repair routes, as with --allow-fault-injection
  // --allow-repair (otherwise they are 404 before anything is parsed).
  if (is({"admin", "partition"})) {
    if (m == "DELETE") return 200;
    if (m != "POST") return 405;
    StatusOr<json> body = CheckParseObject(request.body, {"peers"});
    if (!body.ok()) return 400;
    const auto it = body->find("peers");
    if (it == body->end() || !it->is_array() || it->empty() || it->size() > 64) return 400;
    for (const json& p : *it) {
      if (!p.is_string() || !replication::ValidNodeName(p.get<std::string>())) return 400;
    }
    return 200;
  }
  if (is({"admin", "corrupt"})) {
    if (m != "POST") return 405;
    StatusOr<json> body = CheckParseObject(request.body, {"key", "sku", "quantity"});
    if (!body.ok()) return 400;
    const auto key = body->find("key");
    if (key == body->end() || !key->is_string()) return 400;
    const JsonFacts f = Facts(request.body);
    CheckSkuField(*body, f);
    CheckQuantity(*body, f, 1);
    if (!SkuField(*body).ok() || !Quantity(*body, 1).ok()) return 400;
    return 200;
  }
  if (!segments.empty() && segments[0] == "internal") {
    if (is({"internal", "keys"})) {
      if (m != "GET") return 405;
      for (const char* name : {"prefix", "after", "limit"}) {
        CheckQueryParam(request.query, name);
        if (!QueryParam(request.query, name).ok()) return 400;
      }
      if (const auto l = *QueryParam(request.query, "limit"); l && !MirrorKeysLimit(*l)) return 400;
      return 200;
    }
    if (is({"internal", "state"})) {
      if (m != "GET") return 405;
      CheckQueryParam(request.query, "key");
      const StatusOr<std::optional<std::string>> key = QueryParam(request.query, "key");
      return !key.ok() || !*key || (*key)->empty() ? 400 : 200;
    }
    if (is({"internal", "merge"})) {
      if (m != "POST") return 405;
      StatusOr<json> body = CheckParseObject(request.body, {"key", "state"});
      if (!body.ok()) return 400;
      const auto key = body->find("key");
      const auto state = body->find("state");
      if (key == body->end() || !key->is_string() || key->get<std::string>().empty()) return 400;
      if (state == body->end() || !state->is_string()) return 400;
      CheckBase64(state->get<std::string>());
      return Base64Decode(state->get<std::string>()) ? 200 : 400;
    }
  }
  return 404;
}

// --- TEMPORARY MIRROR of http_server.cc and main.cc ----------------------------------
// HttpServer::Impl::Serve's reading of one request and main.cc's route body
// limit, with a buffer in place of the socket.

// main.cc: coherence-check --repair pushes whole states.
std::size_t MirrorBodyLimitFor(std::string_view method, std::string_view path) {
  return method == "POST" && path == "/internal/merge" ? std::size_t{8} << 20
                                                       : std::size_t{16} << 10;
}
constexpr std::size_t kMaxBodyLimit = std::size_t{8} << 20;  // main.cc

bool IsMalformedRequest(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// The client's bytes as the socket returns them: in segments (of cycling
// sizes, as a client's writes and TCP split them), a read returning at most
// the rest of the current segment.
class Stream {
 public:
  explicit Stream(std::string_view bytes) : rest_(bytes) {}
  // Like a socket's read_some into `out`: 0 at the end of the stream.
  std::size_t ReadSome(boost::asio::mutable_buffer out) {
    static constexpr std::size_t kSegments[] = {65536, 7, 1, 300, 2, 4096, 13, 700};
    if (segment_ == 0 && !rest_.empty())
      segment_ = std::min(rest_.size(), kSegments[i_++ % std::size(kSegments)]);
    const std::size_t n = std::min(out.size(), segment_);
    std::copy_n(rest_.data(), n, static_cast<char*>(out.data()));
    rest_.remove_prefix(n);
    segment_ -= n;
    return n;
  }

 private:
  std::string_view rest_;
  std::size_t segment_ = 0;
  std::size_t i_ = 0;
};

// http::read_some (Boost 1.74, boost/beast/http/impl/read.hpp) over Stream:
// the parser first gets what the buffer holds, then reads of
// read_size(buffer, 65536) bytes; at the end of the stream put_eof, or
// end_of_stream before any byte.
std::size_t ReadSome(Stream& stream, beast::flat_buffer& buffer,
                     http::request_parser<http::string_body>& parser, error_code& ec) {
  std::size_t total = 0;
  ec = {};
  if (buffer.size() > 0) {
    const std::size_t n = parser.put(buffer.data(), ec);
    total += n;
    buffer.consume(n);
    if (ec != http::error::need_more) return total;
  }
  for (;;) {
    const std::size_t size = beast::read_size(buffer, 65536);
    if (size == 0) {
      ec = http::error::buffer_overflow;
      return total;
    }
    const std::size_t got = stream.ReadSome(buffer.prepare(size));
    if (got == 0) {
      if (parser.got_some()) {
        ec = {};
        parser.put_eof(ec);
      } else {
        ec = http::error::end_of_stream;
      }
      return total;
    }
    buffer.commit(got);
    const std::size_t n = parser.put(buffer.data(), ec);
    total += n;
    buffer.consume(n);
    if (ec != http::error::need_more) return total;
  }
}

// http::read_header and http::read: read_some until the header (eager off)
// or the message (eager on) is done. Returns the bytes the parser consumed.
template <class Done>
std::size_t ReadUntil(Stream& stream, beast::flat_buffer& buffer,
                      http::request_parser<http::string_body>& parser, bool eager, Done done,
                      error_code& ec) {
  parser.eager(eager);
  std::size_t total = 0;
  ec = {};
  while (!done()) {
    total += ReadSome(stream, buffer, parser, ec);
    if (ec) return total;
  }
  return total;
}

void Run(std::string_view input) {
  const HttpServerOptions options;  // the server's limits
  Stream stream(input);
  beast::flat_buffer buffer;  // one per connection, as in HttpServer::Serve
  for (int requests = 0; requests < 8; ++requests) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    parser.body_limit(std::max(options.body_limit, kMaxBodyLimit));
    error_code ec;
    const std::size_t header_bytes = ReadUntil(
        stream, buffer, parser, false, [&] { return parser.is_header_done(); }, ec);
    // As HttpServer::Serve: the header limit is on the whole header (Beast
    // limits the request line and the fields apart; this fuzzer found it).
    if (!ec && header_bytes > options.header_limit) ec = http::error::header_limit;
    std::size_t limit = options.body_limit;
    if (!ec) {
      const auto target = parser.get().target();
      const auto method = parser.get().method_string();
      const std::string_view path(target.data(), std::min(target.size(), target.find('?')));
      limit = std::min(kMaxBodyLimit,
                       std::max(limit, MirrorBodyLimitFor(
                                           std::string_view(method.data(), method.size()), path)));
      parser.body_limit(limit);
    }
    if (!ec && parser.content_length() && *parser.content_length() > limit) {
      ec = http::error::body_limit;
    }
    if (!ec && !parser.is_done()) {
      (void)ReadUntil(
          stream, buffer, parser, true, [&] { return parser.is_done(); }, ec);
    }
    if (ec) {
      // HttpServer answers 413, 431 or 400 (or nothing) and closes.
      (void)IsMalformedRequest(ec);
      return;
    }
    const http::request<http::string_body>& req = parser.get();
    if (req.body().size() > limit) {
      Fail("a body of " + std::to_string(req.body().size()) + " bytes passed the limit " +
           std::to_string(limit));
    }
    if (parser.content_length() && req.body().size() != *parser.content_length() &&
        !parser.chunked()) {
      Fail("the body disagrees with its Content-Length");
    }
    HttpRequest request;  // as HttpServer builds it
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

    // The helpers on every piece of the request.
    std::string_view path = request.path;
    while (!path.empty()) {
      const std::size_t slash = path.find('/');
      const std::string_view raw = path.substr(0, slash);
      CheckPercentDecode(raw);
      if (const std::optional<std::string> segment = PercentDecode(raw)) {
        CheckSkuAgainstReference(*segment, "a path segment");
        CheckCartIdAgainstReference(*segment);
      }
      if (slash == std::string_view::npos) break;
      path.remove_prefix(slash + 1);
    }
    CheckQueryParam(request.query, "w");
    CheckQueryParam(request.query, request.query.substr(0, request.query.find_first_of("=&")));
    CheckSkuAgainstReference(std::string_view(request.body).substr(0, 2 * kMaxSkuBytes),
                             "a body prefix");
    CheckSkuAgainstReference(std::string_view(request.body).substr(0, kMaxSkuBytes),
                             "a body prefix");
    CheckBase64(std::string_view(request.body).substr(0, 512));
    if (!request.body.empty()) (void)CheckParseObject(request.body, {"sku", "quantity"});

    const unsigned status = MirrorDispatch(request);
    if (status == 0 && request.method != "POST" && request.method != "PUT" &&
        request.method != "DELETE") {
      Fail("a " + request.method + " request reached a write");
    }
    if (!req.keep_alive()) return;
  }
}

}  // namespace
}  // namespace converge::cart::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  converge::cart::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
