// libFuzzer target: decoding untrusted bytes (TESTPLAN S2).
//
// The first input byte picks the type (an index into
// codec::testing::CodecTypes, modulo their number); the rest is decoded as
// that type. The fuzzer fails (aborts, so libFuzzer keeps the input) when
//   - decoding crashes, hangs, leaks or trips AddressSanitizer/UBSan;
//   - an input is rejected without a reason;
//   - an accepted input is not the canonical encoding of what it decoded
//     (Encode(decoded) != input), or decoding that encoding again gives
//     another value;
//   - a trusted decode (no canonical check) disagrees with the untrusted
//     one, or gives a state whose encoding does not decode;
//   - a decoded state breaks the lattice laws when joined with itself and
//     with a sample state of its type.
//
// Built with clang (-fsanitize=fuzzer,address,undefined) by
// crdt/codec/fuzz/run_fuzzer.sh, which the ctest tests converge.codec.fuzz
// (label fuzz) and converge.codec.fuzz_soak (labels fuzz, slow) run over the
// seed corpus in crdt/codec/fuzz-corpus/. To run it by hand:
//   crdt/codec/fuzz/run_fuzzer.sh <source dir> <work dir> <runs>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <tuple>

#include "crdt/codec/codec.h"
#include "crdt/codec/testing/sample_states.h"

namespace converge::codec {
namespace {

[[noreturn]] void Fail(const char* what, std::string_view type) {
  std::fprintf(stderr, "decode_fuzzer: %s (type %.*s)\n", what, static_cast<int>(type.size()),
               type.data());
  std::abort();
}

template <class T>
const T& SampleOf() {
  static const T sample = testing::Samples<T>(1).back().value;  // "all-deltas"
  return sample;
}

template <class T>
void Check(std::string_view bytes) {
  const std::string type = TypeCodec<T>::Descriptor();
  DecodeOptions options;
  options.limits.max_bytes = std::size_t{1} << 20;
  DecodeOptions trusted = options;
  trusted.trusted = true;

  const StatusOr<T> decoded = Decode<T>(bytes, options);
  const StatusOr<T> lenient = Decode<T>(bytes, trusted);
  if (lenient.ok()) {
    // Whatever a trusted decode accepts is a state: its encoding decodes.
    const StatusOr<T> again = Decode<T>(Encode(*lenient), options);
    if (!again.ok() || !(*again == *lenient)) Fail("a trusted decode gave a bad state", type);
  }
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) Fail("rejected without a reason", type);
    return;
  }
  if (!lenient.ok() || !(*lenient == *decoded)) Fail("trusted and untrusted decodes differ", type);
  const std::string encoded = Encode(*decoded);
  if (encoded != bytes) Fail("accepted bytes that are not the canonical encoding", type);
  const StatusOr<T> twice = Decode<T>(encoded, options);
  if (!twice.ok() || !(*twice == *decoded)) Fail("decoding the encoding again differs", type);

  // Laws that hold for any state: Join is idempotent, bottom its identity.
  T self = *decoded;
  self.Join(*decoded);
  if (!(self == *decoded)) Fail("join is not idempotent on a decoded state", type);
  T from_bottom;
  from_bottom.Join(*decoded);
  if (!(from_bottom == *decoded)) Fail("bottom is not the identity of join", type);
  // Joined with a state of an independent history, the result is an upper
  // bound of both; and the join commutes when the two agree on the write of
  // every dot they share, which CheckDeltaAgainst checks (a decoded state
  // can reuse the sample's dots for other writes: a forgery the decoder
  // cannot see).
  const T& sample = SampleOf<T>();
  T left = *decoded;
  left.Join(sample);
  T upper = left;
  upper.Join(*decoded);
  upper.Join(sample);
  if (!(upper == left)) Fail("a join is not an upper bound of its sides", type);
  if (CheckDeltaAgainst(sample, *decoded).ok()) {
    T right = sample;
    right.Join(*decoded);
    if (!(left == right)) Fail("join with a consistent sample is not commutative", type);
  }
  if (!Decode<T>(Encode(left), options).ok()) Fail("a join's encoding does not decode", type);
}

void Dispatch(std::size_t index, std::string_view bytes) {
  testing::ForEachCodecType([&]<class T>(std::size_t i) {
    if (i == index) Check<T>(bytes);
  });
}

}  // namespace
}  // namespace converge::codec

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::size_t kTypes = std::tuple_size_v<converge::codec::testing::CodecTypes>;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  converge::codec::Dispatch(data[0] % kTypes, bytes);
  return 0;
}
