// Cart contexts: see cart_context.h.

#include "examples/cart/server/cart_context.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "examples/cart/server/request_parsing.h"

namespace converge::cart {
namespace {

constexpr std::uint8_t kTokenVersion = 1;
constexpr std::size_t kKeyIdBytes = 4;
constexpr std::size_t kTagBytes = 16;
constexpr std::size_t kKeyRecordBytes = kKeyIdBytes + 32;
// Auxiliary keys: c/self -> this member's key; c/k/<id hex><fingerprint hex>
// -> a key learned from another member. (Record: id u32be + secret.)
constexpr std::string_view kOwnKeyAux = "c/self";
constexpr std::string_view kLearnedKeyPrefix = "c/k/";

std::string Record(const ContextKey& key) {
  std::string out;
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((key.id >> (8 * i)) & 0xff));
  out.append(reinterpret_cast<const char*>(key.secret.data()), key.secret.size());
  return out;
}

std::optional<ContextKey> FromRecord(std::string_view record) {
  if (record.size() != kKeyRecordBytes) return std::nullopt;
  ContextKey key;
  for (std::size_t i = 0; i < kKeyIdBytes; ++i) {
    key.id = (key.id << 8) | static_cast<unsigned char>(record[i]);
  }
  std::memcpy(key.secret.data(), record.data() + kKeyIdBytes, key.secret.size());
  return key;
}

std::string Hex(std::uint64_t v, int digits) {
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) {
    out[static_cast<std::size_t>(i)] = "0123456789abcdef"[v & 0xf];
  }
  return out;
}

std::string LearnedAuxKey(const ContextKey& key) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(key.secret.data(), key.secret.size(), digest);
  std::uint64_t fingerprint = 0;
  for (int i = 0; i < 8; ++i) fingerprint = (fingerprint << 8) | digest[i];
  return std::string(kLearnedKeyPrefix) + Hex(key.id, 8) + Hex(fingerprint, 16);
}

// The tag of a token's leading bytes (version, key id, contexts) for a cart.
std::array<unsigned char, kTagBytes> Tag(const ContextKey& key, std::string_view cart_id,
                                         std::string_view sealed) {
  std::string message = "converge cart context";
  message.push_back('\0');
  message += cart_id;
  message.push_back('\0');
  message += sealed;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
  std::array<unsigned char, kTagBytes> tag{};
  std::memcpy(tag.data(), mac, tag.size());
  return tag;
}

codec::ContextLimits TokenLimits() {
  codec::ContextLimits limits;
  limits.max_bytes = kMaxContextChars;
  limits.max_replicas = 256;
  limits.max_entries = kMaxLines;
  limits.max_dots = 1 << 16;
  return limits;
}

Status Refused(std::string why) { return InvalidArgument("Cart-Context: " + std::move(why)); }

}  // namespace

StatusOr<ContextKeyring> ContextKeyring::Open(storage::Store& store) {
  ContextKeyring ring;
  StatusOr<std::optional<std::string>> own = store.GetAux(kOwnKeyAux);
  if (!own.ok()) return own.status();
  if (own->has_value()) {
    std::optional<ContextKey> key = FromRecord(**own);
    if (!key) return Corruption("the stored cart context key is malformed");
    ring.keys_.push_back(*key);
  } else {
    ContextKey key;
    if (RAND_bytes(key.secret.data(), static_cast<int>(key.secret.size())) != 1 ||
        RAND_bytes(reinterpret_cast<unsigned char*>(&key.id), sizeof key.id) != 1) {
      return Status(StatusCode::kInternal, "no randomness for a cart context key");
    }
    storage::WriteBatch batch;
    batch.PutAux(std::string(kOwnKeyAux), Record(key));
    if (Status s = store.Write(batch); !s.ok()) return s;
    ring.keys_.push_back(key);
  }
  std::string end(kLearnedKeyPrefix);
  end.back() = static_cast<char>(end.back() + 1);
  Status bad;
  Status scan = store.ScanAux(kLearnedKeyPrefix, end, [&](std::string_view, std::string_view v) {
    std::optional<ContextKey> key = FromRecord(v);
    if (!key) {
      bad = Corruption("a stored cart context key of another member is malformed");
      return false;
    }
    if (std::find(ring.keys_.begin(), ring.keys_.end(), *key) == ring.keys_.end()) {
      ring.keys_.push_back(*key);
    }
    return true;
  });
  if (!scan.ok()) return scan;
  if (!bad.ok()) return bad;
  return ring;
}

std::string ContextKeyring::Advertised() const {
  return Hex(own().id, 8) + "." +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(own().secret.data()),
                                       own().secret.size()));
}

