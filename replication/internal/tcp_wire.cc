// The TCP transport's wire format: see tcp_wire.h.

#include "replication/internal/tcp_wire.h"

#include <algorithm>
#include <charconv>

namespace converge::replication::internal {
namespace {

// Payload bytes reserved up front at most; the rest grows as bytes arrive.
constexpr std::size_t kInitialReserve = std::size_t{64} << 10;

void PutU16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

std::uint16_t GetU16(std::string_view in) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(in[0]) << 8) |
                                    static_cast<unsigned char>(in[1]));
}

}  // namespace

std::string FrameHeader(std::uint32_t length) {
  std::string out(kFrameHeaderBytes, '\0');
  for (std::size_t i = 0; i < kFrameHeaderBytes; ++i)
    out[i] = static_cast<char>((length >> (8 * (kFrameHeaderBytes - 1 - i))) & 0xff);
  return out;
}

FrameDecoder::Result FrameDecoder::Feed(std::string_view& input, std::string* frame) {
  if (header_filled_ < kFrameHeaderBytes) {
    if (input.empty()) return Result::kNeedMore;
    if (header_filled_ == 0) ++frames_begun_;
    const std::size_t take = std::min(kFrameHeaderBytes - header_filled_, input.size());
    for (std::size_t i = 0; i < take; ++i)
      header_[header_filled_ + i] = static_cast<unsigned char>(input[i]);
    header_filled_ += take;
    input.remove_prefix(take);
    if (header_filled_ < kFrameHeaderBytes) return Result::kNeedMore;
    length_ = (std::uint32_t{header_[0]} << 24) | (std::uint32_t{header_[1]} << 16) |
              (std::uint32_t{header_[2]} << 8) | std::uint32_t{header_[3]};
    // The cap is checked before a single byte is reserved for the payload.
    if (length_ > max_frame_bytes_) return Result::kOversized;
    payload_.clear();
    payload_.reserve(std::min<std::size_t>(length_, kInitialReserve));
  }
  const std::size_t take = std::min<std::size_t>(length_ - payload_.size(), input.size());
  payload_.append(input.substr(0, take));
  input.remove_prefix(take);
  if (payload_.size() < length_) return Result::kNeedMore;
  *frame = std::move(payload_);
  payload_ = std::string();
  header_filled_ = 0;
  length_ = 0;
  return Result::kFrame;
}

std::string EncodeHello(const Hello& hello) {
  std::string out(kHelloMagic);
  PutU16(out, hello.version);
  PutU16(out, 0);  // flags: none defined
  out.push_back(static_cast<char>(hello.cluster.size()));
  out += hello.cluster;
  out.push_back(static_cast<char>(hello.name.size()));
  out += hello.name;
  return out;
}

std::optional<Hello> DecodeHello(std::string_view payload) {
  if (payload.size() > kMaxHelloBytes || !payload.starts_with(kHelloMagic)) return std::nullopt;
  payload.remove_prefix(kHelloMagic.size());
  if (payload.size() < 4) return std::nullopt;
  Hello hello;
  hello.version = GetU16(payload);
  payload.remove_prefix(4);  // version, flags (ignored: none defined yet)
  if (hello.version == 0) return std::nullopt;
  for (std::string* field : {&hello.cluster, &hello.name}) {
    if (payload.empty()) return std::nullopt;
    const std::size_t length = static_cast<unsigned char>(payload[0]);
    payload.remove_prefix(1);
    if (payload.size() < length) return std::nullopt;
    *field = std::string(payload.substr(0, length));
    payload.remove_prefix(length);
    if (!ValidHelloName(*field)) return std::nullopt;
  }
  return hello;  // trailing bytes: fields of a later version
}

}  // namespace converge::replication::internal

namespace converge::replication {

bool ValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::optional<HostPort> ParseHostPort(std::string_view address) {
  HostPort out;
  std::string_view port;
  if (address.starts_with('[')) {
    const std::size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return std::nullopt;
    out.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    out.host = std::string(address.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return std::nullopt;  // v6 needs brackets
    port = address.substr(colon + 1);
  }
  if (out.host.empty() || port.empty()) return std::nullopt;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) return std::nullopt;
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

}  // namespace converge::replication
