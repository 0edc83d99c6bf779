#include "examples/cart/coherence/wire.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "examples/cart/coherence/text.h"

namespace converge::cart::coherence {

namespace {

using nlohmann::json;

// Refuses nesting deeper than kMaxJsonDepth before the parser sees the body
// (the parser and the destructor of a json value recurse per level).
bool DepthWithin(std::string_view body) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

StatusOr<json> ParseObject(std::string_view body) {
  if (!DepthWithin(body)) return InvalidArgument("JSON nested deeper than the contract allows");
  json value = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return InvalidArgument("the body is not JSON");
  if (!value.is_object()) return InvalidArgument("the body is not a JSON object");
  return value;
}

// A string field of at most `max` bytes; `required` or nullopt when absent.
StatusOr<std::optional<std::string>> StringField(const json& object, const char* name,
                                                 std::size_t max, bool required) {
  const auto it = object.find(name);
  if (it == object.end() || (!required && it->is_null())) {
    if (required) return InvalidArgument(std::string("missing field \"") + name + "\"");
    return std::optional<std::string>();
  }
  if (!it->is_string())
    return InvalidArgument(std::string("field \"") + name + "\" is not a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max) return InvalidArgument(std::string("field \"") + name + "\" is too long");
  return std::optional<std::string>(s);
}

StatusOr<std::uint64_t> DigestField(const json& object, const char* name) {
  StatusOr<std::optional<std::string>> text = StringField(object, name, 16, true);
  if (!text.ok()) return text.status();
  if ((*text)->size() != 16) {
    return InvalidArgument(std::string("field \"") + name + "\" is not 16 hex digits");
  }
  const std::optional<std::uint64_t> digest = ParseHex64(**text);
  if (!digest) return InvalidArgument(std::string("field \"") + name + "\" is not 16 hex digits");
  return *digest;
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (const char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7e) return false;
  }
  return true;
}

}  // namespace

StatusOr<HostPort> ParseNodeAddress(std::string_view text) {
  const std::string shown = Printable(text, 200);
  if (text.starts_with("https://")) {
    return InvalidArgument("'" + shown + "': only plain http:// is supported");
  }
  if (text.starts_with("http://")) text.remove_prefix(7);
  if (text.ends_with("/")) text.remove_suffix(1);
  if (text.find('/') != std::string_view::npos || text.find('?') != std::string_view::npos) {
    return InvalidArgument("'" + shown + "': give http://HOST:PORT without a path");
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgument("'" + shown + "': expected HOST:PORT");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return InvalidArgument("'" + shown + "': bad bracketed IPv6 host");
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return InvalidArgument("'" + shown + "': put an IPv6 host in brackets");
  }
  for (const char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '_';
    if (!ok) return InvalidArgument("'" + shown + "': bad character in the host");
  }
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || port_text.size() > 5) {
    return InvalidArgument("'" + shown + "': port must be 1-65535");
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

std::string ToString(const HostPort& a) {
  if (a.host.find(':') != std::string::npos) return "[" + a.host + "]:" + std::to_string(a.port);
  return a.host + ":" + std::to_string(a.port);
}

StatusOr<ClusterInfo> ParseCluster(std::string_view body) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& object = *parsed;
  ClusterInfo info;
  StatusOr<std::optional<std::string>> node = StringField(object, "node", kMaxNameBytes, true);
  if (!node.ok()) return node.status();
  if (!ValidName(**node)) return InvalidArgument("field \"node\" is not a printable name");
  info.node = std::move(**node);
  // The replica id is optional for the check (without it, dots are not
  // checked against their issuer); a malformed one is refused.
  StatusOr<std::optional<std::string>> replica = StringField(object, "replica", 64, false);
  if (!replica.ok()) return replica.status();
  if (*replica) {
    info.replica = ParseHex64(**replica);
    if (!info.replica) return InvalidArgument("field \"replica\" is not 1-16 hex digits");
  }
  const auto members = object.find("members");
  if (members != object.end()) {
    if (!members->is_array()) return InvalidArgument("field \"members\" is not an array");
    if (members->size() > kMaxMembers) return InvalidArgument("too many members");
    for (const json& m : *members) {
      if (!m.is_object()) return InvalidArgument("a member is not an object");
      ClusterMember member;
      StatusOr<std::optional<std::string>> name = StringField(m, "name", kMaxNameBytes, true);
      if (!name.ok()) return name.status().WithContext("member");
      if (!ValidName(**name)) return InvalidArgument("member name is not a printable name");
      member.name = std::move(**name);
      StatusOr<std::optional<std::string>> http = StringField(m, "http", 300, false);
      if (!http.ok()) return http.status().WithContext("member " + member.name);
      if (*http) member.http = std::move(**http);
      StatusOr<std::optional<std::string>> state = StringField(m, "state", 32, false);
      if (!state.ok()) return state.status().WithContext("member " + member.name);
      if (*state) member.state = std::move(**state);
      info.members.push_back(std::move(member));
    }
  }
  return info;
}