StatusOr<bool> ContextKeyring::Learn(std::string_view advertised, storage::Store& store) {
  const std::size_t dot = advertised.find('.');
  if (dot != 8) return InvalidArgument("a context key is '<8 hex digits>.<base64>'");
  ContextKey key;
  for (const char c : advertised.substr(0, 8)) {
    const char* digits = "0123456789abcdef";
    const char* at = std::strchr(digits, c);
    if (c == '\0' || at == nullptr) return InvalidArgument("a context key id is 8 hex digits");
    key.id = (key.id << 4) | static_cast<std::uint32_t>(at - digits);
  }
  const std::optional<std::string> secret = Base64Decode(advertised.substr(9));
  if (!secret || secret->size() != key.secret.size()) {
    return InvalidArgument("a context key secret is 32 bytes in base64");
  }
  std::memcpy(key.secret.data(), secret->data(), key.secret.size());
  if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) return false;
  storage::WriteBatch batch;
  batch.PutAux(LearnedAuxKey(key), Record(key));
  if (Status s = store.Write(batch); !s.ok()) return s;
  keys_.push_back(key);
  return true;
}

std::vector<const ContextKey*> ContextKeyring::Find(std::uint32_t id) const {
  std::vector<const ContextKey*> found;
  for (const ContextKey& k : keys_) {
    if (k.id == id) found.push_back(&k);
  }
  return found;
}

std::uint64_t LineKey(std::string_view sku) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(sku.data()), sku.size(), digest);
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | digest[i];
  return key;
}

std::optional<std::string> SealContext(const ContextKey& key, std::string_view cart_id,
                                       const CartState& cart) {
  std::vector<codec::KeyedContext> lines;
  lines.reserve(cart.size());
  for (const auto& entry : cart.store().entries()) {
    codec::KeyedContext line{LineKey(entry.key), {}};
    entry.store.ForEachDot([&](const crdt::Dot& d) { line.context.Insert(d); });
    lines.push_back(std::move(line));
  }
  std::string sealed;
  sealed.push_back(static_cast<char>(kTokenVersion));
  for (int i = 3; i >= 0; --i) sealed.push_back(static_cast<char>((key.id >> (8 * i)) & 0xff));
  try {
    sealed += codec::EncodeContexts(lines);
  } catch (const std::invalid_argument&) {
    return std::nullopt;  // two SKUs with one 64-bit hash: no context for this cart
  }
  const std::array<unsigned char, kTagBytes> tag = Tag(key, cart_id, sealed);
  sealed.append(reinterpret_cast<const char*>(tag.data()), tag.size());
  std::string token = Base64Encode(sealed);
  if (token.size() > kMaxContextChars) return std::nullopt;
  return token;
}

crdt::CausalContext SeenCart::Line(std::string_view sku) const {
  const std::uint64_t key = LineKey(sku);
  const auto it = std::lower_bound(
      lines_.begin(), lines_.end(), key,
      [](const codec::KeyedContext& line, std::uint64_t k) { return line.key < k; });
  return it != lines_.end() && it->key == key ? it->context : crdt::CausalContext{};
}

crdt::CausalContext SeenCart::All() const {
  crdt::CausalContext all;
  for (const codec::KeyedContext& line : lines_) all.Join(line.context);
  return all;
}

StatusOr<SeenCart> OpenContext(const ContextKeyring& keyring, std::string_view cart_id,
                               std::string_view token) {
  if (token.size() > kMaxContextChars) {
    return Refused("longer than " + std::to_string(kMaxContextChars) + " characters");
  }
  const std::optional<std::string> bytes = Base64Decode(token);
  if (!bytes) return Refused("not canonical base64");
  if (bytes->size() < 1 + kKeyIdBytes + kTagBytes) return Refused("too short to be a context");
  if (static_cast<unsigned char>((*bytes)[0]) != kTokenVersion) {
    return Refused("version " + std::to_string(static_cast<unsigned char>((*bytes)[0])) +
                   " is not one this server reads");
  }
  std::uint32_t id = 0;
  for (std::size_t i = 1; i <= kKeyIdBytes; ++i) {
    id = (id << 8) | static_cast<unsigned char>((*bytes)[i]);
  }
  const std::string_view sealed = std::string_view(*bytes).substr(0, bytes->size() - kTagBytes);
  const std::string_view tag = std::string_view(*bytes).substr(bytes->size() - kTagBytes);
  const std::vector<const ContextKey*> keys = keyring.Find(id);
  if (keys.empty()) {
    return Status(
        StatusCode::kNotFound,
        "Cart-Context: not sealed by any member of this cluster (unknown key " + Hex(id, 8) + ")");
  }
  bool authentic = false;
  for (const ContextKey* key : keys) {
    const std::array<unsigned char, kTagBytes> expected = Tag(*key, cart_id, sealed);
    authentic = authentic || CRYPTO_memcmp(expected.data(), tag.data(), kTagBytes) == 0;
  }
  if (!authentic) {
    return Refused("altered, or sealed for another cart (its seal does not match)");
  }
  StatusOr<std::vector<codec::KeyedContext>> lines =
      codec::DecodeContexts(sealed.substr(1 + kKeyIdBytes), TokenLimits());
  if (!lines.ok()) return Refused(lines.status().message());
  return SeenCart(std::move(*lines));
}

}  // namespace converge::cart
