// Writes the frame fuzzer's seed corpus (replication/fuzz/corpus/): the
// byte streams node "n1" of small simulated clusters received from its
// peers, recorded in the deterministic simulator (replication/sim), each
// turned into what a TCP peer sends: a length-prefixed hello, then
// length-prefixed frames. n1 is set up as frame_fuzzer.cc sets up its node
// (frame_harness.h), so acks and intervals in the recordings fit the fuzzed
// node. A few hand-made streams cover the transport's edge cases (S3).
//
//   <fuzz build dir>/converge_frame_corpus <out dir>
//
// Built by replication/fuzz/CMakeLists.txt next to the fuzzer. Files whose
// names start with crash- or regression- are kept; every other .bin in
// <out dir> is replaced. Everything is deterministic: the same sources write
// the same files.

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/io.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "crdt/g_counter.h"
#include "replication/fuzz/frame_harness.h"
#include "replication/internal/tcp_wire.h"
#include "replication/protocol.capnp.h"
#include "replication/sim/sim_world.h"
#include "storage/memory_store.h"

namespace converge::replication::fuzz {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxStreamBytes = 16 << 10;  // the fuzzer's -max_len

struct Received {
  std::string from;
  std::string frame;
  int body = -1;
};

// Records what its node receives, and forwards everything to the simulator.
class TapTransport final : public Transport {
 public:
  TapTransport(Transport& inner, std::vector<Received>* log) : inner_(inner), log_(log) {}
  void Start(FrameHandler handler) override {
    inner_.Start([this, handler = std::move(handler)](const std::string& from, std::string frame) {
      log_->push_back(Received{from, frame, BodyOf(frame)});
      handler(from, std::move(frame));
    });
  }
  void Send(const Endpoint& to, std::string frame) override { inner_.Send(to, std::move(frame)); }
  void Stop() override { inner_.Stop(); }
  void Block(const std::string& peer) override { inner_.Block(peer); }
  void UnblockAll() override { inner_.UnblockAll(); }
  TransportStats stats() const override { return inner_.stats(); }
  std::size_t max_frame_bytes() const override { return inner_.max_frame_bytes(); }

  static int BodyOf(const std::string& frame) {
    try {
      kj::ArrayInputStream input(
          kj::arrayPtr(reinterpret_cast<const kj::byte*>(frame.data()), frame.size()));
      capnp::PackedMessageReader reader(input);
      return static_cast<int>(reader.getRoot<wire::Message>().getBody().which());
    } catch (...) {
      return -1;
    }
  }

 private:
  Transport& inner_;
  std::vector<Received>* log_;
};

struct SimNode {
  std::string name;
  std::unique_ptr<storage::MemoryStore> store;
  std::unique_ptr<sim::SimClock> clock;
  std::unique_ptr<sim::SimTransport> transport;
  std::unique_ptr<TapTransport> tap;
  std::unique_ptr<Node> node;
  int starts = 0;
};

class Cluster {
 public:
  explicit Cluster(std::uint64_t seed, int nodes) : world_(seed) {
    for (int i = 1; i <= nodes; ++i) {
      SimNode n;
      n.name = "n" + std::to_string(i);
      const std::uint64_t replica = i == 1 ? kTargetReplica : 0x6e00'0000'0000'0001ULL + 2 * i;
      n.store = std::make_unique<storage::MemoryStore>(Registry(), crdt::ReplicaId(replica));
      nodes_.push_back(std::move(n));
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i) Start(i);
  }

  sim::SimWorld& world() { return world_; }
  Node& node(std::size_t i) { return *nodes_[i].node; }
  const std::vector<Received>& received() const { return received_; }

  void Start(std::size_t i) {
    SimNode& n = nodes_[i];
    n.clock = std::make_unique<sim::SimClock>(world_, kWallOffsetMs);
    n.transport = std::make_unique<sim::SimTransport>(world_, n.name, kTransportMaxFrameBytes);
    Transport* transport = n.transport.get();
    if (i == 0) {
      n.tap = std::make_unique<TapTransport>(*n.transport, &received_);
      transport = n.tap.get();
    }
    const NodeOptions options =
        i == 0 ? TargetOptions() : OptionsFor(n.name, 0x5eed0000 + 16 * i + n.starts);
    n.node = std::make_unique<Node>(options, *n.store, *transport, *n.clock, Registry());
    ++n.starts;
    if (Status s = n.node->Start(); !s.ok()) {
      std::cerr << n.name << " does not start: " << s.ToString() << "\n";
      std::exit(1);
    }
    if (i == 0 && n.starts == 1) InitialWrites(*n.node);
  }
  void Crash(std::size_t i) {
    nodes_[i].node.reset();
    nodes_[i].tap.reset();
    nodes_[i].transport.reset();
    nodes_[i].clock.reset();
  }

