// The TCP transport's own wire format, apart from the socket code so that it
// can be tested (and fuzzed) alone. docs/replication.md ("TCP transport")
// documents it.
//
//   frame  = length:u32 big-endian | payload[length]      length <= cap
//   hello  = the first frame each side sends after TLS (cap kMaxHelloBytes):
//            magic "CVGT" | version:u16 BE | flags:u16 BE (0)
//            | cluster_len:u8 | cluster | name_len:u8 | name
//            Later versions append fields; a reader ignores trailing bytes.

#ifndef CONVERGE_REPLICATION_INTERNAL_TCP_WIRE_H_
#define CONVERGE_REPLICATION_INTERNAL_TCP_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "replication/address.h"

namespace converge::replication::internal {

inline constexpr std::size_t kFrameHeaderBytes = 4;
inline constexpr std::string_view kHelloMagic = "CVGT";
inline constexpr std::uint16_t kHelloVersion = 1;
inline constexpr std::size_t kMaxHelloBytes = 1024;

// The 4-byte big-endian length prefix of a payload of `length` bytes.
std::string FrameHeader(std::uint32_t length);

// Splits a byte stream into frames, one call at a time, and refuses a length
// prefix above the cap before allocating anything for it. The payload grows
// with the bytes that actually arrived, so a peer that announces a large
// frame and sends little costs little.
class FrameDecoder {
 public:
  enum class Result {
    kNeedMore,   // `input` is used up, the frame is not complete yet
    kFrame,      // *frame holds one complete payload
    kOversized,  // the length prefix exceeds the cap: the stream is unusable
  };

  explicit FrameDecoder(std::size_t max_frame_bytes) : max_frame_bytes_(max_frame_bytes) {}

  // Consumes bytes from the front of `input`, stopping after one complete
  // frame. After kOversized the decoder must not be fed again.
  Result Feed(std::string_view& input, std::string* frame);

  // Bytes of an unfinished frame (prefix or payload) have been consumed.
  [[nodiscard]] bool partial() const { return header_filled_ > 0; }
  // How many frames have begun (their first byte arrived): a change tells
  // the caller that a new frame started, for its frame read timeout.
  [[nodiscard]] std::uint64_t frames_begun() const { return frames_begun_; }
  // The length announced by the prefix of the frame being read (after
  // kOversized: the refused length).
  [[nodiscard]] std::uint32_t announced_length() const { return length_; }
  [[nodiscard]] std::size_t max_frame_bytes() const { return max_frame_bytes_; }
  void set_max_frame_bytes(std::size_t max) { max_frame_bytes_ = max; }

 private:
  std::size_t max_frame_bytes_;
  unsigned char header_[kFrameHeaderBytes] = {};
  std::size_t header_filled_ = 0;  // 0..4; 4 while the payload is read
  std::uint32_t length_ = 0;
  std::string payload_;
  std::uint64_t frames_begun_ = 0;
};

struct Hello {
  std::uint16_t version = kHelloVersion;
  std::string cluster;
  std::string name;
};

// A node name or cluster name the hello can carry (replication/address.h).
inline bool ValidHelloName(std::string_view name) { return ValidNodeName(name); }

// The hello payload (without its length prefix). Names must be valid.
std::string EncodeHello(const Hello& hello);
// nullopt: not a hello (wrong magic, version 0, truncated, invalid names).
std::optional<Hello> DecodeHello(std::string_view payload);

using replication::HostPort;       // replication/address.h
using replication::ParseHostPort;  // replication/address.h

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_TCP_WIRE_H_
