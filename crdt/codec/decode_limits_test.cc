// Resource limits of decoding untrusted bytes (TESTPLAN S3): oversized
// segment tables are rejected before anything is allocated, multi-segment
// messages are refused, and messages whose pointers make the reader visit
// more words than they hold (amplification), nest deeper than the schema or
// point outside the message are rejected, quickly and in bounded memory.
//
// The messages are crafted word by word (Cap'n Proto's wire format:
// capnproto.org/encoding.html) and packed by the small packer below, so the
// tests do not depend on what the Cap'n Proto builder is willing to write.
//
// This file replaces the global operator new of the test binary with one
// that records the largest single allocation while a test asks it to: that
// is how the tests see that a claimed segment of gigabytes is never
// allocated (libkj allocates message segments with operator new).

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "crdt/codec/codec.h"

namespace {

std::atomic<bool> g_tracking{false};
std::atomic<std::size_t> g_largest{0};

void NoteAllocation(std::size_t n) {
  if (!g_tracking.load(std::memory_order_relaxed)) return;
  std::size_t current = g_largest.load(std::memory_order_relaxed);
  while (n > current && !g_largest.compare_exchange_weak(current, n)) {
  }
}

void* Allocate(std::size_t n) {
  NoteAllocation(n);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace

// Every replaceable form that pairs with free(), so that AddressSanitizer
// sees matching allocation and deallocation functions (the aligned forms are
// left to the library: they pair with each other).
void* operator new(std::size_t n) { return Allocate(n); }
void* operator new[](std::size_t n) { return Allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  NoteAllocation(n);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  NoteAllocation(n);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace converge::codec {
namespace {

using StringSet = crdt::OrSet<std::string>;

// What one decode cost: its result, the largest single allocation, the
// growth of the peak resident set and the time taken.
struct Measured {
  StatusOr<StringSet> result = InvalidArgument("not run");
  std::size_t largest_allocation = 0;
  long peak_rss_growth_kib = 0;
  double seconds = 0;
};

long PeakRssKib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

Measured MeasureDecode(const std::string& bytes, const DecodeOptions& options = {}) {
  Measured m;
  const long rss_before = PeakRssKib();
  g_largest = 0;
  g_tracking = true;
  const auto start = std::chrono::steady_clock::now();
  m.result = Decode<StringSet>(bytes, options);
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  g_tracking = false;
  m.largest_allocation = g_largest;
  m.peak_rss_growth_kib = PeakRssKib() - rss_before;
  return m;
}

void ExpectRejected(const Measured& m, StatusCode code, const std::string& reason) {
  ASSERT_FALSE(m.result.ok());
  EXPECT_EQ(m.result.status().code(), code) << m.result.status();
  EXPECT_NE(m.result.status().message().find(reason), std::string::npos)
      << "expected \"" << reason << "\" in: " << m.result.status();
}

// ---------------------------------------------------------------------------
// Crafting messages.

using Words = std::vector<std::uint64_t>;

// Packs words (segment table included) as capnp/serialize-packed.h does,
// except that a literal word (tag 0xff) is never followed by a raw run.
std::string Pack(const Words& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size();) {
    const std::uint64_t w = words[i++];
    unsigned tag = 0;
    std::string present;
    for (unsigned b = 0; b < 8; ++b) {
      const auto byte = static_cast<unsigned char>(w >> (8 * b));
      if (byte != 0) {
        tag |= 1u << b;
        present += static_cast<char>(byte);
      }
    }
    out += static_cast<char>(tag);
    out += present;
    if (tag == 0) {
      std::size_t run = 0;
      while (run < 255 && i < words.size() && words[i] == 0) {
        ++run;
        ++i;
      }
      out += static_cast<char>(run);
    } else if (tag == 0xff) {
      out += '\0';
    }
  }
  return out;
}

// Segment table of a single-segment message of `size` words.
std::uint64_t SegmentTable(std::uint32_t segments, std::uint32_t first_size) {
  return std::uint64_t{segments - 1} | (std::uint64_t{first_size} << 32);
}

std::uint64_t StructPointer(std::int32_t offset, std::uint16_t data_words, std::uint16_t pointers) {
  return (std::uint64_t{static_cast<std::uint32_t>(offset) << 2}) |
         (std::uint64_t{data_words} << 32) | (std::uint64_t{pointers} << 48);
}

// Element sizes of list pointers.
constexpr unsigned kByte = 2;
constexpr unsigned kEightBytes = 5;
constexpr unsigned kPointer = 6;
constexpr unsigned kComposite = 7;

std::uint64_t ListPointer(std::int32_t offset, unsigned element_size, std::uint32_t count) {
  return (std::uint64_t{static_cast<std::uint32_t>(offset) << 2} | 1) |
         (std::uint64_t{element_size} << 32) | (std::uint64_t{count} << 35);
}

// A State root (one data word, `pointers` pointer slots) at word 1 of the
// segment; its pointer slot k is word 2 + k.
constexpr std::size_t kSlot0 = 2;
Words StateRoot(std::uint16_t pointers = 14) {
  Words w = {StructPointer(0, 1, pointers), 1u | (std::uint64_t{TypeIdOf<StringSet>()} << 32)};
  w.resize(kSlot0 + pointers, 0);
  return w;
}

// The offset a pointer at word `at` needs to reach word `target`.
std::int32_t OffsetTo(std::size_t at, std::size_t target) {
  return static_cast<std::int32_t>(static_cast<std::int64_t>(target) -
                                   static_cast<std::int64_t>(at) - 1);
}

// Packs a single-segment message.
std::string Message(const Words& segment) {
  Words words = {SegmentTable(1, static_cast<std::uint32_t>(segment.size()))};
  words.insert(words.end(), segment.begin(), segment.end());
  return Pack(words);
}

// The packer and the word helpers agree with Encode: the canonical
// encoding of an empty set is a State with one data word and no pointers.
TEST(PackerTest, CraftsWhatEncodeWrites) { EXPECT_EQ(Message(StateRoot(0)), Encode(StringSet{})); }

// ---------------------------------------------------------------------------
// The segment table.

TEST(DecodeLimitsTest, HugeSegmentClaimIsRejectedBeforeAllocation) {
  // 16 bytes claiming a segment of 2^32 - 1 words (32 GiB).
  const std::string bytes =
      Pack({SegmentTable(1, std::numeric_limits<std::uint32_t>::max()), StructPointer(0, 1, 0)});
  EXPECT_LE(bytes.size(), 16u);
  const Measured m = MeasureDecode(bytes);
  ExpectRejected(m, StatusCode::kResourceExhausted,
                 "declares 4294967296 words; the limit is 67108864");
  EXPECT_LT(m.largest_allocation, std::size_t{64} << 10);
  EXPECT_LT(m.peak_rss_growth_kib, 16 * 1024);
  EXPECT_LT(m.seconds, 1.0);
  std::cout << "[ figure   ] " << bytes.size() << "-byte input claiming 32 GiB rejected in "
            << m.seconds * 1e6 << " us; largest allocation " << m.largest_allocation
            << " bytes, peak RSS growth " << m.peak_rss_growth_kib << " KiB\n";

  // Even with no word limit at all, the claim must be backed by the input.
  DecodeOptions unlimited;
  unlimited.limits.max_words = std::numeric_limits<std::uint64_t>::max();
  const Measured u = MeasureDecode(bytes, unlimited);
  ExpectRejected(u, StatusCode::kInvalidArgument,
                 "truncated: its segment table declares 4294967296 words, the input holds 2");
  EXPECT_LT(u.largest_allocation, std::size_t{64} << 10);
  EXPECT_LT(u.seconds, 1.0);
}

TEST(DecodeLimitsTest, ClaimBackedByZeroRunsIsBoundedByMaxWords) {
  // Packed zeros expand 128 times (2 bytes for 256 words): 16 KiB of input
  // can fill a 1 Mi-word (8 MiB) segment. max_words bounds that.
  constexpr std::uint32_t kWords = 1u << 20;
  Words words = {SegmentTable(1, kWords)};
  words.resize(1 + kWords, 0);
  const std::string bytes = Pack(words);
  EXPECT_LT(bytes.size(), 10'000u);

  DecodeOptions tight;
  tight.limits.max_words = kWords / 2;
  const Measured over = MeasureDecode(bytes, tight);
  ExpectRejected(over, StatusCode::kResourceExhausted, "the limit is 524288");
  EXPECT_LT(over.largest_allocation, std::size_t{64} << 10);

  // Within the limit it is read (and is no state: its root pointer is
  // null, so it has version 0); what was allocated is the segment itself.
  const Measured within = MeasureDecode(bytes);
  ExpectRejected(within, StatusCode::kInvalidArgument, "format version 0");
  EXPECT_GE(within.largest_allocation, std::size_t{kWords} * 8);
  EXPECT_LT(within.largest_allocation, std::size_t{kWords} * 8 + 4096);
}

TEST(DecodeLimitsTest, InputLargerThanMaxBytesIsNotParsed) {
  DecodeOptions small;
  small.limits.max_bytes = 1024;
  const std::string bytes(1025, '\x01');
  const Measured m = MeasureDecode(bytes, small);
  ExpectRejected(m, StatusCode::kResourceExhausted,
                 "encoded state of 1025 bytes exceeds the limit of 1024");
  EXPECT_LT(m.largest_allocation, 4096u);
}

TEST(DecodeLimitsTest, OnlySingleSegmentMessages) {
  // Two segments of one word each (segment table: count, sizes, padding).
  const Words two = {SegmentTable(2, 1), 1, StructPointer(0, 0, 0), 0};
  ExpectRejected(MeasureDecode(Pack(two)), StatusCode::kInvalidArgument,
                 "encoded state has 2 segments; a state is always written as one");
  const Words many = {SegmentTable(1000, 1)};
  ExpectRejected(MeasureDecode(Pack(many)), StatusCode::kInvalidArgument, "has 1000 segments");
  // The segment count wraps in 32 bits: 2^32 segments, not 0.
  const Words wrapped = {std::uint64_t{0xffffffffu}};
  ExpectRejected(MeasureDecode(Pack(wrapped)), StatusCode::kInvalidArgument,
                 "has 4294967296 segments");
}

TEST(DecodeLimitsTest, MalformedPackingIsRejected) {
  // A tag announcing bytes that are not there.
  ExpectRejected(MeasureDecode(std::string("\x10", 1)), StatusCode::kInvalidArgument,
                 "truncated inside a word");
  ExpectRejected(MeasureDecode(std::string("\x00", 1)), StatusCode::kInvalidArgument,
                 "truncated inside a run of zero words");
  ExpectRejected(MeasureDecode(std::string("\xff\x01\x02\x03\x04\x05\x06\x07\x08", 9)),
                 StatusCode::kInvalidArgument, "truncated before a literal run");
  // A zero run reaching past the declared end of the message.
  ExpectRejected(MeasureDecode(std::string("\x10\x01\x00\x05", 4)), StatusCode::kInvalidArgument,
                 "extends past the end");
}

// ---------------------------------------------------------------------------
// Pointers.

// Many pointers to one large list: each pointer is cheap to send, each
// visit of the list counts. The traversal limit is the message's own size.
TEST(DecodeLimitsTest, PointerAmplificationIsRejected) {
  constexpr std::size_t kPointers = 10'000;
  constexpr std::size_t kBlobWords = 1'000;
  Words w = StateRoot();
  const std::size_t keys_slot = kSlot0 + 6;
  const std::size_t list = w.size();
  w[keys_slot] = ListPointer(OffsetTo(keys_slot, list), kPointer, kPointers);
  const std::size_t blob = list + kPointers;
  for (std::size_t i = 0; i < kPointers; ++i) {
    w.push_back(ListPointer(OffsetTo(list + i, blob), kByte, kBlobWords * 8));
  }
  w.resize(blob + kBlobWords, 0x4141414141414141ULL);
  const std::string bytes = Message(w);
  const Measured m = MeasureDecode(bytes);
  ExpectRejected(m, StatusCode::kResourceExhausted, "traversal limit");
  EXPECT_LT(m.seconds, 1.0);
  // Without the amplification the reader would have built 10,000 copies of
  // an 8,000-byte key (80 MB).
  EXPECT_LT(m.largest_allocation, std::size_t{1} << 20);
  std::cout << "[ figure   ] " << bytes.size() << "-byte amplification message rejected in "
            << m.seconds * 1e3 << " ms\n";
}

// A list of zero-sized structs costs nothing per element on the wire; read
// as List(UInt64) it would be 2^29 elements.
TEST(DecodeLimitsTest, ZeroSizedElementsAreRejected) {
  Words w = StateRoot();
  const std::size_t tag = w.size();
  w[kSlot0] = ListPointer(OffsetTo(kSlot0, tag), kComposite, 0);
  w.push_back(StructPointer((1 << 29) - 1, 0, 0));  // tag word: element count, size 0
  const Measured m = MeasureDecode(Message(w));
  ExpectRejected(m, StatusCode::kResourceExhausted, "traversal limit");
  EXPECT_LT(m.seconds, 1.0);
  EXPECT_LT(m.largest_allocation, std::size_t{1} << 20);
}

// A chain of 100,000 nested structs where the schema has a list: the reader
// never follows it.
TEST(DecodeLimitsTest, DeepNestingIsNotFollowed) {
  constexpr std::size_t kDepth = 100'000;
  Words w = StateRoot();
  const std::size_t keys_slot = kSlot0 + 6;
  const std::size_t list = w.size();
  w[keys_slot] = ListPointer(OffsetTo(keys_slot, list), kPointer, 1);
  w.push_back(StructPointer(0, 0, 1));  // the key: a struct, not Data
  for (std::size_t i = 0; i < kDepth; ++i) w.push_back(StructPointer(0, 0, 1));
  const Measured in_keys = MeasureDecode(Message(w));
  ExpectRejected(in_keys, StatusCode::kInvalidArgument, "malformed encoded state");
  EXPECT_LT(in_keys.seconds, 1.0);

  // The same chain in a pointer slot the schema does not have (a future
  // field): ignored by the reader, and not what Encode writes.
  Words future = StateRoot(15);
  const std::size_t start = future.size();
  future[kSlot0 + 14] = StructPointer(OffsetTo(kSlot0 + 14, start), 0, 1);
  for (std::size_t i = 0; i < kDepth; ++i) future.push_back(StructPointer(0, 0, 1));
  future.push_back(0);
  const Measured unknown = MeasureDecode(Message(future));
  ExpectRejected(unknown, StatusCode::kInvalidArgument, "not the canonical encoding");
  EXPECT_LT(unknown.seconds, 1.0);
}

TEST(DecodeLimitsTest, NestingLimitApplies) {
  StringSet s;
  s.Add(crdt::ReplicaId{7}, "apple");
  DecodeOptions shallow;
  shallow.limits.max_nesting = 1;
  const Measured m = MeasureDecode(Encode(s), shallow);
  ExpectRejected(m, StatusCode::kResourceExhausted, "too deeply");
  EXPECT_TRUE(MeasureDecode(Encode(s)).result.ok());
}

TEST(DecodeLimitsTest, PointersOutsideTheMessageAreRejected) {
  // A far pointer into a segment that does not exist.
  Words far = StateRoot();
  far[kSlot0] = 2 | (std::uint64_t{1} << 32);
  ExpectRejected(MeasureDecode(Message(far)), StatusCode::kInvalidArgument,
                 "malformed encoded state");
  // A list that would end past the segment.
  Words out = StateRoot();
  out[kSlot0] = ListPointer(0, kEightBytes, 1000);
  out.push_back(1);
  ExpectRejected(MeasureDecode(Message(out)), StatusCode::kInvalidArgument,
                 "malformed encoded state");
  // A list of pointers where a list of integers belongs.
  Words kind = StateRoot();
  kind[kSlot0] = ListPointer(OffsetTo(kSlot0, kind.size()), kPointer, 1);
  kind.push_back(0);
  ExpectRejected(MeasureDecode(Message(kind)), StatusCode::kInvalidArgument,
                 "malformed encoded state");
}

// An empty list spelt as a list (not a null pointer): legal Cap'n Proto,
// not the canonical form.
TEST(DecodeLimitsTest, EmptyListIsNotCanonical) {
  Words w = StateRoot();
  w[kSlot0 + 1] = ListPointer(0, kEightBytes, 0);  // counts: []
  const std::string bytes = Message(w);
  ExpectRejected(MeasureDecode(bytes), StatusCode::kInvalidArgument, "not the canonical encoding");
  DecodeOptions trusted;
  trusted.trusted = true;
  const Measured m = MeasureDecode(bytes, trusted);
  ASSERT_TRUE(m.result.ok()) << m.result.status();
  EXPECT_EQ(*m.result, StringSet{});
}

// The tracker sees Cap'n Proto's allocations (else the tests above would
// prove nothing).
TEST(DecodeLimitsTest, TrackerSeesSegmentAllocations) {
  StringSet s;
  for (int i = 0; i < 10'000; ++i) s.Add(crdt::ReplicaId{7}, "element-" + std::to_string(i));
  const Measured m = MeasureDecode(Encode(s));
  ASSERT_TRUE(m.result.ok()) << m.result.status();
  EXPECT_GE(m.largest_allocation, std::size_t{10'000} * 8);
}

}  // namespace
}  // namespace converge::codec
