# converge replication protocol, version 1. See docs/replication.md.
#
# One Message per frame. The transport authenticates the sender (mutual TLS:
# the certificate's common name is the node name) and frames messages with a
# length prefix it checks before allocating; this schema is what is inside.

@0xc9a5f6d2e1b38a47;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("converge::replication::wire");

struct Message {
  version @0 :UInt16;     # protocol version; 1
  cluster @1 :Text;       # must match the receiver's cluster name
  generation @2 :UInt64;  # sender's process generation (new at each start)
  body :union {
    gossip @3 :Gossip;
    deltas @4 :DeltaInterval;
    deltaAck @5 :DeltaAck;
    aeNodes @6 :AeNodes;
    aeLeaves @7 :AeLeaves;
    aeStates @8 :AeStates;
    chunkRequest @10 :ChunkRequest;
    chunk @11 :StateChunk;
  }
  wallMs @9 :UInt64;      # sender's wall clock (Unix ms) when it built the
                          # message; 0: not given. Receivers estimate the
                          # cluster's time from their peers' clocks.
  pruneLevel @12 :UInt64; # the sender's pruning level (Prune): states and
                          # deltas are exchanged only between equal levels
}

# --- Membership (every round, to a few random peers) ---------------------

enum MemberStatus {
  alive @0;
  left @1;        # left gracefully; not chosen, not suspected
  suspect @2;     # a probe of it failed (large clusters; see Gossip.list)
  dead @3;        # suspected for longer than the suspicion timeout
}

struct Member {
  name @0 :Text;
  address @1 :Text;
  generation @2 :UInt64;  # a restarted process has a greater generation
  heartbeat @3 :UInt64;   # increased by the member itself each round
  status @4 :MemberStatus;
  replica @5 :UInt64;     # its current ReplicaId
  metadata @6 :Text;      # the member's own description (e.g. its HTTP address);
                          # at most 1 KiB, opaque to the protocol
  incarnation @7 :UInt64; # raised by the member itself to refute a suspicion
                          # of it: (generation, incarnation, status) orders
                          # what is said of a member, alive < suspect < dead
                          # < left at equal incarnations
}

# The highest update sequence of an origin replica applied by the sender.
# A node that finds its own replica with a sequence above its own lost
# history (a rolled-back data directory): it retires that id.
struct OriginSeq {
  replica @0 :UInt64;
  seq @1 :UInt64;
}

# A member an operator removed (converge-node `forget NAME`): its entries up
# to `generation` are ignored wherever they come from; a process of that name
# with a greater generation is a new member.
struct Forgotten {
  name @0 :Text;
  generation @1 :UInt64;
  wallMs @2 :UInt64;      # when it was forgotten (tombstones expire)
}

# What a gossip message's member list holds. A node with at most
# NodeOptions::members_per_message other members sends its whole list in
# every message (`whole`) and judges liveness by heartbeats; a larger one
# sends its own entry and a bounded number of recent changes (`updates`),
# probes members to judge liveness, and exchanges whole lists with one
# member now and then (`push`, answered by `pushReply`).
enum MemberList {
  whole @0;
  updates @1;
  push @2;
  pushReply @3;
}

# Ask the receiver to probe `target` for the sender: when the target answers
# the receiver's probe, it sends the sender a gossip message with ack = nonce.
struct ProbeRequest {
  target @0 :Text;
  address @1 :Text;
  nonce @2 :UInt64;
}

struct Gossip {
  members @0 :List(Member);   # the sender's own entry first
  origins @1 :List(OriginSeq);
  forgotten @2 :List(Forgotten);
  list @3 :MemberList;
  probe @4 :UInt64;           # nonzero: answer with a gossip message, ack = probe
  ack @5 :UInt64;             # answers a probe (or a ProbeRequest's nonce)
  probeFor @6 :ProbeRequest;  # set: probe this member for the sender
  prune @7 :Prune;            # set: pruning of retired replica ids
}

# --- Pruning of retired replica ids (docs/replication.md) ---------------------
# The coordinator (the lowest-named member) proposes to rename `retired` onto
# the archive id as level `level`; every member reports its figures for them
# (and stops taking in entries that would raise them); when all agree, the
# coordinator commits, and the levels travel to members at a lower level.

enum PruneKind {
  prepare @0;
  report @1;
  commit @2;   # `tail` holds the latest levels
  abort @3;
}

struct PruneLevel {
  level @0 :UInt64;
  nonce @1 :UInt64;
  retired @2 :List(UInt64);
}