StatusOr<KeyPage> ParseKeyPage(std::string_view body, std::string_view prefix,
                               std::string_view after, std::size_t limit) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& object = *parsed;
  const auto keys = object.find("keys");
  if (keys == object.end() || !keys->is_array()) {
    return InvalidArgument("field \"keys\" is missing or not an array");
  }
  if (keys->size() > limit) {
    return InvalidArgument("more keys (" + std::to_string(keys->size()) + ") than the limit " +
                           std::to_string(limit));
  }
  KeyPage page;
  page.keys.reserve(keys->size());
  std::string_view previous = after;
  for (const json& k : *keys) {
    if (!k.is_object()) return InvalidArgument("a key entry is not an object");
    StatusOr<std::optional<std::string>> key = StringField(k, "key", kMaxKeyBytes, true);
    if (!key.ok()) return key.status();
    StatusOr<std::uint64_t> digest = DigestField(k, "digest");
    if (!digest.ok()) return digest.status().WithContext("key '" + Printable(**key) + "'");
    if (!std::string_view(**key).starts_with(prefix)) {
      return InvalidArgument("key '" + Printable(**key) + "' does not start with the prefix");
    }
    if (!previous.empty() && !(std::string_view(**key) > previous)) {
      return InvalidArgument("key '" + Printable(**key) +
                             "' is not after the previous one (keys must come in byte order)");
    }
    page.keys.push_back(KeyDigest{std::move(**key), *digest});
    previous = page.keys.back().key;
  }
  StatusOr<std::optional<std::string>> next = StringField(object, "next", kMaxKeyBytes, false);
  if (!next.ok()) return next.status();
  page.next = std::move(*next);
  return page;
}

StatusOr<StateAnswer> ParseState(std::string_view body, std::string_view key,
                                 std::size_t max_state_bytes) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& object = *parsed;
  StatusOr<std::optional<std::string>> got = StringField(object, "key", kMaxKeyBytes, true);
  if (!got.ok()) return got.status();
  if (**got != key) return InvalidArgument("the answer is about key '" + Printable(**got) + "'");
  StatusOr<std::uint64_t> digest = DigestField(object, "digest");
  if (!digest.ok()) return digest.status();
  StatusOr<std::optional<std::string>> state =
      StringField(object, "state", (max_state_bytes / 3 + 1) * 4, true);
  if (!state.ok()) return state.status();
  std::optional<std::string> bytes = Base64Decode(**state, max_state_bytes);
  if (!bytes) return InvalidArgument("field \"state\" is not strict base64 (or too large)");
  return StateAnswer{std::move(*bytes), *digest};
}

StatusOr<MergeAnswer> ParseMerge(std::string_view body) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return parsed.status();
  const json& object = *parsed;
  MergeAnswer answer;
  const auto changed = object.find("changed");
  if (changed == object.end() || !changed->is_boolean()) {
    return InvalidArgument("field \"changed\" is missing or not a boolean");
  }
  answer.changed = changed->get<bool>();
  // cart-server answers "digest": "" when the key is absent after the merge.
  const auto digest_field = object.find("digest");
  if (digest_field != object.end() && !digest_field->is_null() &&
      !(digest_field->is_string() && digest_field->get_ref<const std::string&>().empty())) {
    StatusOr<std::uint64_t> digest = DigestField(object, "digest");
    if (!digest.ok()) return digest.status();
    answer.digest = *digest;
  }
  return answer;
}

std::string MergeBody(std::string_view key, std::string_view state) {
  return json{{"key", std::string(key)}, {"state", Base64Encode(state)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

std::string ErrorOf(std::string_view body) {
  StatusOr<json> parsed = ParseObject(body);
  if (!parsed.ok()) return {};
  StatusOr<std::optional<std::string>> error = StringField(*parsed, "error", 4096, false);
  if (!error.ok() || !*error) return {};
  return Printable(**error, 300);
}

std::string QueryEscape(std::string_view value) {
  static constexpr std::string_view kHex = "0123456789ABCDEF";
  std::string out;
  for (const char c : value) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || c == ':';
    if (keep) {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 0xfu];
    }
  }
  return out;
}

}  // namespace converge::cart::coherence