  // Writes of every kind the node carries, at `at`, on node i.
  void WriteAt(std::uint64_t at, std::size_t i, int kind) {
    world_.ScheduleAt(at, [this, i, kind] {
      if (!nodes_[i].node) return;
      Node& n = *nodes_[i].node;
      const auto ignore = [](auto) {};
      const std::string who = nodes_[i].name;
      switch (kind % 5) {
        case 0:
          n.Update<Cart>(
              "cart:alice",
              [kind](Cart& c, crdt::ReplicaId self) {
                return c.Update(kind % 2 ? "fig" : "apple", [&](crdt::CausalCounter& q) {
                  return q.Increment(self, 1 + static_cast<std::uint64_t>(kind % 3));
                });
              },
              WriteConsistency::kLocal, std::function<void(StatusOr<Cart>)>(ignore));
          break;
        case 1:
          n.Update<Cart>(
              "cart:bob", [](Cart& c, crdt::ReplicaId) { return c.Remove("pear"); },
              WriteConsistency::kMajority, std::function<void(StatusOr<Cart>)>(ignore));
          break;
        case 2:
          n.Update<Cart>(
              "cart:" + who,
              [](Cart& c, crdt::ReplicaId self) {
                return c.Update("plum", [&](crdt::CausalCounter& q) { return q.Set(self, 4); });
              },
              WriteConsistency::kAll, std::function<void(StatusOr<Cart>)>(ignore));
          break;
        case 3:
          n.Update<Profile>(
              "profile:alice",
              [&n, who](Profile& p, crdt::ReplicaId self) {
                return p.Assign(self, n.Now(), who + "@example.org");
              },
              WriteConsistency::kLocal, std::function<void(StatusOr<Profile>)>(ignore));
          break;
        case 4:
          n.Update<crdt::GCounter>(
              "visits:home",
              [](crdt::GCounter& g, crdt::ReplicaId self) { return g.Increment(self, 3); },
              WriteConsistency::kLocal, std::function<void(StatusOr<crdt::GCounter>)>(ignore));
          break;
      }
    });
  }

 private:
  sim::SimWorld world_;
  std::vector<SimNode> nodes_;
  std::vector<Received> received_;
};

std::string Framed(std::string_view payload) {
  return internal::FrameHeader(static_cast<std::uint32_t>(payload.size())) + std::string(payload);
}

std::string HelloFrom(const std::string& peer) {
  return Framed(internal::EncodeHello({internal::kHelloVersion, std::string(kCluster), peer}));
}

const char* BodyName(int body) {
  switch (body) {
    case wire::Message::Body::GOSSIP:
      return "gossip";
    case wire::Message::Body::DELTAS:
      return "deltas";
    case wire::Message::Body::DELTA_ACK:
      return "ack";
    case wire::Message::Body::AE_NODES:
      return "ae-nodes";
    case wire::Message::Body::AE_LEAVES:
      return "ae-leaves";
    case wire::Message::Body::AE_STATES:
      return "ae-states";
  }
  return "unknown";
}

class Corpus {
 public:
  void Add(const std::string& name, std::string stream) {
    if (stream.size() > kMaxStreamBytes) stream.resize(kMaxStreamBytes);
    if (!seen_.insert(stream).second) return;
    files_[name + ".bin"] = std::move(stream);
  }

  // From one recording: for each peer, the head of its stream, a longer run,
  // and per message type the first of its kind after the peer's first frame.
  void AddRecording(const std::string& scenario, const std::vector<Received>& received,
                    const std::vector<std::string>& peers) {
    for (const std::string& peer : peers) {
      std::vector<const Received*> frames;
      for (const Received& r : received)
        if (r.from == peer) frames.push_back(&r);
      if (frames.empty()) continue;
      const std::string base = scenario + "-" + peer;
      const auto stream = [&](std::size_t begin, std::size_t end) {
        std::string out = HelloFrom(peer);
        if (begin > 0) out += Framed(frames[0]->frame);  // the peer introduces itself
        for (std::size_t i = begin; i < end && i < frames.size(); ++i) {
          if (out.size() + frames[i]->frame.size() + 4 > kMaxStreamBytes) break;
          out += Framed(frames[i]->frame);
        }
        return out;
      };
      Add(base + "-head", stream(0, 6));
      Add(base + "-run", stream(0, 40));
      std::set<int> done;
      for (std::size_t i = 1; i < frames.size(); ++i) {
        const int body = frames[i]->body;
        if (body < 0 || !done.insert(body).second) continue;
        // The type's first frame with the two before it (context of a session).
        Add(base + "-" + BodyName(body), stream(i >= 2 ? i - 2 : 1, i + 1));
      }
    }
  }

