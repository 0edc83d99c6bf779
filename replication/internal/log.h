// The node's log: lines about what it could not do by itself (an entry it
// cannot apply, a state it cannot send), for NodeOptions::log. Rate-limited
// so that a peer sending garbage cannot flood it: at most kLinesPerMinute
// lines a minute; the rest are counted and summed up in one line later.

#ifndef CONVERGE_REPLICATION_INTERNAL_LOG_H_
#define CONVERGE_REPLICATION_INTERNAL_LOG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "replication/clock.h"

namespace converge::replication::internal {

class NodeLog {
 public:
  static constexpr int kLinesPerMinute = 20;

  NodeLog(std::function<void(const std::string&)> sink, const Clock& clock)
      : sink_(std::move(sink)), clock_(clock) {}

  void Warn(const std::string& line) {
    if (!sink_) return;
    const std::uint64_t now = clock_.NowMs();
    if (lines_ == 0 || now - window_start_ms_ >= 60'000) {
      if (suppressed_ > 0) {
        sink_("replication: " + std::to_string(suppressed_) +
              " more such lines were suppressed in the last minute");
      }
      window_start_ms_ = now;
      lines_ = 0;
      suppressed_ = 0;
    }
    if (lines_ >= kLinesPerMinute) {
      ++suppressed_;
      return;
    }
    ++lines_;
    sink_(line);
  }

 private:
  std::function<void(const std::string&)> sink_;
  const Clock& clock_;
  std::uint64_t window_start_ms_ = 0;
  int lines_ = 0;
  std::uint64_t suppressed_ = 0;
};

// `bytes` for a log line or a report: printable ASCII kept, the rest (and
// quotes and backslashes) as \xNN; the first `max_bytes` only, then "...".
inline std::string Printable(std::string_view bytes, std::size_t max_bytes = 64) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes.substr(0, max_bytes)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\' && c != '\'') {
      out += c;
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  if (bytes.size() > max_bytes) out += "...";
  return out;
}

}  // namespace converge::replication::internal

#endif  // CONVERGE_REPLICATION_INTERNAL_LOG_H_
