// libFuzzer target: the byte stream a peer sends over an established TCP
// connection (TESTPLAN S2, S3).
//
// The input is what arrives after TLS: a length-prefixed hello, then
// length-prefixed protocol frames. It is split by internal::FrameDecoder
// exactly as TcpTransport does (cap kMaxHelloBytes for the hello, then the
// transport's default max_frame_bytes), fed in chunks of varying sizes; a
// hello is accepted as the transport accepts it (DecodeHello, same cluster,
// not our own name; the name it gives is the authenticated peer name, as
// with --insecure-loopback, or a certificate naming the same). Each complete
// frame goes to a real replication::Node ("n1", frame_harness.h) over a
// MemoryStore, through a test Transport that records what the node sends
// and a test Clock whose posted work is drained after every frame and whose
// timers run deterministically: virtual time moves kStepMs per frame, so a
// gossip round (with its anti-entropy session, deltas and trimming) runs
// every few frames.
//
// It aborts (libFuzzer keeps the input) when, besides a crash, hang, leak or
// sanitizer report:
//   - FrameDecoder splits the stream differently from a plain reference
//     split, or says `partial` wrongly;
//   - a stored state does not decode as its type (registry, untrusted), the
//     digest index disagrees with the stored states, or the node's root hash
//     is not the XOR of the contributions of its keys;
//   - a frame the node counted as rejected, and that is malformed (wrong
//     version or cluster, or a field the schema defines cannot be read),
//     changed the node's state (states, auxiliary keys, identity, root hash,
//     update sequence);
//   - a frame the node sends is not a well-formed message a peer accepts
//     (the reader options of Node::OnFrame, every field readable), names
//     another version, cluster or generation, exceeds the node's message
//     cap, or goes to an unknown peer or to itself;
//   - memory grows out of proportion to the input (stored bytes, delta
//     buffer, member table);
//   - after the stream, the node no longer takes a local write.
//
// A known converge bug the fuzzer finds can be stepped around, until it is
// fixed, for a longer run that looks for others: FRAME_FUZZER_SKIP=<name>
// (names: partial-apply, the check above for rejected frames). The ctest
// runs never set it. FRAME_FUZZER_TRACE=1 prints one line per frame.
//
// Built with clang (-fsanitize=fuzzer,address,undefined) by
// replication/fuzz/CMakeLists.txt; run by crdt/codec/fuzz/run_fuzzer.sh (ctest
// converge.replication.fuzz_frames, label fuzz). Seed corpus:
// replication/fuzz/corpus/, recorded by make_corpus.cc.

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "replication/clock.h"
#include "replication/fuzz/frame_harness.h"
#include "replication/hash_tree.h"
#include "replication/internal/log.h"
#include "replication/internal/messages.h"
#include "replication/internal/read_every_field.h"
#include "replication/internal/records.h"
#include "replication/internal/tcp_wire.h"
#include "replication/node.h"
#include "replication/protocol.capnp.h"
#include "replication/transport.h"
#include "storage/memory_store.h"

namespace converge::replication::fuzz {
namespace {

constexpr std::uint64_t kStepMs = 50;  // virtual time per frame: a round every 4 frames
using internal::kProtocolVersion;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "frame_fuzzer: %s\n", what.c_str());
  std::abort();
}

const NodeOptions& Options() {
  static const NodeOptions options = TargetOptions();
  return options;
}

// FRAME_FUZZER_TRACE=1: one line per frame on stderr (for reading a reproducer).
bool Trace() {
  static const bool trace = std::getenv("FRAME_FUZZER_TRACE") != nullptr;
  return trace;
}

// --- known bugs (FRAME_FUZZER_SKIP) ----------------------------------------------

bool SkipEnabled(std::string_view name) {
  static const std::set<std::string> names = [] {
    std::set<std::string> out;
    const char* env = std::getenv("FRAME_FUZZER_SKIP");
    std::string_view list = env == nullptr ? "" : env;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      out.emplace(list.substr(0, comma));
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
    return out;
  }();
  return names.contains(std::string(name));
}

// --- the node's environment -------------------------------------------------------