  void Write(const fs::path& dir) const {
    fs::create_directories(dir);
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with("crash-") || name.starts_with("regression-")) continue;
      if (entry.path().extension() == ".bin") fs::remove(entry.path());
    }
    for (const auto& [name, content] : files_) {
      std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
      out.write(content.data(), static_cast<std::streamsize>(content.size()));
      if (!out.good()) {
        std::cerr << "cannot write " << (dir / name) << "\n";
        std::exit(1);
      }
    }
    std::cout << "wrote " << files_.size() << " files to " << dir << "\n";
  }

 private:
  std::set<std::string> seen_;
  std::map<std::string, std::string> files_;
};

// Three nodes, no faults; the others write, n3 leaves at the end.
std::vector<Received> Steady() {
  Cluster c(11, 3);
  for (int k = 0; k < 10; ++k) c.WriteAt(300 + 250 * static_cast<std::uint64_t>(k), 1 + k % 2, k);
  c.world().RunUntil(3'500);
  c.node(2).Leave();
  c.world().RunUntil(4'500);
  return c.received();
}

// n2 cut off from n1 while it writes, long enough for each to find the
// other dead (and drop its buffered deltas); healed, anti-entropy repairs
// down to the leaves.
std::vector<Received> Partition() {
  Cluster c(12, 3);
  c.world().Cut("n1", "n2");
  c.world().Cut("n2", "n1");
  for (int k = 0; k < 8; ++k) c.WriteAt(200 + 200 * static_cast<std::uint64_t>(k), 1, k);
  c.world().RunUntil(8'000);
  c.world().RestoreAll();
  c.world().RunUntil(11'000);
  return c.received();
}

// Loss, duplication and reordering: gaps, resends, resyncs.
std::vector<Received> Lossy() {
  Cluster c(13, 3);
  c.world().set_faults(sim::NetworkFaults{0.25, 0.2, 1, 40});
  for (int k = 0; k < 12; ++k) c.WriteAt(200 + 200 * static_cast<std::uint64_t>(k), 1 + k % 2, k);
  c.world().RunUntil(6'000);
  return c.received();
}

// n2 crashes and comes back with its data: a new generation.
std::vector<Received> Restart(Cluster& c) {
  for (int k = 0; k < 6; ++k) c.WriteAt(200 + 250 * static_cast<std::uint64_t>(k), 1, k);
  c.world().RunUntil(2'000);
  c.Crash(1);
  c.world().RunUntil(2'600);
  c.Start(1);
  c.WriteAt(2'700, 1, 3);
  c.world().RunUntil(5'000);
  return c.received();
}

// Streams the simulator does not make: the transport's limits (S3).
void AddEdgeCases(Corpus& corpus) {
  const std::string hello = HelloFrom("n2");
  corpus.Add("edge-hello-only", hello);
  corpus.Add("edge-hello-oversized", internal::FrameHeader(internal::kMaxHelloBytes + 1) +
                                         std::string(internal::kMaxHelloBytes + 1, 'x'));
  corpus.Add("edge-hello-wrong-cluster",
             Framed(internal::EncodeHello({internal::kHelloVersion, "other", "n2"})));
  corpus.Add("edge-hello-self",
             Framed(internal::EncodeHello({internal::kHelloVersion, "converge", "n1"})));
  corpus.Add("edge-length-max", hello + "\xff\xff\xff\xff");
  corpus.Add("edge-length-over-cap", hello + internal::FrameHeader(kTransportMaxFrameBytes + 1));
  corpus.Add("edge-empty-frame", hello + internal::FrameHeader(0));
  // A segment table announcing 65536 segments (packed: tag 0x03, ff ff).
  corpus.Add("edge-many-segments", hello + Framed(std::string("\x03\xff\xff", 3)));
  // 100,000 empty members: packed zeros, far more words than bytes (the
  // traversal limit must refuse it before the node walks the list).
  {
    capnp::MallocMessageBuilder builder;
    auto msg = builder.initRoot<wire::Message>();
    msg.setVersion(1);
    msg.setCluster(std::string(kCluster));
    msg.getBody().initGossip().initMembers(100'000);
    kj::VectorOutputStream out;
    capnp::writePackedMessage(out, builder);
    const auto bytes = out.getArray();
    corpus.Add(
        "edge-packed-zeros",
        hello + Framed(std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size())));
  }
}

}  // namespace
}  // namespace converge::replication::fuzz

int main(int argc, char** argv) {
  using namespace converge::replication::fuzz;
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " <out dir>\n";
    return 2;
  }
  Corpus corpus;
  corpus.AddRecording("steady", Steady(), {"n2", "n3"});
  corpus.AddRecording("partition", Partition(), {"n2"});
  corpus.AddRecording("lossy", Lossy(), {"n2"});
  {
    Cluster c(14, 3);
    corpus.AddRecording("restart", Restart(c), {"n2"});
  }
  AddEdgeCases(corpus);
  corpus.Write(argv[1]);
  return 0;
}
