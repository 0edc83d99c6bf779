# converge wire and disk format, version 1. See docs/wire-format.md.
#
# Every encoded CRDT state (a full state or a delta) is one `State` message,
# written canonically (capnp::canonicalize: single segment, preorder, no
# padding, trailing null pointers truncated) and then packed. A State is a
# flat set of columns; which columns a type uses, and how they nest, follows
# from the type named by `typeId` (see docs/wire-format.md). Flat columns keep
# deltas small (one add into an OR-set encodes to well under 64 bytes) and
# decoding simple to bound.
#
# Evolution: fields are only ever added, at higher ordinals, together with a
# new `version`; a reader rejects versions it does not know.

@0xec71e289a8fb1cf2;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("converge::codec::wire");

struct State {
  # --- header
  version @0 :UInt16;            # format version; 1
  typeId @1 :UInt32;             # FNV-1a 32 of the type descriptor, e.g. "or_set<text>"

  # --- identities: replica ids, sorted ascending and unique. Every other
  # column names a replica by its position in this list.
  replicas @2 :List(UInt64);

  # --- GCounter / PnCounter: counts parallel to `replicas`.
  counts @3 :List(UInt64);       # GCounter entries; PnCounter increments
  negCounts @4 :List(UInt64);    # PnCounter decrements

  # --- causal context (EwFlag, MvRegister, CausalCounter, OrSet, OrMap).
  # The context is vector ∪ cloud ∪ (every dot of the store): store dots are
  # part of the context by construction and are not repeated here.
  vector @5 :List(UInt64);       # per replica: version-vector counter; omitted when all 0
  cloudReplica @6 :List(UInt32); # cloud dots not in the store, sorted
  cloudCounter @7 :List(UInt64);

  # --- the dot store, flattened in preorder.
  keys @8 :List(Data);           # every map key, each map's keys sorted by bytes
  mapSizes @9 :List(UInt32);     # entry count of every nested (non-root) map
  leafExtra @10 :List(UInt32);   # per leaf store inside a map: dot count - 1; omitted when all 0
  dotReplica @11 :List(UInt32);  # every store dot; omitted when all refer to replica 0
  dotCounter @12 :List(UInt64);
  values @13 :List(Data);        # DotFun payloads (MvRegister), one per dot
  amounts @14 :List(UInt64);     # DotFun counter payloads (CausalCounter), one per dot

  # --- LwwRegister
  lwwPresent @15 :Bool;
  lwwLogical @16 :UInt32;
  lwwPhysicalMs @17 :UInt64;
  lwwWriter @18 :UInt32;         # position in `replicas`
  lwwValue @19 :Data;
}
