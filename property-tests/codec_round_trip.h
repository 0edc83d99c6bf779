// The codec round trip for the law suite's EncodingRoundTrips property: a
// CrdtTraits<T> that derives from CodecRoundTrip<T> has
// `static std::optional<T> RoundTrip(const T&)`, which encodes with
// converge::codec::Encode and decodes the bytes as untrusted input
// (Decode<T>), so every state and delta a random history reaches must pass
// every check the codec makes on bytes from a peer, canonical form included.
//
// For types the codec knows (crdt/codec/codec.h: the converge types, with
// element, key and value types that have a ValueCodec). Needs converge::codec.

#ifndef CONVERGE_PROPERTY_TESTS_CODEC_ROUND_TRIP_H_
#define CONVERGE_PROPERTY_TESTS_CODEC_ROUND_TRIP_H_

// clang-format off
#include <gtest/gtest.h>  // before rapidcheck/gtest.h, which needs it
#include <rapidcheck.h>
// clang-format on

#include <optional>
#include <string>
#include <utility>

#include "crdt/codec/codec.h"

namespace converge::testing {

template <class T>
struct CodecRoundTrip {
  // Encodes `value` and decodes it again; nullopt (with the reason in the
  // property's log) when decoding refuses the bytes Encode wrote.
  static std::optional<T> RoundTrip(const T& value) {
    const std::string bytes = codec::Encode(value);
    StatusOr<T> decoded = codec::Decode<T>(bytes);
    if (!decoded.ok()) {
      RC_LOG() << "Decode(Encode(value)) failed: " << decoded.status() << "\n";
      return std::nullopt;
    }
    return std::move(decoded).value();
  }
};

}  // namespace converge::testing

#endif  // CONVERGE_PROPERTY_TESTS_CODEC_ROUND_TRIP_H_