struct Prune {
  kind @0 :PruneKind;
  nonce @1 :UInt64;           # the proposal
  level @2 :UInt64;           # the level it would make
  retired @3 :List(UInt64);   # prepare: the ids, in renaming order
  ok @4 :Bool;                # report: false = refused (busy, another level,
                              # or one of the ids is the reporter's own)
  summary @5 :UInt64;         # report: hash of the reporter's archive figures
  members @6 :UInt64;         # report: hash of the reporter's member names
  tail @7 :List(PruneLevel);  # commit
  idSummaries @8 :List(UInt64);  # report: hash of its figures for each id
                                 # of `retired` (all ones: its own id)
}

# --- Delta propagation (Almeida et al., delta intervals) -----------------

struct DeltaEntry {
  seq @0 :UInt64;         # position in the sender's delta buffer
  key @1 :Data;
  delta @2 :Data;         # an encoded state (crdt/codec)
  origin @3 :UInt64;      # the replica whose update produced it
  originSeq @4 :UInt64;   # that replica's update sequence
  # A delta too large for one message is not in it: `delta` is empty and
  # `size` gives its size. The receiver does not hold it (it lists the entry
  # as refused) and pulls the key's whole state in chunks instead.
  size @5 :UInt64;
}

# Entries seq in [from, to] of the sender's buffer (to may be below the
# buffer's end when the interval was capped in bytes). A receiver applies an
# interval only if from <= the next sequence it expects from this sender's
# generation; otherwise it answers with gap = true and the sender repairs by
# anti-entropy.
struct DeltaInterval {
  from @0 :UInt64;
  to @1 :UInt64;
  entries @2 :List(DeltaEntry);
  resync @3 :Bool;        # entries before `from` were delivered by a completed
                          # anti-entropy session: expect `from` next
}

struct DeltaAck {
  generation @0 :UInt64;  # the sender generation being acknowledged
  upTo @1 :UInt64;        # every entry <= upTo is durably applied, but:
  gap @2 :Bool;
  refused @3 :List(UInt64);  # entries of the interval not applied: their
                             # timestamp is too far ahead of the receiver's
                             # clock (anti-entropy brings them once the clock
                             # has caught up), or they do not decode as a type
                             # the receiver knows or do not join into its
                             # state. Not held: never counted toward a
                             # consistency level.
}

# --- Digest anti-entropy (a 16-ary hash tree over key hashes) -------------

struct TreeNode {
  level @0 :UInt8;        # 0 = root
  index @1 :UInt32;       # position within the level
  children @2 :List(UInt64);  # the 16 child hashes
}

# The sender's view of these nodes; the receiver answers for the children
# that differ: their own children (AeNodes) or, at the leaves, their keys.
struct AeNodes {
  session @0 :UInt64;
  nodes @1 :List(TreeNode);
  done @2 :Bool;          # the sender found no difference left
  inSync @3 :Bool;        # with done: the sender's root equals the one it was
                          # sent, so it holds everything the other held when
                          # the session started (not merely "nothing more
                          # found within the message caps")
  # Catching up by streaming (a node that started with an empty store): the
  # receiver answers with its states after streamAfter in key order, instead
  # of comparing trees.
  stream @4 :Bool;
  streamAfter @5 :Data;
}

struct LeafKey {
  key @0 :Data;
  digest @1 :UInt64;      # hash of the key's canonical encoded state
}

struct Leaf {
  index @0 :UInt32;
  keys @1 :List(LeafKey);
}

struct AeLeaves {
  session @0 :UInt64;
  leaves @1 :List(Leaf);
}

struct KeyState {
  key @0 :Data;
  state @1 :Data;
  # A state too large for one message is not in it: `state` is empty and
  # `size` and `digest` describe it; the receiver pulls it in chunks
  # (ChunkRequest / StateChunk).
  size @2 :UInt64;
  digest @3 :UInt64;
}

# Large states, pulled chunk by chunk by the side that wants them: one chunk
# in flight per state, re-requested after a lost message or a broken
# connection, from where the receiver is.
struct ChunkRequest {
  key @0 :Data;
  digest @1 :UInt64;      # the state being assembled (StateDigest)
  offset @2 :UInt64;      # the first byte wanted
}

struct StateChunk {
  key @0 :Data;
  digest @1 :UInt64;      # of the whole state these bytes belong to; another
                          # than requested: the state changed, start again
  size @2 :UInt64;        # the whole state's size (0: the key has no state)
  offset @3 :UInt64;
  bytes @4 :Data;
}

# States pushed to the receiver, and keys whose states the sender wants.
struct AeStates {
  session @0 :UInt64;
  states @1 :List(KeyState);
  pull @2 :List(Data);
  # An answer to a streaming AeNodes: the last key in this message, whether
  # another message of the same answer follows, and whether the sender holds
  # nothing after streamLast.
  streamLast @3 :Data;
  streamMore @4 :Bool;
  streamEnd @5 :Bool;
}