// Timers are kept and run only when virtual time is moved (Advance); posted
// work is queued and run by Drain.
class FuzzClock final : public Clock {
 public:
  std::uint64_t NowMs() const override { return now_; }
  std::uint64_t WallMs() const override { return now_ + kWallOffsetMs; }
  TimerId Schedule(std::uint64_t delay_ms, std::function<void()> fn) override {
    const TimerId id = ++next_id_;
    timers_.emplace(std::make_pair(now_ + delay_ms, id), std::move(fn));
    return id;
  }
  void Cancel(TimerId id) override {
    std::erase_if(timers_, [id](const auto& t) { return t.first.second == id; });
  }
  void Post(std::function<void()> fn) override { posted_.push_back(std::move(fn)); }

  void Drain() {
    for (int guard = 0; !posted_.empty(); ++guard) {
      if (guard > 10'000) Fail("posted work does not run out");
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }
  // Moves time forward by `ms`, running every timer due meanwhile (in time
  // order, ids breaking ties) and the work they post.
  void Advance(std::uint64_t ms) {
    const std::uint64_t until = now_ + ms;
    for (int guard = 0; !timers_.empty() && timers_.begin()->first.first <= until; ++guard) {
      if (guard > 10'000) Fail("timers keep firing without time passing");
      auto it = timers_.begin();
      now_ = std::max(now_, it->first.first);
      auto fn = std::move(it->second);
      timers_.erase(it);
      fn();
      Drain();
    }
    now_ = until;
  }

 private:
  std::uint64_t now_ = 0;
  TimerId next_id_ = 0;
  std::map<std::pair<std::uint64_t, TimerId>, std::function<void()>> timers_;
  std::deque<std::function<void()>> posted_;
};

struct SentFrame {
  Endpoint to;
  std::string frame;
};

class FuzzTransport final : public Transport {
 public:
  void Start(FrameHandler handler) override { handler_ = std::move(handler); }
  void Send(const Endpoint& to, std::string frame) override {
    if (frame.size() > kTransportMaxFrameBytes) {
      ++stats_.frames_dropped;
      oversized_.push_back(frame.size());
      return;
    }
    ++stats_.frames_sent;
    stats_.bytes_sent += frame.size();
    sent_.push_back(SentFrame{to, std::move(frame)});
  }
  void Stop() override { handler_ = nullptr; }
  void Block(const std::string&) override {}
  void UnblockAll() override {}
  TransportStats stats() const override { return stats_; }
  std::size_t max_frame_bytes() const override { return kTransportMaxFrameBytes; }

  void Deliver(const std::string& from, std::string frame) {
    if (!handler_) Fail("a frame arrived but the node never started its transport");
    ++stats_.frames_received;
    stats_.bytes_received += frame.size();
    handler_(from, std::move(frame));
  }
  std::vector<SentFrame> TakeSent() { return std::exchange(sent_, {}); }
  [[nodiscard]] const std::vector<std::size_t>& oversized() const { return oversized_; }

 private:
  FrameHandler handler_;
  std::vector<SentFrame> sent_;
  std::vector<std::size_t> oversized_;
  TransportStats stats_;
};

// --- reading a message the way a peer's node does ----------------------------------

capnp::ReaderOptions NodeReaderOptions(std::size_t frame_bytes) {
  capnp::ReaderOptions options;  // as Node::OnFrame sets them
  options.traversalLimitInWords = std::max<std::uint64_t>(2048, frame_bytes * 32);
  options.nestingLimit = 16;
  return options;
}

struct Header {
  std::uint16_t version = 0;
  std::string cluster;
  std::uint64_t generation = 0;
  int body = -1;  // wire::Message::Body::Which, -1 when unknown
};

// Reads every field the schema defines (through Cap'n Proto's dynamic
// API, so that fields added to protocol.capnp are read too; of a union, the
// arm that is set), as a node reading the whole message would; throws on
// the first that cannot be read (a pointer out of bounds, a text without
// its NUL, the traversal or nesting limit).
// The message's header when every field of it can be read; nullopt
// otherwise. Read with the node's reader options; a message that exceeds
// the traversal limit only because this walk and the node's reads together
// read some words twice is not called malformed (a second walk with twice
// the limit decides), so that the check of rejected frames is never wrong.
std::optional<Header> ReadWholeMessage(std::string_view frame, std::uint64_t limit_factor = 1) {
  try {
    kj::ArrayInputStream input(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(frame.data()), frame.size()));
    capnp::ReaderOptions options = NodeReaderOptions(frame.size());
    options.traversalLimitInWords *= limit_factor;
    capnp::PackedMessageReader reader(input, options);
    const auto msg = reader.getRoot<wire::Message>();
    Header h;
    h.version = msg.getVersion();
    h.cluster = msg.getCluster();
    h.generation = msg.getGeneration();
    internal::ReadEveryField(capnp::toDynamic(msg));
    KJ_IF_MAYBE (field, capnp::toDynamic(msg.getBody()).which()) {
      (void)field;
      h.body = static_cast<int>(msg.getBody().which());
    }
    return h;
  } catch (const kj::Exception& e) {
    if (limit_factor == 1 && std::string_view(e.getDescription().cStr()).find("traversal limit") !=
                                 std::string_view::npos)
      return ReadWholeMessage(frame, 2);
    return std::nullopt;
  }
}

// --- the node's state -------------------------------------------------------------

using internal::Printable;

std::string Describe(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (const char c : bytes.substr(0, 48)) {
    out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
    out += hex[static_cast<unsigned char>(c) & 0xf];
  }
  if (bytes.size() > 48) out += "...";
  return out;
}

struct NodeState {
  storage::MemoryStore::Snapshot store;
  std::uint64_t root = 0;
  std::uint64_t update_seq = 0;
  std::uint64_t replica = 0;

  bool operator==(const NodeState& o) const {
    return store.identity.replica == o.store.identity.replica &&
           store.identity.incarnation == o.store.identity.incarnation &&
           store.dot_lease_end == o.store.dot_lease_end && store.states == o.store.states &&
           store.aux == o.store.aux && root == o.root && update_seq == o.update_seq &&
           replica == o.replica;
  }
};

// What differs between two states, for the report.
std::string Difference(const NodeState& a, const NodeState& b) {
  std::string out;
  const auto maps = [&](const char* what, const auto& x, const auto& y) {
    std::set<std::string> keys;
    for (const auto& [k, v] : x) keys.insert(k);
    for (const auto& [k, v] : y) keys.insert(k);
    for (const std::string& k : keys) {
      const auto i = x.find(k);
      const auto j = y.find(k);
      if (i == x.end() || j == y.end() || i->second != j->second) {
        out += std::string(" ") + what + "[" + Printable(k) + "]" +
               (i == x.end()   ? " added"
                : j == y.end() ? " removed"
                               : " changed");
      }
    }
  };
  maps("state", a.store.states, b.store.states);
  maps("aux", a.store.aux, b.store.aux);
  if (a.store.identity.replica != b.store.identity.replica) out += " replica";
  if (a.store.dot_lease_end != b.store.dot_lease_end) out += " dot-lease";
  if (a.root != b.root) out += " root-hash";
  if (a.update_seq != b.update_seq) out += " update-sequence";
  return out.empty() ? " (nothing)" : out;
}

NodeState Observe(const storage::MemoryStore& store, const Node& node) {
  return NodeState{store.TakeSnapshot(), node.root_hash(), node.update_sequence(),
                   node.replica().value()};
}

const HashTree& Tree() {
  static const HashTree tree(Options().tree_depth);  // for LeafOf only
  return tree;
}

// `validated`: state encodings already found valid (a cache: states change
// rarely between two checks, and decoding is the costly part).
void CheckStore(const NodeState& s, const std::string& when, std::set<std::string>& validated) {
  std::uint64_t root = 0;
  std::size_t digests = 0;
  for (const auto& [key, value] : s.store.states) {
    if (!validated.contains(value)) {
      if (Status v = Registry()->Validate(value, codec::DecodeOptions{}); !v.ok()) {
        Fail(when + ": the stored state of '" + Printable(key) +
             "' does not decode as its type: " + v.ToString());
      }
      validated.insert(value);
    }
    const std::uint64_t digest = StateDigest(value);
    const auto it = s.store.aux.find(internal::records::DigestKey(Tree().LeafOf(key), key));
    if (it == s.store.aux.end() || it->second != internal::records::Fixed64(digest)) {
      Fail(when + ": the digest index disagrees with the stored state of '" + Printable(key) + "'");
    }
    root ^= HashTree::Contribution(key, digest);
  }
  const std::uint32_t leaves = Tree().leaf_count();
  const std::string index_end = internal::records::DigestLeafBegin(leaves, leaves);
  for (auto it = s.store.aux.lower_bound(internal::records::DigestLeafBegin(0, leaves));
       it != s.store.aux.end() && it->first < index_end; ++it) {
    ++digests;
  }
  if (digests != s.store.states.size()) {
    Fail(when + ": " + std::to_string(digests) + " digest index entries for " +
         std::to_string(s.store.states.size()) + " stored states");
  }
  if (root != s.root) Fail(when + ": the root hash is not the XOR of the stored keys' digests");
}

// --- the replies ----------------------------------------------------------------

class ReplyChecker {
 public:
  void Check(const std::vector<SentFrame>& sent, Node& node, const std::string& when) {
    if (sent.empty()) return;
    std::set<std::string> members;
    for (const PeerStatus& p : node.Peers()) members.insert(p.name);
    for (const SentFrame& s : sent) {
      const std::string what = when + ": a frame sent to '" + s.to.name + "'";
      if (s.frame.size() > Options().max_message_bytes) {
        Fail(what + " has " + std::to_string(s.frame.size()) +
             " bytes, more than the node's message cap");
      }
      if (s.to.name == kTargetName) Fail(what + " goes to the node itself");
      if (s.to.name.empty() || !members.contains(s.to.name)) {
        Fail(what + " goes to no member the node knows (address '" + s.to.address + "')");
      }
      const std::optional<Header> h = ReadWholeMessage(s.frame);
      if (!h) Fail(what + " is not a message a peer can read: " + Describe(s.frame));
      if (h->version != kProtocolVersion || h->cluster != kCluster) {
        Fail(what + " names version " + std::to_string(h->version) + ", cluster '" + h->cluster +
             "'");
      }
      if (h->body < 0) Fail(what + " has no known body");
      if (!generation_) generation_ = h->generation;
      if (h->generation != *generation_) Fail(what + " names another generation of the node");
    }
  }

 private:
  std::optional<std::uint64_t> generation_;
};

// --- the stream ------------------------------------------------------------------

// The frames of `stream` split the plain way (the reference FrameDecoder must
// agree with), the hello checked as the transport checks it.
struct Split {
  std::vector<std::string> frames;  // hello first
  bool oversized = false;
  bool leftover = false;  // an incomplete frame at the end
};

bool HelloAccepted(std::string_view payload, std::string* peer) {
  const std::optional<internal::Hello> hello = internal::DecodeHello(payload);
  if (!hello || hello->cluster != kCluster || hello->name == kTargetName) return false;
  *peer = hello->name;
  return true;
}

Split ReferenceSplit(std::string_view stream) {
  Split out;
  std::size_t cap = internal::kMaxHelloBytes;
  std::size_t pos = 0;
  while (stream.size() - pos >= internal::kFrameHeaderBytes) {
    std::uint32_t length = 0;
    for (std::size_t i = 0; i < 4; ++i)
      length = (length << 8) | static_cast<unsigned char>(stream[pos + i]);
    if (length > cap) {
      out.oversized = true;
      return out;
    }
    if (stream.size() - pos - 4 < length) break;
    out.frames.emplace_back(stream.substr(pos + 4, length));
    pos += 4 + length;
    if (out.frames.size() == 1) {
      std::string peer;
      if (!HelloAccepted(out.frames[0], &peer)) return out;  // the connection closes
      cap = kTransportMaxFrameBytes;
    }
  }
  out.leftover = pos < stream.size();
  return out;
}

// The peer's bytes in chunks of varying sizes (as reads return them).
class Chunks {
 public:
  explicit Chunks(std::string_view stream) : rest_(stream) {}
  std::string_view Next() {
    static constexpr std::size_t kSizes[] = {4096, 1, 3, 700, 5, 16384, 2, 64};
    const std::size_t n = std::min(rest_.size(), kSizes[i_++ % std::size(kSizes)]);
    const std::string_view chunk = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return chunk;
  }
  [[nodiscard]] bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;
  std::size_t i_ = 0;
};

class Harness {
 public:
  Harness()
      : store_(Registry(), crdt::ReplicaId(kTargetReplica)),
        node_(Options(), store_, transport_, clock_, Registry()) {
    if (Status s = node_.Start(); !s.ok()) Fail("the node does not start: " + s.ToString());
    InitialWrites(node_);
    clock_.Drain();
    CheckAll(Observe(store_, node_), "after start");
  }

  void OnFrame(const std::string& peer, std::string frame, std::size_t input_bytes) {
    ++frames_;
    const std::string when = "frame " + std::to_string(frames_);
    const std::optional<Header> header = ReadWholeMessage(frame);
    const bool malformed =
        !header || header->version != kProtocolVersion || header->cluster != kCluster;
    std::optional<NodeState> before;
    if (malformed) before = Observe(store_, node_);
    const NodeStats stats_before = node_.stats();
    transport_.Deliver(peer, frame);
    clock_.Drain();
    const NodeStats stats_after = node_.stats();
    if (malformed && stats_after.messages_rejected > stats_before.messages_rejected &&
        !SkipEnabled("partial-apply")) {
      const NodeState after = Observe(store_, node_);
      if (!(after == *before)) {
        Fail(when + ": a malformed frame the node rejected changed its state:" +
             Difference(*before, after) + "; frame " + Describe(frame));
      }
    }
    if (Trace()) {
      std::fprintf(stderr,
                   "frame_fuzzer: %s from %s: %zu bytes, body %d%s; rejected %llu -> %llu, "
                   "applied %llu -> %llu, repaired %llu -> %llu, root %016llx\n",
                   when.c_str(), peer.c_str(), frame.size(), header ? header->body : -1,
                   malformed ? " (malformed)" : "",
                   static_cast<unsigned long long>(stats_before.messages_rejected),
                   static_cast<unsigned long long>(stats_after.messages_rejected),
                   static_cast<unsigned long long>(stats_before.deltas_applied),
                   static_cast<unsigned long long>(stats_after.deltas_applied),
                   static_cast<unsigned long long>(stats_before.ae_keys_repaired),
                   static_cast<unsigned long long>(stats_after.ae_keys_repaired),
                   static_cast<unsigned long long>(node_.root_hash()));
    }
    if (stats_after.bytes_received != stats_before.bytes_received + frame.size()) {
      Fail(when + ": the node did not count the frame's bytes");
    }
    // What the node answered before any timer ran.
    const std::vector<SentFrame> answers = transport_.TakeSent();
    replies_.Check(answers, node_, when);
    std::uint64_t answered = 0;
    for (const SentFrame& s : answers) answered += s.frame.size();
    clock_.Advance(kStepMs);
    const NodeState now = Observe(store_, node_);
    CheckAll(now, when + ", then " + std::to_string(kStepMs) + " ms");
    const std::uint64_t held = CheckBounded(now, input_bytes, when);
    // Direct answers are bounded by the frame and by what the node holds.
    if (answered > held + (std::uint64_t{64} << 10) + 64 * std::uint64_t{frame.size()}) {
      Fail(when + ": the node answered a frame of " + std::to_string(frame.size()) +
           " bytes with " + std::to_string(answered) + " bytes");
    }
  }

  // The node still takes a write after the stream, and its state holds.
  void Finish(std::size_t input_bytes) {
    bool done = false;
    Status status;
    node_.Update<Cart>(
        "cart:after",
        [](Cart& c, crdt::ReplicaId self) {
          return c.Update("fig", [&](crdt::CausalCounter& q) { return q.Increment(self, 1); });
        },
        WriteConsistency::kLocal, std::function<void(StatusOr<Cart>)>([&](StatusOr<Cart> r) {
          done = true;
          status = r.status();
        }));
    clock_.Drain();
    if (!done) Fail("a local write after the stream was not answered");
    if (!status.ok()) Fail("a local write after the stream failed: " + status.ToString());
    clock_.Advance(4 * kGossipIntervalMs);
    const NodeState now = Observe(store_, node_);
    CheckAll(now, "after the stream");
    CheckBounded(now, input_bytes, "after the stream");
  }

 private:
  void CheckAll(const NodeState& now, const std::string& when) {
    CheckStore(now, when, validated_);
    replies_.Check(transport_.TakeSent(), node_, when);
    if (!transport_.oversized().empty()) {
      Fail(when + ": the node sent a frame of " + std::to_string(transport_.oversized().back()) +
           " bytes, over the transport's cap (dropped)");
    }
  }

  // What the node holds (stored states and auxiliary keys, its delta
  // buffer, its member table) grows at most in proportion to what it was
  // sent. Returns it, in bytes.
  std::uint64_t CheckBounded(const NodeState& now, std::size_t input_bytes,
                             const std::string& when) {
    std::uint64_t held = 0;
    for (const auto& [k, v] : now.store.states) held += k.size() + v.size();
    for (const auto& [k, v] : now.store.aux) held += k.size() + v.size();
    const NodeStats stats = node_.stats();
    held += stats.buffer_bytes;
    for (const PeerStatus& p : node_.Peers())
      held += p.name.size() + p.address.size() + p.metadata.size() + 64;
    if (held > (std::uint64_t{64} << 10) + 64 * std::uint64_t{input_bytes}) {
      Fail(when + ": the node holds " + std::to_string(held) + " bytes after an input of " +
           std::to_string(input_bytes));
    }
    if (stats.buffer_bytes > Options().delta_buffer_max_bytes) {
      Fail(when + ": the delta buffer passed its cap");
    }
    return held;
  }

  FuzzClock clock_;
  FuzzTransport transport_;
  storage::MemoryStore store_;
  Node node_;
  ReplyChecker replies_;
  std::set<std::string> validated_;
  std::size_t frames_ = 0;
};

void Run(std::string_view stream) {
  const Split reference = ReferenceSplit(stream);
  internal::FrameDecoder decoder(internal::kMaxHelloBytes);
  std::optional<Harness> harness;
  std::string peer;
  std::size_t frames = 0;
  bool closed = false;
  bool oversized = false;
  Chunks chunks(stream);
  while (!closed && !chunks.empty()) {
    std::string_view chunk = chunks.Next();
    while (!closed && !chunk.empty()) {
      std::string frame;
      const internal::FrameDecoder::Result r = decoder.Feed(chunk, &frame);
      if (r == internal::FrameDecoder::Result::kNeedMore) {
        if (!chunk.empty()) Fail("FrameDecoder wants more but left input unread");
        break;
      }
      if (r == internal::FrameDecoder::Result::kOversized) {
        if (decoder.announced_length() <= decoder.max_frame_bytes())
          Fail("FrameDecoder refused a length within its cap");
        oversized = closed = true;
        break;
      }
      if (frames >= reference.frames.size() || frame != reference.frames[frames]) {
        Fail("FrameDecoder's frame " + std::to_string(frames) + " differs from the reference");
      }
      ++frames;
      if (frames == 1) {
        if (!HelloAccepted(frame, &peer)) {
          closed = true;  // the transport closes the connection
          break;
        }
        decoder.set_max_frame_bytes(kTransportMaxFrameBytes);
        harness.emplace();
        continue;
      }
      harness->OnFrame(peer, std::move(frame), stream.size());
    }
  }
  if (frames != reference.frames.size()) Fail("FrameDecoder found fewer frames than the reference");
  if (oversized != reference.oversized) Fail("FrameDecoder and the reference disagree on the cap");
  if (!closed && decoder.partial() != reference.leftover)
    Fail("FrameDecoder's partial() disagrees with the bytes left over");
  if (harness) harness->Finish(stream.size());
}

}  // namespace
}  // namespace converge::replication::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  converge::replication::fuzz::Run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
