// Status and StatusOr<T>: expected failures as values.
//
// Used at every boundary where bytes from outside (the network, the disk) or
// the operating system can fail us: decoding, storage, replication. A Status
// is ok or carries a code and a human-readable reason; both types are
// [[nodiscard]] so an ignored failure is a compiler warning.

#ifndef CONVERGE_CRDT_CODEC_STATUS_H_
#define CONVERGE_CRDT_CODEC_STATUS_H_

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace converge {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input: malformed bytes, illegal state, bad flag
  kNotFound,
  kCorruption,        // stored data that cannot be what we wrote
  kIoError,           // the OS or the disk failed
  kUnavailable,       // try again later (store closed, peer gone)
  kDeadlineExceeded,  // a timeout
  kFailedPrecondition,
  kResourceExhausted,  // a limit was reached
  kInternal,
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  [[nodiscard]] bool ok() const { return code_ == StatusCode::kOk; }
  [[nodiscard]] StatusCode code() const { return code_; }
  [[nodiscard]] const std::string& message() const { return message_; }
  [[nodiscard]] std::string ToString() const;

  // Returns a copy with `context: ` put in front of the message.
  [[nodiscard]] Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return {code_, std::string(context) + ": " + message_};
  }

  friend bool operator==(const Status&, const Status&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.ToString(); }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string message) {
  return {StatusCode::kInvalidArgument, std::move(message)};
}
inline Status Corruption(std::string message) {
  return {StatusCode::kCorruption, std::move(message)};
}
inline Status IoError(std::string message) { return {StatusCode::kIoError, std::move(message)}; }
inline Status ResourceExhausted(std::string message) {
  return {StatusCode::kResourceExhausted, std::move(message)};
}

inline std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kCorruption:
      return "CORRUPTION";
    case StatusCode::kIoError:
      return "IO_ERROR";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

inline std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

// A T or the Status saying why there is none.
template <class T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "StatusOr needs a value or a failed Status");
    if (status_.ok()) status_ = Status(StatusCode::kInternal, "StatusOr built from an ok Status");
  }

  [[nodiscard]] bool ok() const { return value_.has_value(); }
  [[nodiscard]] const Status& status() const { return status_; }

  // Preconditions: ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace converge

// Returns from the enclosing function when `expr` (a Status) failed.
#define CONVERGE_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::converge::Status converge_status_ = (expr);        \
    if (!converge_status_.ok()) return converge_status_; \
  } while (false)

#endif  // CONVERGE_CRDT_CODEC_STATUS_H_
