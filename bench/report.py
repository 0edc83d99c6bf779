#!/usr/bin/env python3
"""Turns the Google Benchmark JSON written by bench/run into docs/benchmarks.md.

Usage:
  bench/report.py [--results DIR] [--out FILE] [--json FILE] [--command CMD]

DIR (default build-bench/results) holds one JSON file per benchmark suite, as
listed in SUITES, and run.json, which bench/run writes with the command line
and the machine. The report is written to FILE (default docs/benchmarks.md);
--json also writes a flat JSON object {figure name: value} (null for a figure
this run did not measure). The figure table is printed to stdout as well.

Standard library only.

Adding figures
--------------
A figure is one entry of FIGURES: a name mapped to a small dict. Later suites
(storage, replication, HTTP) add a SUITES entry naming their JSON file, then
one FIGURES entry per figure; no new code is needed. Keys of a figure:

  suite        key of SUITES the figure belongs to (and is shown under)
  results      optional key of SUITES whose results file holds the figure's
               data, when that is not the suite it is shown under (the
               callgrind counts are shown with the crdt suite)
  section      heading, within the suite, under which the figure is shown
  description  one line saying what was measured
  unit         unit of the value ("adds/s", "ms", "bytes", ...)
  source       (benchmark, counter): the benchmark's run name without the
               /manual_time or /iterations:N suffix, and the name of a
               counter it sets, or "real_time"/"cpu_time" (in the benchmark's
               time unit); the value is the median over the repetitions.
               Or a function of the figures measured so far (a dict name ->
               value or None), for a figure derived from others.
  scale        optional factor applied to the counter (e.g. 1e-6 for ns -> ms)
  target       optional goal, with comparator ">=" or "<=": a number, or the
               name of another figure measured in the same run (a reference
               such as raw RocksDB db_bench), times target_scale (default 1)
  reference    optional text: a published figure to read the value against
  headline     optional bool: also listed in the summary at the top
  stands_in_for  optional name of a headline figure of the full run that
               this (quick-run) figure replaces in the summary when that one
               was not measured

SERIES groups figures into tables of a value against a size, shown in their
section; they are the data for the plots a later step draws with gnuplot
(each section already has a place for them). REFERENCES lists published
figures from other systems with the figure of this run to compare against.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Wall-clock time more than this factor above the thread's CPU time marks a
# figure as measured on a busy CPU.
CONTENDED = 1.15

# ---------------------------------------------------------------------------
# Suites: one JSON file of Google Benchmark results each.

SUITES = {
    "crdt": {
        "title": "crdt/ — CRDT types",
        "results": "crdt.json",
        "binary": "bench/crdt_benchmark.cc (converge_crdt_benchmark)",
        "sections": [
            "OrSet add",
            "OrSet join",
            "Counters and maps",
            "Memory and deltas",
        ],
    },
    # Instruction counts and simulated cache misses of OrSet adds, written by
    # bench/orset_add_cost.py (callgrind); its figures are shown in the crdt
    # suite's sections, so it has none of its own.
    "callgrind": {
        "title": "OrSet add under callgrind",
        "results": "orset_add_cost.json",
        "binary": "bench/orset_add_cost.cc (converge_orset_add_cost) run by "
                  "bench/orset_add_cost.py under valgrind --tool=callgrind",
        "sections": [],
    },
    # Persisted cart updates in a RocksStore, blind delta writes, and a store
    # of 10,000,000 keys (bench/storage_benchmark.cc).
    "storage": {
        "title": "storage/ — persisted state in RocksDB",
        "results": "storage.json",
        "binary": "bench/storage_benchmark.cc (converge_storage_benchmark)",
        "sections": [
            "Buffered writes, one writer",
            "Synced writes",
            "Scale: 10,000,000 keys",
        ],
    },
    # Raw RocksDB on the same machine in the same run: Debian's db_bench
    # fillrandom with the storage suite's key and value sizes, written by
    # bench/rocksdb_reference.py; its figures are shown in the storage suite.
    "rocksdb_reference": {
        "title": "Raw RocksDB (db_bench)",
        "results": "rocksdb_reference.json",
        "binary": "Debian's db_bench (rocksdb-tools) run by bench/rocksdb_reference.py",
        "sections": [],
    },
    # Encoded sizes and encode/decode throughput (bench/codec_benchmark.cc).
    "codec": {
        "title": "crdt/codec/ — wire and disk format",
        "results": "codec.json",
        "binary": "bench/codec_benchmark.cc (converge_codec_benchmark)",
        "sections": [
            "Encoded sizes",
            "Encode and decode throughput",
        ],
    },
    # Digest anti-entropy between two nodes on the simulated network
    # (bench/replication_benchmark.cc); the gossip rounds (converge-sim) and
    # the bootstrap over TCP (converge-node) are shown in its sections too.
    "replication": {
        "title": "replication/ — gossip, anti-entropy, bootstrap",
        "results": "replication.json",
        "binary": "bench/replication_benchmark.cc (converge_replication_benchmark)",
        "sections": [
            "Gossip rounds against cluster size",
            "Anti-entropy against differing keys",
            "Bootstrap of a new replica",
        ],
    },
    # Rounds to converge over many seeds, written by bench/gossip_rounds.py
    # from converge-sim --json; shown in the replication suite.
    "gossip": {
        "title": "Gossip rounds (converge-sim)",
        "results": "gossip_rounds.json",
        "binary": "replication/tools/converge_sim.cc (converge-sim) run by bench/gossip_rounds.py",
        "sections": [],
    },
    # A new replica catching up over loopback TCP with mutual TLS, written by
    # bench/bootstrap.py (two converge-node processes); shown in the
    # replication suite.
    "bootstrap": {
        "title": "Bootstrap (converge-node)",
        "results": "bootstrap.json",
        "binary": "replication/tools/converge_node.cc (converge-node) run by bench/bootstrap.py",
        "sections": [],
    },
    # cart-server under wrk, and nginx on the same machine in the same run
    # (bench/cart_http.py).
    "cart_http": {
        "title": "examples/cart — cart-server over HTTP",
        "results": "cart_http.json",
        "binary": "examples/cart/server (cart-server) and Debian's nginx-light, driven by "
                  "wrk from bench/cart_http.py (bench/wrk/*.lua)",
        "sections": [
            "Throughput and latency against nginx",
        ],
    },
    # Cart contexts: sizes over a realistic run, the cost of a delete with one
    # (examples/cart/bench/cart_benchmark.cc).
    "cart": {
        "title": "examples/cart — cart contexts (Cart-Context)",
        "results": "cart.json",
        "binary": "examples/cart/bench/cart_benchmark.cc (converge_cart_benchmark)",
        "sections": [
            "Context sizes over a realistic run",
            "Delete with a context",
        ],
    },
}

# ---------------------------------------------------------------------------
# Figures.

BAQUERO = "Baquero's C++ delta-enabled-crdts"
# The raw RocksDB figures the issue author measured on this machine before.
_DB_BENCH_EARLIER = "db_bench on this machine, measured earlier by the issue author: {}"


def _ratio(numerator: str, denominator: str):
    def derive(figures):
        a, b = figures.get(numerator), figures.get(denominator)
        return None if a is None or b is None or b == 0 else a / b

    derive.inputs = (numerator, denominator)
    return derive


_SIZES = [(1_000, "1k"), (10_000, "10k"), (100_000, "100k"), (1_000_000, "1m")]

# Gossip rounds (bench/gossip_rounds.py): cluster sizes and fanouts. Fanout 2
# (converge-sim's default) has bare figure names, fanout 3 a "_f3" suffix.
_GOSSIP_SIZES = [4, 8, 16, 32, 64]
_GOSSIP_FANOUTS = [2, 3]
# Differing keys of the anti-entropy runs (bench/replication_benchmark.cc).
_AE_DIFFERING = [1, 10, 100, 1_000, 10_000]
_AKKA = ("Akka Distributed Data documents tens of seconds for a new node to receive "
         "100,000 entries")


def _fanout_suffix(fanout: int) -> str:
    return "" if fanout == 2 else f"_f{fanout}"


def _epidemic_bound(nodes: int, fanout: int) -> float:
    """Rounds of a push epidemic with `fanout` to reach `nodes` nodes:
    log_(F+1)(N) + ln(N)/F (Pittel 1987 for F = 1; Frieze and Grimmett)."""
    return math.log(nodes, fanout + 1) + math.log(nodes) / fanout

FIGURES = {
    # --- OrSet add -----------------------------------------------------------
    "orset_add_per_s": dict(
        suite="crdt", section="OrSet add", headline=True,
        description="OrSet<std::string>: 100,000 sequential adds of distinct elements into "
                    "an empty set, each returning its delta",
        unit="adds/s", source=("OrSetAdd/sequential/size:100000", "ops_per_s"),
        target=3_000_000, comparator=">=",
        reference=f"{BAQUERO}: 100,000 adds in 28.9 s = 3,460 adds/s; "
                  "npm delta-crdts: does not finish 100,000 adds"),
    "orset_add_per_s_reserved": dict(
        suite="crdt", section="OrSet add",
        description="the same 100,000 adds into a set reserved for 100,000 elements "
                    "(no vector or index growth)",
        unit="adds/s", source=("OrSetAdd/sequential_reserved/size:100000", "ops_per_s")),
    "orset_add_ns_at_1k": dict(
        suite="crdt", section="OrSet add",
        description="cost per add, 1,000 sequential adds from empty",
        unit="ns/add", source=("OrSetAdd/sequential/size:1000", "ns_per_op")),
    "orset_add_ns_at_10k": dict(
        suite="crdt", section="OrSet add",
        description="cost per add, 10,000 sequential adds from empty",
        unit="ns/add", source=("OrSetAdd/sequential/size:10000", "ns_per_op")),
    "orset_add_ns_at_100k": dict(
        suite="crdt", section="OrSet add",
        description="cost per add, 100,000 sequential adds from empty",
        unit="ns/add", source=("OrSetAdd/sequential/size:100000", "ns_per_op")),
    "orset_add_ns_at_1m": dict(
        suite="crdt", section="OrSet add",
        description="cost per add, 1,000,000 sequential adds from empty",
        unit="ns/add", source=("OrSetAdd/sequential/size:1000000", "ns_per_op")),
    "orset_add_growth_1k_to_1m": dict(
        suite="crdt", section="OrSet add", headline=True,
        description="wall-clock cost per add at 1,000,000 sequential adds / at 1,000; grows "
                    "with cache and TLB misses once the set outgrows the caches, while the "
                    "work per add stays flat (see orset_add_instruction_growth_1k_to_1m)",
        unit="×", source=_ratio("orset_add_ns_at_1m", "orset_add_ns_at_1k"),
        reference=f"{BAQUERO}: add scans the set (grows linearly)"),
    "orset_add_marginal_ns_at_1k": dict(
        suite="crdt", section="OrSet add",
        description="cost of one add into a set already holding 1,000 elements",
        unit="ns/add", source=("OrSetAdd/at_size/size:1000", "ns_per_op")),
    "orset_add_marginal_ns_at_10k": dict(
        suite="crdt", section="OrSet add",
        description="cost of one add into a set already holding 10,000 elements",
        unit="ns/add", source=("OrSetAdd/at_size/size:10000", "ns_per_op")),
    "orset_add_marginal_ns_at_100k": dict(
        suite="crdt", section="OrSet add",
        description="cost of one add into a set already holding 100,000 elements",
        unit="ns/add", source=("OrSetAdd/at_size/size:100000", "ns_per_op")),
    "orset_add_marginal_ns_at_1m": dict(
        suite="crdt", section="OrSet add",
        description="cost of one add into a set already holding 1,000,000 elements",
        unit="ns/add", source=("OrSetAdd/at_size/size:1000000", "ns_per_op")),
    "orset_add_allocs_per_add": dict(
        suite="crdt", section="OrSet add",
        description="heap allocations per add (100,000 sequential adds)",
        unit="allocs", source=("OrSetAdd/sequential/size:100000", "allocs_per_op")),
    **{f"orset_add_instructions_at_{suffix}": dict(
        suite="crdt", results="callgrind", section="OrSet add",
        description=f"instructions per add (callgrind) over 10,000 adds of new elements into "
                    f"a set of {size:,} elements reserved for {size + 10_000:,}, so no vector "
                    "or index growth is counted; building the set is not counted",
        unit="instructions/add",
        source=(f"OrSetAddCost/instructions/reserved/size:{size}", "instructions_per_op"))
       for size, suffix in _SIZES},
    "orset_add_instruction_growth_1k_to_1m": dict(
        suite="crdt", section="OrSet add", headline=True,
        description="flatness of the work per add: instructions per add at 1,000,000 elements "
                    "/ at 1,000 (callgrind, deterministic; a scan of the set would give ~1,000)",
        unit="×", source=_ratio("orset_add_instructions_at_1m", "orset_add_instructions_at_1k"),
        target=1.1, comparator="<=",
        reference=f"{BAQUERO}: add scans the set (grows linearly)"),
    **{f"orset_add_instructions_unreserved_at_{suffix}": dict(
        suite="crdt", results="callgrind", section="OrSet add",
        description=f"the same 10,000 adds into a set of {size:,} elements built without "
                    "reserve: the vector and index growth that falls among them is counted",
        unit="instructions/add",
        source=(f"OrSetAddCost/instructions/unreserved/size:{size}", "instructions_per_op"))
       for size, suffix in _SIZES},
    **{f"orset_add_l2_misses_at_{suffix}": dict(
        suite="crdt", results="callgrind", section="OrSet add",
        description=f"simulated L2 misses per add at {size:,} elements (callgrind cache model, "
                    "last level the size of this machine's L2; reserved set, caches warmed by "
                    "building it)",
        unit="misses/add",
        source=(f"OrSetAddCost/cache_l2/size:{size}", "ll_misses_per_op"))
       for size, suffix in _SIZES},
    **{f"orset_add_l3_misses_at_{suffix}": dict(
        suite="crdt", results="callgrind", section="OrSet add",
        description=f"simulated L3 misses per add at {size:,} elements (the same with a last "
                    "level the size of this machine's L3)",
        unit="misses/add",
        source=(f"OrSetAddCost/cache_l3/size:{size}", "ll_misses_per_op"))
       for size, suffix in _SIZES},
    # --- OrSet join ----------------------------------------------------------
    "orset_join_50k_ms": dict(
        suite="crdt", section="OrSet join", headline=True,
        description="join of two OrSet<std::string> of 50,000 distinct elements each, "
                    "added concurrently on two replicas (full states)",
        unit="ms", source=("OrSetJoin/disjoint/size:50000", "ns_per_op"), scale=1e-6,
        target=10.0, comparator="<=",
        reference=f"{BAQUERO}: 59 ms; yjs (two 50,000-key docs): 318 ms"),
    "orset_join_ms_at_1k": dict(
        suite="crdt", section="OrSet join",
        description="join of two 1,000-element sets",
        unit="ms", source=("OrSetJoin/disjoint/size:1000", "ns_per_op"), scale=1e-6),
    "orset_join_ms_at_10k": dict(
        suite="crdt", section="OrSet join",
        description="join of two 10,000-element sets",
        unit="ms", source=("OrSetJoin/disjoint/size:10000", "ns_per_op"), scale=1e-6),
    "orset_join_ms_at_50k": dict(
        suite="crdt", section="OrSet join",
        description="join of two 50,000-element sets (the same run as orset_join_50k_ms)",
        unit="ms", source=("OrSetJoin/disjoint/size:50000", "ns_per_op"), scale=1e-6),
    "orset_join_ms_at_100k": dict(
        suite="crdt", section="OrSet join",
        description="join of two 100,000-element sets",
        unit="ms", source=("OrSetJoin/disjoint/size:100000", "ns_per_op"), scale=1e-6),
    "orset_join_ms_at_500k": dict(
        suite="crdt", section="OrSet join",
        description="join of two 500,000-element sets (full run only)",
        unit="ms", source=("OrSetJoin/disjoint/size:500000", "ns_per_op"), scale=1e-6),
    "orset_join_50k_overlap_ms": dict(
        suite="crdt", section="OrSet join",
        description="join of two 50,000-element sets holding the same elements, "
                    "added concurrently (every element ends with two dots)",
        unit="ms", source=("OrSetJoin/overlap/size:50000", "ns_per_op"), scale=1e-6),
    "orset_delta_join_ns": dict(
        suite="crdt", section="OrSet join",
        description="join of one Add delta from another replica into a 100,000-element set",
        unit="ns", source=("OrSetJoin/delta/size:100000", "ns_per_op")),
    # --- Counters and maps ---------------------------------------------------
    "gcounter_inc_per_s": dict(
        suite="crdt", section="Counters and maps", headline=True,
        description="GCounter::Increment returning its delta (one replica entry)",
        unit="inc/s", source=("GCounter/increment/replicas:1", "ops_per_s"),
        target=100_000_000, comparator=">="),
    "gcounter_inc_per_s_8_replicas": dict(
        suite="crdt", section="Counters and maps",
        description="GCounter::Increment returning its delta, counter with 8 replica entries",
        unit="inc/s", source=("GCounter/increment/replicas:8", "ops_per_s")),
    "ormap_update_per_s": dict(
        suite="crdt", section="Counters and maps", headline=True,
        description="OrMap<std::string, CausalCounter> with 100,000 keys: Increment on a "
                    "random existing key, returning the map delta (each key incremented once "
                    "before the 100,000 timed updates)",
        unit="updates/s", source=("OrMap/update/keys:100000/increments:1", "ops_per_s"),
        target=1_000_000, comparator=">="),
    "ormap_update_allocs": dict(
        suite="crdt", section="Counters and maps",
        description="heap allocations per OrMap update (100,000 keys)",
        unit="allocs", source=("OrMap/update/keys:100000/increments:1", "allocs_per_op")),
    "ormap_update_ns_10k_keys_1_inc": dict(
        suite="crdt", section="Counters and maps",
        description="OrMap update, 10,000 keys each incremented once before",
        unit="ns", source=("OrMap/update/keys:10000/increments:1", "ns_per_op")),
    "ormap_update_ns_10k_keys_10_incs": dict(
        suite="crdt", section="Counters and maps",
        description="OrMap update, 10,000 keys each incremented 10 times before",
        unit="ns", source=("OrMap/update/keys:10000/increments:10", "ns_per_op")),
    "ormap_update_ns_10k_keys_100_incs": dict(
        suite="crdt", section="Counters and maps",
        description="OrMap update, 10,000 keys each incremented 100 times before "
                    "(full run only)",
        unit="ns", source=("OrMap/update/keys:10000/increments:100", "ns_per_op")),
    "ormap_dots_per_key_10k_keys_1_inc": dict(
        suite="crdt", section="Counters and maps",
        description="dots a key holds after 1 increment",
        unit="dots", source=("OrMap/update/keys:10000/increments:1", "state_dots_per_key")),
    "ormap_dots_per_key_10k_keys_10_incs": dict(
        suite="crdt", section="Counters and maps",
        description="dots a key holds after 10 increments by one replica",
        unit="dots", source=("OrMap/update/keys:10000/increments:10", "state_dots_per_key")),
    "ormap_dots_per_key_10k_keys_100_incs": dict(
        suite="crdt", section="Counters and maps",
        description="dots a key holds after 100 increments by one replica (full run only)",
        unit="dots", source=("OrMap/update/keys:10000/increments:100", "state_dots_per_key")),
    # --- Memory and deltas ---------------------------------------------------
    "orset_bytes_per_element": dict(
        suite="crdt", section="Memory and deltas", headline=True,
        description="heap bytes per element of an OrSet<std::string> of 100,000 elements "
                    "(mallinfo2 growth while building, malloc overhead included)",
        unit="bytes", source=("Memory/OrSet/size:100000", "bytes_per_element")),
    **{f"orset_heap_bytes_at_{suffix}": dict(
        suite="crdt", results="callgrind", section="Memory and deltas",
        description=f"heap in use by an OrSet<std::string> of {size:,} elements built by "
                    "sequential adds without reserve (mallinfo2 growth; capacity slack and "
                    "malloc overhead included)",
        unit="bytes",
        source=(f"OrSetAddCost/heap/size:{size}", "set_heap_bytes"))
       for size, suffix in _SIZES},
    "ormap_bytes_per_element": dict(
        suite="crdt", section="Memory and deltas", headline=True,
        description="heap bytes per key of an OrMap<std::string, CausalCounter> of "
                    "100,000 keys, each incremented once",
        unit="bytes", source=("Memory/OrMap/keys:100000", "bytes_per_key")),
    "orset_add_delta_elements": dict(
        suite="crdt", section="Memory and deltas", headline=True,
        description="elements in the delta of one Add into a 100,000-element set",
        unit="elements", source=("OrSetAdd/delta/size:100000", "delta_elements"),
        target=1, comparator="<=",
        reference="npm delta-crdts: its add returns the whole state (100,000 elements)"),
    "orset_add_delta_context_dots": dict(
        suite="crdt", section="Memory and deltas", headline=True,
        description="context dots in the delta of one Add into a 100,000-element set",
        unit="dots", source=("OrSetAdd/delta/size:100000", "delta_context_dots"),
        target=1, comparator="<="),
    "orset_add_delta_heap_bytes": dict(
        suite="crdt", section="Memory and deltas",
        description="heap bytes allocated by a copy of that delta",
        unit="bytes", source=("OrSetAdd/delta/size:100000", "delta_heap_bytes")),
    "orset_add_delta_elements_at_1m": dict(
        suite="crdt", section="Memory and deltas",
        description="elements in the delta of one Add into a 1,000,000-element set "
                    "(full run only)",
        unit="elements", source=("OrSetAdd/delta/size:1000000", "delta_elements")),
    "orset_add_delta_context_dots_at_1m": dict(
        suite="crdt", section="Memory and deltas",
        description="context dots in that delta (full run only)",
        unit="dots", source=("OrSetAdd/delta/size:1000000", "delta_context_dots")),
    "orset_readd_delta_context_dots": dict(
        suite="crdt", section="Memory and deltas",
        description="context dots in the delta of re-adding a present element "
                    "(the new dot and the dot it supersedes)",
        unit="dots", source=("OrSetAdd/delta/size:100000", "readd_delta_context_dots")),
    "ormap_update_delta_context_dots": dict(
        suite="crdt", section="Memory and deltas",
        description="context dots in the delta of one OrMap update (100,000 keys)",
        unit="dots", source=("Memory/OrMap/keys:100000", "update_delta_context_dots")),
    # --- storage: buffered writes, one writer ---------------------------------
    "rocksdb_raw_fillrandom_per_s": dict(
        suite="storage", results="rocksdb_reference", section="Buffered writes, one writer",
        description="raw RocksDB: db_bench fillrandom, one thread, sync off, WAL on, key and "
                    "value sizes of a cart update (`storage_key_bytes`, one-increment delta), "
                    "fresh database, same machine and run",
        unit="ops/s", source=("RocksDbBench/fillrandom/sync:0/writers:1", "ops_per_s"),
        reference=_DB_BENCH_EARLIER.format("about 122,000 ops/s")),
    "persisted_buffered_per_s": dict(
        suite="storage", section="Buffered writes, one writer", headline=True,
        description="storage::Update<OrMap<std::string, CausalCounter>>: increment a random "
                    "SKU in a random cart, buffered RocksStore (default options: writes "
                    "validated), one thread; each Update reads the cart, runs the increment, "
                    "encodes the delta and writes it (merge)",
        unit="updates/s", source=("Storage/update/buffered/writers:1/validate:1", "ops_per_s"),
        target="rocksdb_raw_fillrandom_per_s", target_scale=0.70, comparator=">="),
    "persisted_buffered_vs_rocksdb_raw": dict(
        suite="storage", section="Buffered writes, one writer", headline=True,
        description="persisted_buffered_per_s / rocksdb_raw_fillrandom_per_s",
        unit="×", source=_ratio("persisted_buffered_per_s", "rocksdb_raw_fillrandom_per_s"),
        target=0.70, comparator=">="),
    "persisted_buffered_novalidate_per_s": dict(
        suite="storage", section="Buffered writes, one writer",
        description="the same Updates with validate_writes off (the delta is not decoded "
                    "again by Write)",
        unit="updates/s", source=("Storage/update/buffered/writers:1/validate:0", "ops_per_s")),
    "blind_write_buffered_per_s": dict(
        suite="storage", section="Buffered writes, one writer",
        description="blind delta writes: the same one-increment deltas encoded beforehand, "
                    "one Store::Write each (no read, no mutator, no encoding), writes validated",
        unit="writes/s", source=("Storage/blind_write/buffered/writers:1/validate:1",
                                 "ops_per_s")),
    "blind_write_buffered_novalidate_per_s": dict(
        suite="storage", section="Buffered writes, one writer",
        description="blind delta writes with validate_writes off: the store's write path "
                    "alone (WriteBatch, merge into RocksDB)",
        unit="writes/s", source=("Storage/blind_write/buffered/writers:1/validate:0",
                                 "ops_per_s")),
    "blind_write_buffered_novalidate_vs_rocksdb_raw": dict(
        suite="storage", section="Buffered writes, one writer",
        description="blind_write_buffered_novalidate_per_s / rocksdb_raw_fillrandom_per_s",
        unit="×", source=_ratio("blind_write_buffered_novalidate_per_s",
                                "rocksdb_raw_fillrandom_per_s")),
    "storage_key_bytes": dict(
        suite="storage", section="Buffered writes, one writer",
        description="size of a cart key (\"cart:\" + 12 digits); db_bench --key_size",
        unit="bytes", source=("Storage/update/buffered/writers:1/validate:1", "key_bytes")),
    "storage_delta_bytes": dict(
        suite="storage", section="Buffered writes, one writer",
        description="mean size of the encoded deltas the Updates write (first 20,000 of the "
                    "run, replayed untimed on a MemoryStore); db_bench --value_size is the "
                    "delta of one increment in a fresh cart",
        unit="bytes", source=("Storage/update/buffered/writers:1/validate:1", "delta_bytes")),
    # --- storage: synced writes ---------------------------------------------------
    "rocksdb_raw_sync1_per_s": dict(
        suite="storage", results="rocksdb_reference", section="Synced writes",
        description="raw RocksDB: db_bench fillrandom, one thread, --sync=1 (every write waits "
                    "for fdatasync of the WAL)",
        unit="ops/s", source=("RocksDbBench/fillrandom/sync:1/writers:1", "ops_per_s"),
        reference=_DB_BENCH_EARLIER.format("3,560 ops/s")),
    "persisted_sync1_per_s": dict(
        suite="storage", section="Synced writes",
        description="storage::Update as above, sync RocksStore, one thread (context for "
                    "rocksdb_raw_sync1_per_s)",
        unit="updates/s", source=("Storage/update/sync/writers:1/validate:1", "ops_per_s")),
    "persisted_sync1_vs_rocksdb_sync1": dict(
        suite="storage", section="Synced writes",
        description="persisted_sync1_per_s / rocksdb_raw_sync1_per_s",
        unit="×", source=_ratio("persisted_sync1_per_s", "rocksdb_raw_sync1_per_s")),
    "rocksdb_raw_sync4_per_s": dict(
        suite="storage", results="rocksdb_reference", section="Synced writes",
        description="raw RocksDB: db_bench fillrandom, --sync=1 --threads=4 (concurrent "
                    "writers share WAL syncs: group commit)",
        unit="ops/s", source=("RocksDbBench/fillrandom/sync:1/writers:4", "ops_per_s"),
        reference=_DB_BENCH_EARLIER.format("7,700 ops/s")),
    "persisted_sync4_per_s": dict(
        suite="storage", section="Synced writes", headline=True,
        description="storage::Update, sync RocksStore, 4 concurrent writer threads each "
                    "updating its own carts (RocksDB group commit)",
        unit="updates/s", source=("Storage/update/sync/writers:4/validate:1", "ops_per_s"),
        target="rocksdb_raw_sync4_per_s", target_scale=0.90, comparator=">="),
    "persisted_sync4_vs_rocksdb_sync4": dict(
        suite="storage", section="Synced writes", headline=True,
        description="persisted_sync4_per_s / rocksdb_raw_sync4_per_s",
        unit="×", source=_ratio("persisted_sync4_per_s", "rocksdb_raw_sync4_per_s"),
        target=0.90, comparator=">="),
    "persisted_sync4_novalidate_per_s": dict(
        suite="storage", section="Synced writes",
        description="the same with validate_writes off (the delta is not decoded again by "
                    "Write)",
        unit="updates/s", source=("Storage/update/sync/writers:4/validate:0", "ops_per_s")),
    "blind_write_sync4_per_s": dict(
        suite="storage", section="Synced writes",
        description="blind delta writes (validated), sync RocksStore, 4 writer threads",
        unit="writes/s", source=("Storage/blind_write/sync/writers:4/validate:1", "ops_per_s")),
    # --- storage: scale ------------------------------------------------------------
    **{f"keys_{suffix}_{name}": dict(
        suite="storage", section="Scale: 10,000,000 keys", headline=headline and full,
        description=(("" if full else "quick run only, 1,000,000 keys (not 10,000,000): ")
                     + what.format(keys=f"{keys:,}")),
        unit=unit, source=(f"Storage/scale/keys:{keys}", counter), scale=scale,
        **({} if full else {"stands_in_for": f"keys_10m_{name}"}))
       for keys, suffix, full in ((10_000_000, "10m", True), (1_000_000, "1m", False))
       for name, counter, unit, scale, headline, what in (
           ("load_per_s", "keys_per_s", "keys/s", 1.0, True,
            "load of {keys} carts (one increment each) into a buffered RocksStore: blind "
            "Write batches of 1,000 freshly encoded deltas, validation off, keys in "
            "pseudo-random order"),
           ("rss_mib", "rss_mib", "MiB", 1.0, True,
            "peak RSS (getrusage ru_maxrss) of the process that loaded {keys} keys, "
            "compacted and read a sample back"),
           ("disk_bytes_per_key", "disk_bytes_per_key", "bytes", 1.0, True,
            "SST bytes of the data column family per key after the load, a flush and a full "
            "compaction (RocksStore::CompactAll, ApproximateDiskBytes), {keys} keys"),
           ("compact_s", "compact_s", "s", 1.0, False,
            "time of that flush and full compaction ({keys} keys)"),
           ("verified_keys", "verified_keys", "keys", 1.0, False,
            "random keys read back after the compaction and found equal to the state loaded "
            "({keys} keys loaded; any mismatch fails the run)"))},
    # --- codec: encoded sizes -------------------------------------------------
    "orset_add_delta_encoded_bytes": dict(
        suite="codec", section="Encoded sizes", headline=True,
        description="Encode() of the delta of one Add into a 100,000-element "
                    "OrSet<std::string> (replica id a random-looking 64-bit value; element "
                    "\"item-100000\", 11 bytes)",
        unit="bytes", source=("CodecOrSet/add_delta/size:100000", "encoded_bytes"),
        target=64, comparator="<="),
    "orset_remove_delta_encoded_bytes": dict(
        suite="codec", section="Encoded sizes",
        description="Encode() of the delta of one Remove from that set (no element: the "
                    "removed dot in the context)",
        unit="bytes", source=("CodecOrSet/add_delta/size:100000", "remove_encoded_bytes")),
    "orset_readd_delta_encoded_bytes": dict(
        suite="codec", section="Encoded sizes",
        description="Encode() of the delta of another replica re-adding a present element "
                    "(the new dot and the superseded one; two replica ids)",
        unit="bytes", source=("CodecOrSet/add_delta/size:100000", "readd_encoded_bytes")),
    "orset_state_encoded_bytes_per_element": dict(
        suite="codec", section="Encoded sizes", headline=True,
        description="Encode() of an OrSet<std::string> of 100,000 elements added by one "
                    "replica, per element; the payload is the element name, \"item-0\" to "
                    "\"item-99999\" (9.9 bytes on average, "
                    "`orset_state_payload_bytes_per_element`)",
        unit="bytes", source=("CodecOrSet/state/size:100000", "bytes_per_element"),
        reference="yjs: about 16 bytes per key plus the payload"),
    "orset_state_payload_bytes_per_element": dict(
        suite="codec", section="Encoded sizes",
        description="average element name length in that set (the payload)",
        unit="bytes", source=("CodecOrSet/state/size:100000", "payload_bytes_per_element")),
    "orset_state_encoded_overhead_bytes_per_element": dict(
        suite="codec", section="Encoded sizes",
        description="encoded bytes per element beyond its payload: key pointer and padding, "
                    "dot counter (packed Cap'n Proto)",
        unit="bytes", source=("CodecOrSet/state/size:100000", "overhead_bytes_per_element"),
        target=16, comparator="<=", reference="yjs: about 16 bytes per key plus the payload"),
    "cart_state_encoded_bytes_per_key": dict(
        suite="codec", section="Encoded sizes",
        description="Encode() of an OrMap<std::string, CausalCounter> of 100,000 keys "
                    "(\"item-N\"), each incremented once, per key",
        unit="bytes", source=("CodecCart/state/keys:100000", "bytes_per_key")),
    # --- codec: throughput ----------------------------------------------------
    "orset_encode_mb_per_s": dict(
        suite="codec", section="Encode and decode throughput", headline=True,
        description="Encode() of the 100,000-element OrSet<std::string> (canonical: keys "
                    "sorted), encoded MB per second",
        unit="MB/s", source=("CodecOrSet/encode/size:100000", "mb_per_s")),
    "orset_decode_mb_per_s": dict(
        suite="codec", section="Encode and decode throughput", headline=True,
        description="Decode() of those bytes as untrusted input: every invariant checked, "
                    "the state rebuilt, and re-encoded to check the canonical form",
        unit="MB/s", source=("CodecOrSet/decode/size:100000", "mb_per_s")),
    "orset_decode_trusted_mb_per_s": dict(
        suite="codec", section="Encode and decode throughput",
        description="Decode() with DecodeOptions::trusted (no canonical re-encode), for bytes "
                    "this process wrote itself",
        unit="MB/s", source=("CodecOrSet/decode_trusted/size:100000", "mb_per_s")),
    "orset_encode_ms": dict(
        suite="codec", section="Encode and decode throughput",
        description="time of one Encode() of the 100,000-element set",
        unit="ms", source=("CodecOrSet/encode/size:100000", "ns_per_op"), scale=1e-6),
    "orset_decode_ms": dict(
        suite="codec", section="Encode and decode throughput",
        description="time of one untrusted Decode() of it",
        unit="ms", source=("CodecOrSet/decode/size:100000", "ns_per_op"), scale=1e-6),
    "cart_encode_mb_per_s": dict(
        suite="codec", section="Encode and decode throughput",
        description="Encode() of the 100,000-key cart, MB per second",
        unit="MB/s", source=("CodecCart/encode/keys:100000", "mb_per_s")),
    "cart_decode_mb_per_s": dict(
        suite="codec", section="Encode and decode throughput",
        description="untrusted Decode() of the 100,000-key cart, MB per second",
        unit="MB/s", source=("CodecCart/decode/keys:100000", "mb_per_s")),
    # --- replication: gossip rounds against cluster size -------------------------
    **{f"gossip_{name}_n{nodes}{_fanout_suffix(fanout)}": dict(
        suite="replication", results="gossip", section="Gossip rounds against cluster size",
        headline=(nodes == 64 and fanout == 2 and name in ("rounds_p50", "rounds_max")),
        description=what.format(nodes=nodes, fanout=fanout),
        unit="rounds", source=(f"GossipRounds/nodes:{nodes}/fanout:{fanout}", counter),
        reference=(f"epidemic bound log_{fanout + 1}(N) + ln(N)/{fanout} = "
                   f"{_epidemic_bound(nodes, fanout):.2f} rounds; log2(N) = "
                   f"{math.log2(nodes):.0f}" if name == "rounds_max" else None))
       for nodes in _GOSSIP_SIZES for fanout in _GOSSIP_FANOUTS
       for name, counter, what in (
           ("rounds_p50", "rounds_p50",
            "{nodes} nodes, fanout {fanout}: gossip rounds (100 ms each) from one write until "
            "every node holds it, median over the seeds (converge-sim, no faults)"),
           ("rounds_max", "rounds_max",
            "the same, the most rounds any seed took"),
           ("epidemic_bound", "epidemic_bound",
            "rounds a push epidemic with fanout {fanout} needs to reach {nodes} nodes: "
            "log_(F+1)(N) + ln(N)/F (Pittel; Frieze and Grimmett), the theoretical reference"))},
    **{f"gossip_log2_n{nodes}": dict(
        suite="replication", results="gossip", section="Gossip rounds against cluster size",
        description=f"log2(N) for N = {nodes} (the order of rounds an epidemic needs)",
        unit="rounds", source=(f"GossipRounds/nodes:{nodes}/fanout:2", "log2_n"))
       for nodes in _GOSSIP_SIZES},
    **{f"gossip_rounds_vs_log2_n{nodes}{_fanout_suffix(fanout)}": dict(
        suite="replication", section="Gossip rounds against cluster size",
        headline=(nodes == 64 and fanout == 2),
        description=f"gossip_rounds_p50_n{nodes}{_fanout_suffix(fanout)} / "
                    f"gossip_log2_n{nodes}",
        unit="×", source=_ratio(f"gossip_rounds_p50_n{nodes}{_fanout_suffix(fanout)}",
                                f"gossip_log2_n{nodes}"))
       for nodes in _GOSSIP_SIZES for fanout in _GOSSIP_FANOUTS},
    **{f"gossip_rounds_max_vs_bound_n{nodes}{_fanout_suffix(fanout)}": dict(
        suite="replication", section="Gossip rounds against cluster size",
        description=f"gossip_rounds_max_n{nodes}{_fanout_suffix(fanout)} / "
                    f"gossip_epidemic_bound_n{nodes}{_fanout_suffix(fanout)}",
        unit="×", source=_ratio(f"gossip_rounds_max_n{nodes}{_fanout_suffix(fanout)}",
                                f"gossip_epidemic_bound_n{nodes}{_fanout_suffix(fanout)}"))
       for nodes in _GOSSIP_SIZES for fanout in _GOSSIP_FANOUTS},
    # --- replication: clusters of a thousand (issue 11) --------------------------
    **{f"sim_rounds_n{nodes}_f3_median": dict(
        suite="replication", results="gossip", section="Gossip rounds against cluster size",
        headline=nodes == 1024,
        description=f"{nodes} nodes, fanout 3 (the large-cluster membership: bounded member "
                    "changes, probes): gossip rounds from one write until every node holds "
                    "it, median over the seeds (converge-sim, no faults)",
        unit="rounds", source=(f"GossipRounds/nodes:{nodes}/fanout:3", "rounds_p50"),
        reference=(f"log_3(N) + ln(N)/2 = {math.log(nodes, 3) + math.log(nodes) / 2:.2f} rounds; "
                   "target: within 2 of it"))
       for nodes in (256, 1024)},
    **{f"sim_bytes_per_node_round_n{nodes}": dict(
        suite="replication", results="gossip", section="Gossip rounds against cluster size",
        headline=nodes == 1024,
        description=f"bytes a node sends per 100 ms round at rest in a {nodes}-node cluster, "
                    "fanout 3 (converge-sim's rest_bytes_per_node_round: the second half of "
                    "its settling period, mean over the seeds; gossip, probes, deltas, "
                    "anti-entropy and the periodic whole-list exchange)",
        unit="bytes", source=(f"GossipRounds/nodes:{nodes}/fanout:3",
                              "rest_bytes_per_node_round_mean"))
       for nodes in (64, 256, 1024)},
    "sim_bytes_per_node_round_n1024_vs_n64": dict(
        suite="replication", section="Gossip rounds against cluster size", headline=True,
        description="sim_bytes_per_node_round_n1024 / sim_bytes_per_node_round_n64: how what a "
                    "node sends at rest grows with the cluster (O(fanout), not O(N): about 1)",
        unit="×", source=_ratio("sim_bytes_per_node_round_n1024", "sim_bytes_per_node_round_n64")),
    # --- replication: anti-entropy against differing keys ------------------------
    **{f"ae_{name}_d{d}": dict(
        suite="replication", section="Anti-entropy against differing keys",
        headline=(name == "bytes" and d in (1, 10_000))
                 or (name == "bytes_per_differing_key" and d == 1_000),
        description=what.format(d=f"{d:,}", n=d, s="" if d == 1 else "s"),
        unit=unit, source=(f"ReplicationAe/differing:{d}", counter))
       for d in _AE_DIFFERING
       for name, counter, unit, what in (
           ("bytes", "ae_bytes", "bytes",
            "anti-entropy bytes both nodes sent until their digest trees were equal, node a "
            "holding {d} key{s} more than b (100,000 shared cart keys; 10,000 in a quick "
            "run; delta path disabled)"),
           ("messages", "ae_messages", "messages",
            "anti-entropy messages (frames) of that repair, both nodes"),
           ("bytes_per_differing_key", "ae_bytes_per_differing_key", "bytes",
            "ae_bytes_d{n} / {d}"))},
    **{f"ae_bytes_changed_d{d}": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description=f"the same with {d:,} key{'' if d == 1 else 's'} whose state differs (a "
                    "holds a newer one: one more increment) instead of keys b lacks",
        unit="bytes", source=(f"ReplicationAe/changed:{d}", "ae_bytes"))
       for d in _AE_DIFFERING},
    **{f"ae_bytes_per_changed_key_d{d}": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description=f"ae_bytes_changed_d{d} / {d:,}",
        unit="bytes", source=(f"ReplicationAe/changed:{d}", "ae_bytes_per_differing_key"))
       for d in _AE_DIFFERING},
    "ae_full_state_bytes": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="keys and encoded states node a holds after the d = 1 repair, summed: "
                    "what shipping its whole state would send (the reference a digest "
                    "exchange is read against)",
        unit="bytes", source=("ReplicationAe/differing:1", "full_state_bytes")),
    "ae_bytes_d1_vs_full_state": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="ae_bytes_d1 / ae_full_state_bytes",
        unit="×", source=_ratio("ae_bytes_d1", "ae_full_state_bytes")),
    "ae_bytes_in_sync_session": dict(
        suite="replication", section="Anti-entropy against differing keys", headline=True,
        description="anti-entropy bytes of one session between two replicas that hold the "
                    "same state (their roots compared; both nodes' messages)",
        unit="bytes", source=("ReplicationAe/in_sync", "ae_bytes_per_session")),
    "ae_messages_in_sync_session": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="messages of that session",
        unit="messages", source=("ReplicationAe/in_sync", "ae_messages_per_session")),
    "ae_bytes_d100_tenth_keys": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="ae_bytes_d100 with a tenth of the shared keys (10,000; 1,000 in a quick "
                    "run)",
        unit="bytes", source=("ReplicationAe/differing:100/tenth_keys", "ae_bytes")),
    "ae_bytes_d100_ten_times_keys": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="ae_bytes_d100 / ae_bytes_d100_tenth_keys: the same 100 differing keys "
                    "among 10× as many keys (1 if the cost did not depend on the key count)",
        unit="×", source=_ratio("ae_bytes_d100", "ae_bytes_d100_tenth_keys")),
    "ae_bytes_d10000_vs_d1": dict(
        suite="replication", section="Anti-entropy against differing keys",
        description="ae_bytes_d10000 / ae_bytes_d1 (10,000× the differing keys)",
        unit="×", source=_ratio("ae_bytes_d10000", "ae_bytes_d1")),
    # --- replication: bootstrap ---------------------------------------------------
    **{f"bootstrap_{suffix}_keys_{name}": dict(
        suite="replication", results="bootstrap", section="Bootstrap of a new replica",
        headline=headline and full,
        description=(("" if full else "quick run only, 100,000 keys (not 1,000,000): ")
                     + what.format(keys=f"{keys:,}")),
        unit=unit, source=(f"Bootstrap/keys:{keys}", counter),
        **({} if full else {"stands_in_for": f"bootstrap_1m_keys_{name}"}),
        **({"target": 10.0, "comparator": "<="} if name == "s" and full else {}),
        **({"reference": _AKKA} if name == "s" else {}))
       for keys, suffix, full in ((1_000_000, "1m", True), (100_000, "100k", False))
       for name, counter, unit, headline, what in (
           ("s", "seconds", "s", True,
            "a new, empty converge-node joins one holding {keys} cart keys over loopback "
            "TCP with mutual TLS and catches up completely (equal root and key count): wall "
            "time from its start"),
           ("mib", "mib", "MiB", True,
            "bytes the joiner's transport sent and received during the catch-up, both "
            "directions"),
           ("rss_mib_source", "rss_mib_source", "MiB", True,
            "peak RSS (VmHWM) of the source during the catch-up (reset after its load)"),
           ("rss_mib_joiner", "rss_mib_joiner", "MiB", True,
            "peak RSS (VmHWM) of the joiner"),
           ("cpu_s_source", "cpu_s_source", "s", False,
            "CPU time (user + system, all threads) of the source during the catch-up"),
           ("cpu_s_joiner", "cpu_s_joiner", "s", False,
            "CPU time of the joiner from its start until it caught up"),
           ("bytes_per_key", "bytes_per_key", "bytes", False,
            "bytes the joiner received per key"),
           ("load_s", "load_s", "s", False,
            "not part of the figure: time of `loadcarts` writing the {keys} keys into the "
            "source beforehand (one local update each, at most 256 in flight)"),
           ("rss_mib_source_load", "rss_mib_source_load", "MiB", False,
            "not part of the figure: peak RSS of the source at the end of that load"))},
    # --- cart HTTP -----------------------------------------------------------------
    **{name: dict(
        suite="cart_http", section="Throughput and latency against nginx",
        headline=headline, description=what, unit=unit, source=(benchmark, counter))
       for name, benchmark, counter, unit, headline, what in (
           ("cart_write_rps_buffered", "CartHttp/write/durability:buffered", "requests_per_s",
            "requests/s", True,
            "POST /carts/<id>/items (a JSON line, a new cart each request), one cart-server "
            "with --durability buffered, wrk -t2 -c32 (10 s; 3 s in a quick run)"),
           ("cart_write_p50_ms_buffered", "CartHttp/write/durability:buffered", "p50_ms", "ms",
            False, "median latency of those writes (wrk --latency)"),
           ("cart_write_p99_ms_buffered", "CartHttp/write/durability:buffered", "p99_ms", "ms",
            True, "99th percentile latency of those writes"),
           ("cart_write_server_cpu_us_buffered", "CartHttp/write/durability:buffered",
            "server_cpu_us_per_request", "µs", False,
            "CPU time of the cart-server process (all threads) per write"),
           ("cart_write_rps_sync", "CartHttp/write/durability:sync", "requests_per_s",
            "requests/s", True,
            "the same writes to a cart-server with --durability sync (a 2xx answer means "
            "the write is on disk)"),
           ("cart_write_p50_ms_sync", "CartHttp/write/durability:sync", "p50_ms", "ms", False,
            "median latency of those writes"),
           ("cart_write_p99_ms_sync", "CartHttp/write/durability:sync", "p99_ms", "ms", False,
            "99th percentile latency of those writes"),
           ("cart_write_server_cpu_us_sync", "CartHttp/write/durability:sync",
            "server_cpu_us_per_request", "µs", False,
            "CPU time of the cart-server process per synced write"),
           ("cart_read_rps", "CartHttp/read/durability:buffered", "requests_per_s",
            "requests/s", True,
            "GET /carts/<id> of random carts the buffered write run wrote, same server, "
            "wrk -t2 -c32"),
           ("cart_read_p50_ms", "CartHttp/read/durability:buffered", "p50_ms", "ms", False,
            "median latency of those reads"),
           ("cart_read_p99_ms", "CartHttp/read/durability:buffered", "p99_ms", "ms", False,
            "99th percentile latency of those reads"),
           ("cart_read_server_cpu_us", "CartHttp/read/durability:buffered",
            "server_cpu_us_per_request", "µs", False,
            "CPU time of the cart-server process per read"),
           ("nginx_static_rps", "NginxStatic/get", "requests_per_s", "requests/s", False,
            "nginx (Debian nginx-light, worker_processes auto) serving a static file of the "
            "size of a cart answer, same wrk, same machine, same run: the ceiling of an "
            "HTTP server on this box"),
           ("nginx_static_p50_ms", "NginxStatic/get", "p50_ms", "ms", False,
            "median latency of those requests"),
           ("nginx_static_p99_ms", "NginxStatic/get", "p99_ms", "ms", False,
            "99th percentile latency of those requests"),
           ("nginx_static_server_cpu_us", "NginxStatic/get", "server_cpu_us_per_request", "µs",
            False, "CPU time of nginx (master and workers) per request"))},
    "cart_read_vs_nginx": dict(
        suite="cart_http", section="Throughput and latency against nginx", headline=True,
        description="cart_read_rps / nginx_static_rps",
        unit="×", source=_ratio("cart_read_rps", "nginx_static_rps")),
    "cart_write_buffered_vs_nginx": dict(
        suite="cart_http", section="Throughput and latency against nginx", headline=True,
        description="cart_write_rps_buffered / nginx_static_rps",
        unit="×", source=_ratio("cart_write_rps_buffered", "nginx_static_rps")),
    "cart_write_sync_vs_nginx": dict(
        suite="cart_http", section="Throughput and latency against nginx",
        description="cart_write_rps_sync / nginx_static_rps",
        unit="×", source=_ratio("cart_write_rps_sync", "nginx_static_rps")),
    "cart_write_sync_vs_buffered": dict(
        suite="cart_http", section="Throughput and latency against nginx",
        description="cart_write_rps_sync / cart_write_rps_buffered",
        unit="×", source=_ratio("cart_write_rps_sync", "cart_write_rps_buffered")),
    # --- cart contexts ---------------------------------------------------------
    **{f"cart_context_bytes_{p}": dict(
        suite="cart", section="Context sizes over a realistic run", headline=p == "p50",
        description=f"{p} of the contexts part of a cart's sealed context (codec::EncodeContexts: "
                    "the dots of every line) over every read of 2,000 shopping sessions of "
                    "1-12 lines written at 3 replicas",
        unit="bytes", source=("CartContext/realistic/sessions:2000", f"context_bytes_{p}"))
       for p in ("p50", "p99", "max")},
    **{f"cart_context_token_chars_{p}": dict(
        suite="cart", section="Context sizes over a realistic run", headline=p == "p50",
        description=f"{p} of the whole token (version, key id, contexts, 128-bit seal; base64) "
                    "as the Cart-Context header carries it, same reads",
        unit="characters", source=("CartContext/realistic/sessions:2000", f"token_chars_{p}"),
        **(dict(target=6144, comparator="<=") if p == "max" else {}))
       for p in ("p50", "p99", "max")},
    "cart_delete_with_context_us": dict(
        suite="cart", section="Delete with a context", headline=True,
        description="a delete of one line of a 10-line cart written at 3 replicas, with its "
                    "context: opening the token (HMAC-SHA256, decode) and Remove(sku, seen)",
        unit="µs", source=("CartDelete/with_context", "ns_per_op"), scale=1e-3),
    "cart_delete_without_context_us": dict(
        suite="cart", section="Delete with a context",
        description="the same delete without a context: Remove(sku)",
        unit="µs", source=("CartDelete/without_context", "ns_per_op"), scale=1e-3),
    "cart_context_open_us": dict(
        suite="cart", section="Delete with a context",
        description="opening the token alone (the share of the delete the seal and decode take)",
        unit="µs", source=("CartDelete/open_only", "ns_per_op"), scale=1e-3),
}

# Tables of figures, shown in their section, and the data of its plots.
# A series is either a value against a size (rows: (x, suffix), columns:
# figure-name patterns with "{}" for the suffix) or, with kind="categories",
# a few named cases side by side (rows: (label, [figure name per column])).
# `plot` (optional) draws it with gnuplot into docs/benchmarks/<file>:
#   file      PNG name
#   columns   the columns plotted (default: all)
#   logx, logy, y_label, style ("lines" or "bars"), logx_base (default 10),
#   key (gnuplot key position, default "top left"), reference_columns
#   (columns drawn as dashed lines: references, not measurements)
SERIES = {
    "orset_add_by_size": dict(
        suite="crdt", section="OrSet add",
        title="OrSet<std::string> add: cost per add against set size",
        x_label="set size",
        columns={"sequential adds from empty (ns/add)": "orset_add_ns_at_{}",
                 "one add at that size (ns/add)": "orset_add_marginal_ns_at_{}"},
        rows=[(1_000, "1k"), (10_000, "10k"), (100_000, "100k"), (1_000_000, "1m")],
        plot=dict(file="orset_add_cost.png", logx=True, y_label="ns per add")),
    "orset_add_work_by_size": dict(
        suite="crdt", section="OrSet add",
        title="OrSet<std::string> add: wall-clock time, instructions and simulated cache "
              "misses per add against set size",
        x_label="set size",
        columns={"one add at that size (ns/add)": "orset_add_marginal_ns_at_{}",
                 "instructions/add, reserved": "orset_add_instructions_at_{}",
                 "instructions/add, no reserve": "orset_add_instructions_unreserved_at_{}",
                 "simulated L2 misses/add": "orset_add_l2_misses_at_{}",
                 "simulated L3 misses/add": "orset_add_l3_misses_at_{}",
                 "heap of the set (bytes)": "orset_heap_bytes_at_{}"},
        rows=[(1_000, "1k"), (10_000, "10k"), (100_000, "100k"), (1_000_000, "1m")]),
    "orset_join_by_size": dict(
        suite="crdt", section="OrSet join",
        title="OrSet<std::string> join of two n-element sets (disjoint elements)",
        x_label="elements per side",
        columns={"join (ms)": "orset_join_ms_at_{}"},
        rows=[(1_000, "1k"), (10_000, "10k"), (50_000, "50k"), (100_000, "100k"),
              (500_000, "500k")],
        plot=dict(file="orset_join_time.png", logx=True, logy=True, y_label="ms per join")),
    "ormap_update_by_increments": dict(
        suite="crdt", section="Counters and maps",
        title="OrMap<std::string, CausalCounter> update against the increments each key "
              "received before (10,000 keys)",
        x_label="increments per key before",
        columns={"update (ns)": "ormap_update_ns_10k_keys_{}",
                 "dots held per key": "ormap_dots_per_key_10k_keys_{}"},
        rows=[(1, "1_inc"), (10, "10_incs"), (100, "100_incs")]),
    "storage_vs_rocksdb": dict(
        kind="categories", suite="storage", section="Synced writes",
        title="Persisted cart updates against raw RocksDB (db_bench fillrandom), same run",
        x_label="configuration",
        columns={"converge storage::Update (updates/s)": 0,
                 "raw RocksDB db_bench (ops/s)": 1,
                 "converge / raw": 2},
        rows=[("buffered, 1 writer", ["persisted_buffered_per_s", "rocksdb_raw_fillrandom_per_s",
                                      "persisted_buffered_vs_rocksdb_raw"]),
              ("sync, 1 writer", ["persisted_sync1_per_s", "rocksdb_raw_sync1_per_s",
                                  "persisted_sync1_vs_rocksdb_sync1"]),
              ("sync, 4 writers", ["persisted_sync4_per_s", "rocksdb_raw_sync4_per_s",
                                   "persisted_sync4_vs_rocksdb_sync4"])],
        plot=dict(file="storage_vs_rocksdb.png", style="bars", logy=True, key="top right",
                  columns=["converge storage::Update (updates/s)",
                           "raw RocksDB db_bench (ops/s)"],
                  y_label="writes per second")),
    "gossip_rounds_by_size": dict(
        suite="replication", section="Gossip rounds against cluster size",
        title="Gossip rounds from one write until every node holds it, against cluster size",
        x_label="nodes (N)",
        columns={"p50, fanout 2": "gossip_rounds_p50_n{}",
                 "max, fanout 2": "gossip_rounds_max_n{}",
                 "epidemic bound, fanout 2": "gossip_epidemic_bound_n{}",
                 "p50, fanout 3": "gossip_rounds_p50_n{}_f3",
                 "max, fanout 3": "gossip_rounds_max_n{}_f3",
                 "epidemic bound, fanout 3": "gossip_epidemic_bound_n{}_f3",
                 "log2 N": "gossip_log2_n{}"},
        rows=[(n, str(n)) for n in _GOSSIP_SIZES],
        plot=dict(file="gossip_rounds.png", logx=True, logx_base=2, y_label="gossip rounds",
                  reference_columns=["epidemic bound, fanout 2", "epidemic bound, fanout 3",
                                     "log2 N"])),
    "ae_bytes_by_differing": dict(
        suite="replication", section="Anti-entropy against differing keys",
        title="Anti-entropy bytes and messages until two replicas are equal, against the "
              "keys that differ (delta path disabled)",
        x_label="differing keys (d)",
        columns={"bytes, a holds d keys more": "ae_bytes_d{}",
                 "bytes per differing key": "ae_bytes_per_differing_key_d{}",
                 "messages": "ae_messages_d{}",
                 "bytes, a holds d newer states": "ae_bytes_changed_d{}",
                 "bytes per changed key": "ae_bytes_per_changed_key_d{}"},
        rows=[(d, str(d)) for d in _AE_DIFFERING],
        plot=dict(file="ae_bytes.png", logx=True, logy=True, y_label="bytes",
                  columns=["bytes, a holds d keys more", "bytes per differing key",
                           "bytes, a holds d newer states", "bytes per changed key"])),
    "cart_http_vs_nginx": dict(
        kind="categories", suite="cart_http", section="Throughput and latency against nginx",
        title="cart-server against nginx: requests per second and latency, same wrk, same run",
        x_label="server and request",
        columns={"requests/s": 0, "p50 (ms)": 1, "p99 (ms)": 2, "server CPU per request (µs)": 3},
        rows=[("cart POST, buffered", ["cart_write_rps_buffered", "cart_write_p50_ms_buffered",
                                       "cart_write_p99_ms_buffered",
                                       "cart_write_server_cpu_us_buffered"]),
              ("cart POST, sync", ["cart_write_rps_sync", "cart_write_p50_ms_sync",
                                   "cart_write_p99_ms_sync", "cart_write_server_cpu_us_sync"]),
              ("cart GET", ["cart_read_rps", "cart_read_p50_ms", "cart_read_p99_ms",
                            "cart_read_server_cpu_us"]),
              ("nginx static file", ["nginx_static_rps", "nginx_static_p50_ms",
                                     "nginx_static_p99_ms", "nginx_static_server_cpu_us"])],
        plot=dict(file="cart_http_vs_nginx.png", style="bars", logy=True,
                  columns=["requests/s"], y_label="requests per second")),
}
# Published figures of other systems, read against a figure of this run.
# Why a figure that misses its target misses it: what profiling showed and
# what bounds it (printed under "Targets missed" when the figure misses).
WHAT_LIMITS = {
    "bootstrap_1m_keys_s": (
        "the joiner. The source streams states in key order and spends about 1 s of CPU; the "
        "joiner applies them on its one executor thread and is CPU-bound for the whole catch-up "
        "(`bootstrap_1m_keys_cpu_s_joiner` is within a few percent of the wall time). `perf "
        "record` of the joiner (2026-12-02): about 38 % in RocksDB's write path (memtable "
        "skip-list inserts of the state and of its digest-index entry, the WAL append), about "
        "25 % in Cap'n Proto (unpacking the frame, then decoding and validating each state, "
        "which untrusted input needs), about 8 % malloc/free, the rest the join, digest and "
        "tree upkeep. Writing each batch's digest-index entries in leaf order cut the joiner "
        "from 13.0 to 10.1 s of CPU on a busy machine (the random-order inserts were a fifth "
        "of it); what is left is per-key work that a single thread does at about 100,000 "
        "keys/s. Going under 10 s needs the apply split over threads (decode and validate "
        "beside the writer) or states ingested as sorted SST files instead of memtable writes."),
    "orset_join_50k_ms": (
        "the median of five repetitions was 2 % above 10 ms with a spread (CV) of 6.7 % "
        "between them (2026-12-02), so the target is met or missed by noise. The time per "
        "element of the two inputs grows with size as the sets outgrow the caches (about 35 ns "
        "at 1,000 elements, 100 ns at 50,000, 150 ns at 100,000, 250 ns at 500,000: "
        "`orset_join_ms_at_*`), which is memory latency in building the result's index, not "
        "extra work; it was not profiled further in this round."),
}

REFERENCES = [
    dict(system=BAQUERO, what="100,000 OR-set adds (each add scans the set)",
         value=28.9, unit="s", figure="orset_add_per_s",
         ours=lambda f: 100_000 / f["orset_add_per_s"], ours_unit="s",
         note="{:,.0f}× faster"),
    dict(system=BAQUERO, what="join of two 50,000-element OR-sets",
         value=59, unit="ms", figure="orset_join_50k_ms",
         ours=lambda f: f["orset_join_50k_ms"], ours_unit="ms", note="{:,.1f}× faster"),
    dict(system="npm delta-crdts", what="100,000 OR-set adds",
         value=None, text="does not finish in reasonable time", figure="orset_add_per_s",
         ours=lambda f: 100_000 / f["orset_add_per_s"], ours_unit="s", note=None),
    dict(system="npm delta-crdts", what="size of the delta one add returns",
         value=None, text="the whole state (100,000 elements at 100,000)",
         figure="orset_add_delta_elements",
         ours=lambda f: f["orset_add_delta_elements"], ours_unit="elements", note=None),
    dict(system="Akka Distributed Data", what="a new node receiving 100,000 entries",
         value=None, text="tens of seconds (documented)", figure="bootstrap_100k_keys_s",
         ours=lambda f: f["bootstrap_100k_keys_s"], ours_unit="s (100,000 keys, quick run)",
         note=None),
    dict(system="Akka Distributed Data", what="a new node receiving 100,000 entries",
         value=None, text="tens of seconds (documented)", figure="bootstrap_1m_keys_s",
         ours=lambda f: f["bootstrap_1m_keys_s"], ours_unit="s for 1,000,000 keys",
         note=None),
    dict(system="yjs", what="join of two 50,000-key documents",
         value=318, unit="ms", figure="orset_join_50k_ms",
         ours=lambda f: f["orset_join_50k_ms"], ours_unit="ms", note="{:,.1f}× faster"),
    dict(system="yjs", what="encoded size of a key beyond its payload",
         value=16, unit="bytes", figure="orset_state_encoded_overhead_bytes_per_element",
         ours=lambda f: f["orset_state_encoded_overhead_bytes_per_element"], ours_unit="bytes",
         note="{:,.1f}× smaller"),
]

# ---------------------------------------------------------------------------
# Loading results.

_SUFFIX = re.compile(r"/(manual_time|real_time|process_time|iterations:\d+|repeats:\d+|"
                     r"threads:\d+|min_time:[0-9.]+s?|min_warmup_time:[0-9.]+s?)$")


def base_name(run_name: str) -> str:
    while True:
        stripped = _SUFFIX.sub("", run_name)
        if stripped == run_name:
            return run_name
        run_name = stripped


class SuiteResults:
    """The iteration runs of one suite, grouped by benchmark."""

    def __init__(self, path: Path):
        self.path = path
        self.context: dict = {}
        self.runs: dict[str, list[dict]] = {}
        self.errors: dict[str, str] = {}
        if not path.exists():
            return
        text = path.read_text()
        if not text.strip():
            return  # Google Benchmark leaves the file empty when --filter matched nothing
        data = json.loads(text)
        self.context = data.get("context", {})
        for run in data.get("benchmarks", []):
            name = base_name(run.get("run_name", run.get("name", "")))
            if run.get("error_occurred"):
                self.errors[name] = run.get("error_message", "error")
                continue
            if run.get("run_type", "iteration") != "iteration":
                continue  # aggregates are recomputed from the repetitions
            self.runs.setdefault(name, []).append(run)

    def values(self, benchmark: str, counter: str) -> list[float]:
        out = []
        for run in self.runs.get(benchmark, []):
            value = run.get(counter)
            if isinstance(value, (int, float)) and math.isfinite(value):
                out.append(float(value))
        return out


def load_results(results_dir: Path) -> dict[str, SuiteResults]:
    return {key: SuiteResults(results_dir / suite["results"]) for key, suite in SUITES.items()}


# ---------------------------------------------------------------------------
# Computing figures.


class Figure:
    def __init__(self, name: str, spec: dict):
        self.name = name
        self.suite = spec["suite"]
        self.results_key = spec.get("results", self.suite)
        self.section = spec["section"]
        self.description = spec["description"]
        self.unit = spec["unit"]
        self.source = spec["source"]
        self.scale = spec.get("scale", 1.0)
        self.target = spec.get("target")  # number, or resolved from a figure name
        self.target_figure = self.target if isinstance(self.target, str) else None
        self.target_scale = spec.get("target_scale", 1.0)
        self.comparator = spec.get("comparator")
        self.reference = spec.get("reference")
        self.headline = spec.get("headline", False)
        # A smaller run's figure shown in the summary when the one it stands
        # in for (a headline of the full run) was not measured.
        self.stands_in_for = spec.get("stands_in_for")
        self.value: float | None = None
        self.cpu_value: float | None = None  # same figure from thread CPU time
        self.cv: float | None = None  # coefficient of variation over repetitions
        self.repetitions = 0
        self.error: str | None = None
        if self.target is not None and self.comparator not in (">=", "<="):
            raise ValueError(f"figure {name}: comparator must be '>=' or '<='")

    @property
    def derived(self) -> bool:
        return callable(self.source)

    def wall_over_cpu(self) -> float | None:
        """How much longer the wall-clock time was than the thread's CPU time."""
        if self.derived or self.value is None or not self.cpu_value:
            return None
        counter = self.source[1]
        if counter == "ns_per_op":
            return self.value / self.cpu_value
        if counter == "ops_per_s" and self.value > 0:
            return self.cpu_value / self.value
        return None

    def contended(self) -> bool:
        ratio = self.wall_over_cpu()
        return ratio is not None and ratio > CONTENDED

    def status(self) -> str:
        if self.value is None:
            return "not measured"
        if self.target is None:
            return "no reference" if self.target_figure is not None else "—"
        ok = self.value >= self.target if self.comparator == ">=" else self.value <= self.target
        return "meets" if ok else "misses"

    def target_text(self) -> str:
        sign = "≥" if self.comparator == ">=" else "≤"
        if self.target_figure is not None:
            scale = "" if self.target_scale == 1 else f"{fmt(self.target_scale)} × "
            value = "" if self.target is None else f" = {fmt(self.target)} {self.unit}"
            return f"{sign} {scale}`{self.target_figure}`{value}"
        if self.target is None:
            return "—"
        return f"{sign} {fmt(self.target)} {self.unit}"


def _cpu_equivalent(results: SuiteResults, benchmark: str, counter: str, scale: float):
    """The figure recomputed from thread CPU time, for time-based counters."""
    cpu = results.values(benchmark, "cpu_ns_per_op")
    if not cpu:
        return None
    median = statistics.median(cpu)
    if counter == "ns_per_op":
        return median * scale
    if counter == "ops_per_s" and median > 0:
        return 1e9 / median * scale
    return None


def compute_figures(results: dict[str, SuiteResults]) -> dict[str, Figure]:
    figures = {name: Figure(name, spec) for name, spec in FIGURES.items()}
    for figure in figures.values():
        if figure.derived:
            continue
        if figure.results_key not in results:
            raise ValueError(f"figure {figure.name}: unknown suite {figure.results_key}")
        suite = results[figure.results_key]
        benchmark, counter = figure.source
        if benchmark in suite.errors:
            figure.error = suite.errors[benchmark]
            continue
        values = suite.values(benchmark, counter)
        if not values:
            continue
        figure.repetitions = len(values)
        figure.value = statistics.median(values) * figure.scale
        if len(values) >= 2 and statistics.fmean(values) != 0:
            figure.cv = statistics.stdev(values) / abs(statistics.fmean(values))
        figure.cpu_value = _cpu_equivalent(suite, benchmark, counter, figure.scale)
    values = {name: f.value for name, f in figures.items()}
    cpu_values = {name: (f.cpu_value if f.cpu_value is not None else f.value)
                  for name, f in figures.items()}
    for figure in figures.values():
        if figure.derived:
            figure.value = figure.source(values)
            inputs = getattr(figure.source, "inputs", None)
            timed = inputs is None or any(
                figures[name].cpu_value is not None for name in inputs if name in figures)
            if figure.value is not None and timed:
                figure.cpu_value = figure.source(cpu_values)
    for figure in figures.values():
        if figure.target_figure is not None:
            if figure.target_figure not in figures:
                raise ValueError(f"figure {figure.name}: unknown target {figure.target_figure}")
            reference = figures[figure.target_figure].value
            figure.target = None if reference is None else reference * figure.target_scale
    return figures


# ---------------------------------------------------------------------------
# Formatting.


def fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    magnitude = abs(value)
    if magnitude >= 1000 or (magnitude >= 1 and float(value).is_integer()):
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def value_text(figure: Figure) -> str:
    if figure.value is None:
        return "error: " + figure.error if figure.error else "not measured"
    return f"{fmt(figure.value)} {figure.unit}"


def status_text(figure: Figure) -> str:
    status = figure.status()
    return "**misses**" if status == "misses" else status


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def figure_rows(figures: list[Figure], detail: bool) -> list[list[str]]:
    rows = []
    for f in figures:
        row = [f"`{f.name}`", f.description, value_text(f), f.target_text(),
               f.reference or "—", status_text(f)]
        if detail:
            cpu = "—" if f.cpu_value is None or f.value is None else f"{fmt(f.cpu_value)}"
            if f.contended():
                cpu += " (busy CPU)"
            cv = "—" if f.cv is None else f"{100 * f.cv:.1f} %"
            row += [cpu, cv]
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# The report.


def machine_lines(run_info: dict, results: dict[str, SuiteResults]) -> list[str]:
    # The machine as Google Benchmark recorded it (the callgrind results file
    # has a context of its own, without these keys).
    context = next((r.context for r in results.values()
                    if isinstance(r.context.get("caches"), list)), {})
    cpu_model = run_info.get("cpu_model") or read_cpu_model()
    nproc = run_info.get("nproc") or os.cpu_count()
    caches = ", ".join(
        f"L{c['level']} {c['type'].lower()} {c['size'] // 1024} KiB"
        + (f" ×{context.get('num_cpus', 1) // c['num_sharing']}" if c.get("num_sharing") else "")
        for c in context.get("caches", []))
    load = context.get("load_avg") or run_info.get("load_avg")
    lines = [
        f"- Command: `{run_info.get('command', 'bench/report.py')}`",
        f"- Date: {context.get('date') or run_info.get('date', 'unknown')}",
        f"- Source: commit {run_info.get('commit', 'unknown')}"
        + (f"; not yet committed: {', '.join(run_info['changed_files'])}"
           if run_info.get("changed_files")
           else "; crdt/, storage/, replication/, examples/cart/, bench/ and the build files "
                "as committed"),
        f"- Machine: {nproc} CPUs (nproc), {cpu_model}"
        + (f", {context['mhz_per_cpu']} MHz" if context.get("mhz_per_cpu") else "")
        + (f"; {caches}" if caches else ""),
        f"- Kernel: {run_info.get('kernel', 'unknown')}",
        f"- Compiler: {context.get('converge_compiler', run_info.get('compiler', 'unknown'))}, "
        f"CMAKE_BUILD_TYPE={context.get('converge_build_type', '?')} "
        f"(flags `{context.get('converge_cxx_flags', '?').strip()}`, assertions "
        f"{context.get('converge_assertions', '?')})",
        f"- Google Benchmark library build type: {context.get('library_build_type', '?')} "
        "(affects only its own loop, not the manually timed regions)",
        f"- Mode: {run_info.get('mode', context.get('converge_mode', '?'))}"
        + (f"; {run_info['mode_detail']}" if run_info.get("mode_detail") else ""),
    ]
    if load:
        lines.append("- Load average when the run started: "
                     + ", ".join(f"{x:.2f}" for x in load))
    if run_info.get("elapsed_seconds") is not None:
        s = int(run_info["elapsed_seconds"])
        lines.append(f"- Duration of the run (build included): {s // 60} min {s % 60:02d} s")
    callgrind = results.get("callgrind")
    if callgrind is not None and callgrind.context:
        cg = callgrind.context
        lines.append("- Callgrind counts: " + (
            f"not measured: {cg['skipped']}" if cg.get("skipped") else
            f"{cg.get('valgrind', 'valgrind')}, {cg.get('adds_per_run', '?'):,} measured adds "
            "per run" + (f"; cache model {'; '.join(f'{k}: `{v}`' for k, v in cg['cache_simulation'].items())}"
                         if cg.get("cache_simulation") else "")))
    if context.get("converge_optimized") == "no":
        lines.append("- **Warning: the benchmark binary was built without optimization.**")
    return lines


def contention_note(figures: dict[str, Figure]) -> list[str]:
    """Warns when wall-clock time ran well ahead of CPU time (a busy machine)."""
    timed = [f for f in figures.values() if f.wall_over_cpu() is not None]
    if not timed:
        return []
    busy = [f for f in timed if f.contended()]
    if not busy:
        return [f"Wall-clock and thread CPU time agree within {100 * (CONTENDED - 1):.0f} % "
                f"for every timed figure: nothing else competed for the CPU."]
    worst = max(f.wall_over_cpu() for f in busy)
    return [f"**Part of this run shared the CPU with other work**: for {len(busy)} of "
            f"{len(timed)} timed figures the wall-clock time exceeded the thread's CPU time by "
            f"more than {100 * (CONTENDED - 1):.0f} % (up to {worst:.2f}×); they are marked "
            "\"busy CPU\" below. Values and status use wall-clock time; the CPU-time column "
            "gives the same figure from the thread's CPU time. Fresh memory that the "
            "hypervisor has to back also shows as wall time only."]


def run_warnings(run_info: dict) -> list[str]:
    """What a reader must know before any figure: a quick run, a loaded machine."""
    out = []
    nproc = run_info.get("nproc") or os.cpu_count() or 1
    load = (run_info.get("load_avg") or [None])[0]
    loaded = load is not None and load >= 0.5
    if run_info.get("mode") == "quick":
        out.append("> **This is a quick run** (`bench/run --quick`): smaller sizes, short "
                   "runs and no repetitions (see \"Mode\" below for what was scaled down); "
                   "figures that need the full sizes say \"not measured\". "
                   + ("**It ran on a loaded machine** (load average "
                      f"{load:.2f} on {nproc} CPUs when it started): other processes "
                      "competed for the CPUs and the disk, so wall-clock figures are "
                      "inflated and noisy; deterministic counts (bytes, messages, rounds, "
                      "instructions) are not affected. " if loaded else "")
                   + "A full `bench/run` on a quiet machine replaces this report.")
    elif loaded:
        out.append(f"> **This run started on a loaded machine** (load average {load:.2f} on "
                   f"{nproc} CPUs): wall-clock figures may be inflated; deterministic counts "
                   "(bytes, messages, rounds, instructions) are not affected.")
    return out


def render(figures: dict[str, Figure], results: dict[str, SuiteResults],
           run_info: dict, plots: dict[str, str] | None = None) -> str:
    out = ["# Benchmarks", "",
           "<!-- Generated by bench/report.py from the results of bench/run; do not edit. -->",
           ""]
    warnings = run_warnings(run_info)
    if warnings:
        out += warnings + [""]
    out += ["Regenerate with `bench/run` (a full run: every size, each benchmark repeated, "
            "medians reported) or `bench/run --quick` (fewer sizes, no repetitions, under 5 "
            "minutes). The figure names are those of `bench/run --json FILE`.",
            "", "## How this report was produced", ""]
    out += machine_lines(run_info, results)
    out += [""] + contention_note(figures)

    out += ["", "## Summary", ""]
    headline = []
    for f in figures.values():
        if not f.headline:
            continue
        headline.append(f)
        if f.value is None:
            headline += [g for g in figures.values()
                         if g.stands_in_for == f.name and g.value is not None]
    out += md_table(["Figure", "What", "Value", "Target", "Reference", "Status"],
                    figure_rows(headline, detail=False))
    missed = [f.name for f in headline if f.status() == "misses"]
    out += ["", ("Targets missed: " + ", ".join(f"`{m}`" for m in missed) + ".")
            if missed else "Every target is met."]
    for m in missed:
        if m in WHAT_LIMITS:
            out += ["", f"What limits `{m}`: {WHAT_LIMITS[m]}"]

    out += ["", "## Reference points", "",
            "Published figures of other implementations, as quoted in the issue that set the "
            "targets. They were measured on other machines and are not re-run here; read them "
            "as orders of magnitude.", ""]
    rows = []
    for ref in REFERENCES:
        theirs = ref.get("text") or f"{fmt(ref['value'])} {ref['unit']}"
        try:
            ours_value = ref["ours"]({n: f.value for n, f in figures.items()})
        except (TypeError, ZeroDivisionError):
            ours_value = None
        ours = "not measured" if ours_value is None else f"{fmt(ours_value)} {ref['ours_unit']}"
        comparison = "—"
        if ours_value and ref.get("value") and ref.get("note"):
            comparison = ref["note"].format(ref["value"] / ours_value)
        rows.append([ref["system"], ref["what"], theirs, ours + f" (`{ref['figure']}`)",
                     comparison])
    out += md_table(["System", "Measurement", "Published", "converge, this run", "Comparison"],
                    rows)

    for suite_key, suite in SUITES.items():
        if not suite["sections"]:
            continue  # its figures are shown in another suite's sections
        sources = [suite["binary"]] + [
            other["binary"] for key, other in SUITES.items()
            if key != suite_key and any(f.suite == suite_key and f.results_key == key
                                        for f in figures.values())]
        out += ["", f"## {suite['title']}", "", f"Source: {'; '.join(sources)}."]
        errors = results[suite_key].errors
        if errors:
            out += ["", "Benchmarks that reported an error:"]
            out += [f"- `{name}`: {message}" for name, message in errors.items()]
        for section in suite["sections"]:
            in_section = [f for f in figures.values()
                          if f.suite == suite_key and f.section == section]
            out += ["", f"### {section}", ""]
            out += md_table(["Figure", "What", "Value", "Target", "Reference", "Status",
                             "CPU-time value", "Spread (CV)"],
                            figure_rows(in_section, detail=True))
            for series in SERIES.values():
                if series["suite"] == suite_key and series["section"] == section:
                    out += [""] + render_series(series, figures, plots)
            out += section_notes(suite_key, section, figures, results)

    out += ["", "## Method", ""] + METHOD_NOTES
    return "\n".join(out) + "\n"


def series_table(series: dict, figures: dict[str, Figure]) -> tuple[list[str], list[list]]:
    """The x labels and, per column, the values (None: not measured)."""
    labels, values = [], []
    categories = series.get("kind") == "categories"
    for x, key in series["rows"]:
        labels.append(x if categories else f"{x:,}")
        row = []
        for column in series["columns"].values():
            name = key[column] if categories else column.format(key)
            f = figures.get(name)
            row.append(None if f is None else f.value)
        values.append(row)
    return labels, values


def render_series(series: dict, figures: dict[str, Figure],
                  plots: dict[str, str] | None = None) -> list[str]:
    header = [series["x_label"]] + list(series["columns"])
    labels, values = series_table(series, figures)
    rows = [[label] + ["not measured" if v is None else fmt(v) for v in row]
            for label, row in zip(labels, values)]
    out = [f"**{series['title']}**", ""] + md_table(header, rows)
    plot = series.get("plot")
    if plot and plots is not None:
        link = plots.get(plot["file"])
        if link is None:
            pass
        elif link.startswith("not drawn"):
            out += ["", f"Plot `{plot['file']}` {link}."]
        else:
            out += ["", f"![{series['title']}]({link})"]
    return out


# ---------------------------------------------------------------------------
# Plots (gnuplot).


def _gnuplot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draw_plots(figures: dict[str, Figure], plot_dir: Path, link_prefix: str,
               gnuplot: str | None) -> dict[str, str]:
    """Draws every SERIES plot into plot_dir; returns, per file, the link to
    put in the report, or "not drawn: <why>"."""
    import shutil
    import subprocess
    import tempfile

    wanted = {series["plot"]["file"]: series for series in SERIES.values() if series.get("plot")}
    if not wanted:
        return {}
    if gnuplot == "none":
        return {f: "not drawn: plots were turned off (--gnuplot none)" for f in wanted}
    gnuplot = gnuplot if gnuplot is not None else shutil.which("gnuplot")
    if not gnuplot:
        return {f: "not drawn: gnuplot is not installed (Debian: apt-get install gnuplot-nox)"
                for f in wanted}
    plot_dir.mkdir(parents=True, exist_ok=True)
    links = {}
    for file, series in wanted.items():
        spec = series["plot"]
        target = plot_dir / file
        labels, values = series_table(series, figures)
        names = list(series["columns"])
        shown = spec.get("columns") or names
        indexes = [names.index(c) for c in shown]
        logy = spec.get("logy", False)
        usable = [[v if v is not None and (not logy or v > 0) else None
                   for v in (row[i] for i in indexes)] for row in values]
        if not any(v is not None for row in usable for v in row):
            target.unlink(missing_ok=True)  # no stale plot of another run
            links[file] = "not drawn: nothing it shows was measured in this run"
            continue
        bars = spec.get("style") == "bars"
        with tempfile.TemporaryDirectory(prefix="converge-plot-") as tmp:
            data = Path(tmp) / "data.tsv"
            lines = []
            for label, row, raw in zip(labels, usable, series["rows"]):
                x = _gnuplot_quote(label) if bars else str(raw[0])
                lines.append("\t".join([x] + ["?" if v is None else repr(float(v))
                                             for v in row]))
            data.write_text("\n".join(lines) + "\n")
            script = [
                "set terminal pngcairo size 900,540 enhanced font 'Sans,10'",
                f"set output {_gnuplot_quote(str(target))}",
                f"set title {_gnuplot_quote(series['title'])} noenhanced",
                f"set xlabel {_gnuplot_quote(series['x_label'])} noenhanced",
                f"set ylabel {_gnuplot_quote(spec.get('y_label', ''))} noenhanced",
                "set datafile separator tab",
                "set datafile missing '?'",
                f"set key {spec.get('key', 'top left')} noenhanced",
                "set grid ytics",
            ]
            if len(shown) == 1:
                script.append("unset key")
            if logy:
                script += ["set logscale y", "set format y '10^{%T}'"]
            if bars:
                script += ["set style data histograms", "set style histogram clustered gap 1",
                           "set style fill solid 0.8 border -1", "set boxwidth 0.9",
                           "set xtics noenhanced", "set yrange [*:*]"]
                if not logy:
                    script.append("set yrange [0:*]")
                plots = [f"{_gnuplot_quote(str(data))} using {i + 2}:xtic(1) title "
                         f"{_gnuplot_quote(name)}" for i, name in enumerate(shown)]
            else:
                if spec.get("logx"):
                    script.append(f"set logscale x {spec.get('logx_base', 10)}")
                xs = [raw[0] for raw in series["rows"]]
                script.append("set xtics (" + ", ".join(
                    f"{_gnuplot_quote(f'{x:,}')} {x}" for x in xs) + ")")
                script.append("set offsets graph 0.03, graph 0.03, graph 0.05, graph 0.05")
                references = spec.get("reference_columns", [])
                plots = [f"{_gnuplot_quote(str(data))} using 1:{i + 2} "
                         + ("with lines lw 1.5 dt 2 " if name in references
                            else "with linespoints lw 2 pt 7 ")
                         + f"title {_gnuplot_quote(name)}"
                         for i, name in enumerate(shown)]
            script.append("plot " + ", \\\n     ".join(plots))
            (Path(tmp) / "plot.gp").write_text("\n".join(script) + "\n")
            try:
                proc = subprocess.run([gnuplot, str(Path(tmp) / "plot.gp")],
                                      capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as e:
                links[file] = f"not drawn: gnuplot failed ({e})"
                continue
            if proc.returncode != 0 or not target.exists():
                tail = " / ".join(proc.stderr.strip().splitlines()[-2:])
                links[file] = f"not drawn: gnuplot failed ({tail})"
                continue
        links[file] = f"{link_prefix}{file}"
    return links


def _size_text(n: float) -> str:
    n = int(n)
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB"


def _orset_add_notes(figures: dict[str, Figure], results: dict[str, SuiteResults]) -> list[str]:
    notes = [
        "Sequential figures time n adds into an empty set, so they include the growth of "
        "its vectors and hash indexes; \"one add at that size\" times batches of 1,000 adds "
        "(100 at 1,000) into a set already holding n elements, which are removed again "
        "outside the timed region."]

    def value(name: str):
        f = figures.get(name)
        return None if f is None else f.value

    def text(name: str, unit: str = "") -> str:
        v = value(name)
        return "not measured" if v is None else fmt(v) + unit

    cg = results.get("callgrind")
    context = cg.context if cg is not None else {}
    counted = cg is not None and any(
        name.startswith(("OrSetAddCost/instructions/", "OrSetAddCost/cache_"))
        for name in cg.runs)

    # Why wall-clock time grows: the size of the set against the caches.
    caches = dict(context.get("cache_bytes") or {})
    for c in next((r.context for r in results.values()
                   if isinstance(r.context.get("caches"), list)), {}).get("caches", []):
        suffix = {"Data": "d", "Instruction": "i"}.get(c["type"], "")
        caches.setdefault(f"L{c['level']}{suffix}", c["size"])
    heap = value("orset_heap_bytes_at_1m")
    if heap is not None:
        memory = (f"at 1,000,000 elements the set holds {fmt(heap)} bytes of heap "
                  f"(about {heap / 1e6:,.0f} MB, `orset_heap_bytes_at_1m`)")
        parts = [f"{fmt(heap / caches[level])}× the {_size_text(caches[level])} {level}"
                 for level in ("L3", "L2") if caches.get(level)]
        if parts:
            memory += ", " + " and ".join(parts) + " of this machine"
        memory += ", so "
    else:
        memory = "once the set no longer fits in the caches, "
    wall = (
        "Wall-clock time per add grows with the size of the set: "
        f"{text('orset_add_ns_at_1k', ' ns')} per add over 1,000 sequential adds and "
        f"{text('orset_add_ns_at_1m', ' ns')} over 1,000,000 "
        f"({text('orset_add_growth_1k_to_1m', '×')}, `orset_add_growth_1k_to_1m`, which "
        "therefore has no target), and one add into a set already holding that many elements "
        f"takes {text('orset_add_marginal_ns_at_1k', ' ns')} at 1,000 and "
        f"{text('orset_add_marginal_ns_at_1m', ' ns')} at 1,000,000. ")
    probes = (f"{memory}the slots of the key and dot hash indexes that every add probes, at "
              "random places in tables sized to the set, miss the caches (and the TLB).")

    if not counted:
        if context.get("skipped"):
            reason = context["skipped"]
        elif cg is not None and any(n.startswith("OrSetAddCost/instructions/")
                                    for n in cg.errors):
            reason = "the callgrind runs failed (see the figures)"
        elif cg is not None and cg.path.exists():
            reason = "--filter selected none of its runs"
        else:
            reason = "bench/orset_add_cost.py did not run"
        notes.append(f"**Instruction counts and simulated cache misses were not measured in "
                     f"this run: {reason}.** Their figures above say \"not measured\"; nothing "
                     "stands in for them, so this run cannot say whether the work per add is "
                     "flat.")
        notes.append(wall + "Part of that growth is expected however flat the work per add "
                     "is: " + probes)
        return notes

    adds = context.get("adds_per_run", 10_000)
    reps = [len(cg.values(f"OrSetAddCost/instructions/reserved/size:{n}", "ir_total"))
            for n, _ in _SIZES]
    identical = all(len(set(cg.values(f"OrSetAddCost/instructions/reserved/size:{n}",
                                      "ir_total"))) <= 1 for n, _ in _SIZES)
    if max(reps, default=0) >= 2:
        determinism = (f"; the {max(reps)} runs of each reserved count gave identical totals"
                       if identical else
                       "; **the repeated runs of a reserved count gave different totals**")
    else:
        determinism = " (one run each in this mode)"
    grown_at = [f"{n:,}" for n, suffix in _SIZES
                if value(f"orset_add_instructions_unreserved_at_{suffix}") is not None
                and value(f"orset_add_instructions_at_{suffix}")
                and value(f"orset_add_instructions_unreserved_at_{suffix}")
                > 1.01 * value(f"orset_add_instructions_at_{suffix}")]
    listed = (", ".join(grown_at[:-1]) + " and " + grown_at[-1]) if len(grown_at) > 1 else (
        grown_at[0] if grown_at else "")
    grown = (f" (in this run at {listed} elements, where the set crosses capacity doublings "
             f"on its way to n + {adds:,})" if grown_at else "")
    notes.append(
        f"Instructions per add are counted, not timed, by callgrind "
        f"({context.get('valgrind', 'valgrind')}) running bench/orset_add_cost.cc "
        f"(`converge_orset_add_cost`, driven by bench/orset_add_cost.py): it builds a set of n "
        f"elements from strings generated beforehand, then performs {adds:,} further adds of "
        f"new elements (n + 1 to n + {adds:,}), and only those adds are counted "
        f"({context.get('instruction_method', 'callgrind')}); building the set is not. The set "
        f"is reserved for n + {adds:,} elements first, so the counted adds include no vector "
        "or hash-index growth. The \"no reserve\" column counts the same adds into a set built "
        f"without reserve, growth included where it falls among them{grown}. Each add "
        "includes copying the element string into the set "
        "and building and destroying its delta. Callgrind counts are deterministic"
        f"{determinism}. The heap of the set comes from native runs of the same binary "
        "without reserve (mallinfo2).")

    # The largest size whose caches were simulated (a quick run stops below
    # 1,000,000).
    simulated = [(n, suffix) for n, suffix in _SIZES
                 if value(f"orset_add_l2_misses_at_{suffix}") is not None
                 or value(f"orset_add_l3_misses_at_{suffix}") is not None]
    top_size, top_suffix = simulated[-1] if simulated else _SIZES[-1]
    top_note = ("" if top_size == _SIZES[-1][0] else
                f" (this run simulated the caches up to {top_size:,} elements only; "
                f"{_SIZES[-1][0]:,} is simulated in a full run)")
    writes = [w for n, _ in _SIZES
              for w in cg.values(f"OrSetAddCost/cache_l3/size:{n}", "ll_write_misses_per_op")]
    first_writes = ""
    if writes and len(writes) == len(simulated) and max(writes) <= 1.05 * min(writes):
        first_writes = (f" Of these, {fmt(min(writes))} per add at every size are writes: "
                        "the new entry's first touch of the vector's reserved memory.")
    reserved_1k = cg.values("OrSetAddCost/instructions/reserved/size:1000", "set_heap_bytes")
    small = ""
    if reserved_1k and caches.get("L2") and reserved_1k[0] > 0.5 * caches["L2"]:
        small = (f" (At 1,000 elements the {adds:,} measured adds take the set to "
                 f"{1_000 + adds:,}, and its reserved vector and tables, {fmt(reserved_1k[0])} "
                 "bytes, are already about the size of the L2.)")
    notes.append(
        f"The work per add is flat: {text('orset_add_instructions_at_1k')} instructions per "
        f"add at 1,000 elements and {text('orset_add_instructions_at_1m')} at 1,000,000 "
        f"({text('orset_add_instruction_growth_1k_to_1m', '×')}, "
        "`orset_add_instruction_growth_1k_to_1m`). " + wall
        + "The difference is memory, not work: " + probes
        + " In callgrind's cache model the misses per add in a last level the size of "
        f"the L2 go from {text('orset_add_l2_misses_at_1k')} at 1,000 elements to "
        f"{text(f'orset_add_l2_misses_at_{top_suffix}')} at {top_size:,}, and in one the "
        f"size of the L3 from {text('orset_add_l3_misses_at_1k')} to "
        f"{text(f'orset_add_l3_misses_at_{top_suffix}')}{top_note}."
        f"{first_writes}{small} The model has two levels (L1 and one last level; LRU, no "
        "prefetching, no TLB); it simulates the whole run, so the caches hold what building "
        "the set left in them, and counts only the measured adds. It shows where the "
        "wall-clock growth comes from, not its exact size.")
    skipped = context.get("cache_skipped") or {}
    for level, reason in skipped.items():
        notes.append(f"Simulated {level} misses were not measured: {reason}.")
    return notes


def _storage_context(results: dict[str, SuiteResults]) -> tuple[dict, dict]:
    storage = results.get("storage")
    reference = results.get("rocksdb_reference")
    return (storage.context if storage is not None else {},
            reference.context if reference is not None else {})


def _storage_reference_note(ref: dict, names: list[str]) -> str:
    if ref.get("skipped"):
        return (f"**The raw RocksDB reference was not measured in this run: {ref['skipped']}.** "
                "The figures compared with it, and their targets, say \"not measured\".")
    commands = ref.get("commands") or {}
    shown = [f"`{commands[n]}`" for n in names if n in commands]
    if not shown:
        return "The raw RocksDB reference (bench/rocksdb_reference.py) did not run."
    reps = ref.get("repetitions", 1)
    text = (f"Raw RocksDB: {ref.get('db_bench_version', 'db_bench')}, run by "
            "bench/rocksdb_reference.py right after the storage suite"
            + (f", {reps} times per configuration (median shown)" if reps > 1 else ", once")
            + ": " + "; ".join(shown) + " (a fresh `--db` each time, deleted afterwards). "
            "LZ4 compression, the 64 MiB write buffer and 2 background jobs are RocksStore's "
            "settings for its data column family; compression only acts when a memtable is "
            "flushed, never on the write path timed here. db_bench writes `--num` random keys "
            "out of `--num` per thread, one key per write, like the converge runs.")
    if ref.get("assertions_enabled"):
        text += (" Debian builds RocksDB 7.8.3 with assertions enabled (db_bench warns "
                 "\"Assertions are enabled\"); db_bench and converge link the same "
                 "librocksdb.so.7.8, so both sides pay for them.")
    return text


def _storage_buffered_notes(figures: dict[str, Figure],
                            results: dict[str, SuiteResults]) -> list[str]:
    ctx, ref = _storage_context(results)
    workload = ref.get("workload") or {}
    ops = ctx.get("storage_ops_buffered") or workload.get("ops_buffered")
    notes = [
        "Each converge run opens a fresh RocksStore, performs "
        + (f"{int(ops):,}" if ops else "N")
        + " operations on carts picked uniformly at random among as many carts (keys "
        "\"cart:\" + 12 digits), each incrementing one of 10,000 SKUs by one, and is timed "
        "from the first operation to the last (opening, key generation and closing are "
        "outside). storage::Update reads the cart (RocksDB Get, merging the deltas written "
        "so far), runs the increment under the store's ReplicaId, checks the dot lease, "
        "encodes the delta and writes it as one merge; a blind write only does the last "
        "step, with a delta encoded beforehand. The CPU-time column is the writing "
        "thread's CPU time (RocksDB's background flushes run on other threads), and for "
        "db_bench the CPU time of its whole process less that of the same command with "
        "`--num=1` (start, open, close); when other processes compete for the CPU, the "
        "ratios of CPU-time values compare the work per operation more reliably than "
        "wall-clock rates.",
        _storage_reference_note(ref, ["RocksDbBench/fillrandom/sync:0/writers:1"]),
    ]

    def us(name: str):
        f = figures.get(name)
        return None if f is None or not f.value else 1e6 / f.value

    raw = us("rocksdb_raw_fillrandom_per_s")
    blind0 = us("blind_write_buffered_novalidate_per_s")
    blind1 = us("blind_write_buffered_per_s")
    update0 = us("persisted_buffered_novalidate_per_s")
    update1 = us("persisted_buffered_per_s")
    if None not in (blind0, blind1, update0, update1):
        parts = [f"an Update with default options takes {fmt(update1)} µs"]
        if raw is not None:
            parts.append(f"a raw RocksDB write {fmt(raw)} µs")
        text = ("Where the time of one operation goes (wall-clock, from the figures above): "
                + " and ".join(parts) + f". A blind write without validation takes "
                f"{fmt(blind0)} µs"
                + (f" ({fmt(abs(blind0 - raw))} µs {'more' if blind0 >= raw else 'less'} "
                   "than a raw RocksDB write, which differs in the store's own WriteBatch, "
                   "copied into RocksDB's, and a merge record instead of a put)"
                   if raw is not None else "")
                + f"; validating the delta in Write adds {fmt(blind1 - blind0)} µs (blind "
                f"writes with and without validation); reading the cart, running the "
                f"increment and encoding the delta add {fmt(update0 - blind0)} µs (Updates "
                f"and blind writes, both without validation); with validation the Update "
                f"costs {fmt(update1 - update0)} µs more than without.")
        notes.append(text)
    return notes


def _storage_sync_notes(figures: dict[str, Figure],
                        results: dict[str, SuiteResults]) -> list[str]:
    ctx, ref = _storage_context(results)
    workload = ref.get("workload") or {}
    ops = ctx.get("storage_ops_sync") or workload.get("ops_sync")
    count = f"{int(ops):,}" if ops else "N"
    return [
        f"Synced runs: {count} operations per writer. With one writer every write waits for "
        "its own fdatasync of the write-ahead log; with four, RocksDB's write thread groups "
        "the writes that arrive while a sync is in progress into the next one (group "
        "commit), so the rate depends on how many writers are ready together. The four "
        "converge writers each update their own carts (carts with index = writer mod 4); "
        "db_bench's four threads write random keys of one key space. With sync durability "
        "the writing threads mostly wait for the disk, so no CPU-time value is given, and "
        "the disk is shared with whatever else runs on the machine: compare figures of the "
        "same run only.",
        _storage_reference_note(ref, ["RocksDbBench/fillrandom/sync:1/writers:1",
                                      "RocksDbBench/fillrandom/sync:1/writers:4"]),
    ]


def _storage_scale_notes(figures: dict[str, Figure],
                         results: dict[str, SuiteResults]) -> list[str]:
    ctx, _ = _storage_context(results)
    keys = ctx.get("storage_scale_keys")
    notes = []
    if keys and int(keys) != 10_000_000:
        shown = ("its figures are the `keys_1m_*` ones" if int(keys) == 1_000_000
                 else "no figure above shows it")
        notes.append(f"**This run loaded {int(keys):,} keys, not 10,000,000**; {shown}, and "
                     "the `keys_10m_*` figures are not measured.")
    notes.append(
        "The load runs in a child process (the benchmark binary re-executed), so that its "
        "peak RSS is that of the load alone. It opens a fresh buffered RocksStore with "
        "validation off, writes the carts in batches of 1,000 blind merges (cart i holds one "
        "increment of a SKU that is a fixed function of i, encoded as it is written; the "
        "12-digit ids are a bijection of i, so keys arrive in pseudo-random order), then "
        "flushes and compacts the whole key space (RocksStore::CompactAll), measures the "
        "SST bytes of the data column family (RocksStore::ApproximateDiskBytes; the WAL and "
        "the meta column family are not counted) and reads back 10,000 random loaded keys, "
        "each of which must decode to exactly the state loaded, and 100 keys never loaded, "
        "which must be absent. The load rate is keys over the time of the writes alone. "
        "Peak RSS includes RocksDB's memtables (64 MiB write buffer, up to two while one is "
        "flushed) and its 64 MiB block cache.")
    return notes


def _context_of(results: dict[str, SuiteResults], key: str) -> dict:
    suite = results.get(key)
    return suite.context if suite is not None else {}


def _load_text(context: dict) -> str:
    load = context.get("load_avg")
    return (f" Load average when this part started: {', '.join(f'{x:.2f}' for x in load)}."
            if load else "")


def _missing_reason(results: dict[str, SuiteResults], key: str, driver: str) -> str | None:
    """Why a driver's results hold no runs (None when they do)."""
    suite = results.get(key)
    if suite is None or not suite.path.exists():
        return f"{driver} did not run (no {SUITES[key]['results']})"
    if suite.context.get("skipped"):
        return suite.context["skipped"]
    if not suite.runs and not suite.errors:
        return "--filter selected none of its runs"
    return None


def _gossip_notes(figures: dict[str, Figure], results: dict[str, SuiteResults]) -> list[str]:
    ctx = _context_of(results, "gossip")
    notes = []
    reason = _missing_reason(results, "gossip", "bench/gossip_rounds.py")
    if reason:
        notes.append(f"**Gossip rounds were not measured in this run: {reason}.**")
    sizes = ctx.get("sizes")
    if sizes and sizes != _GOSSIP_SIZES:
        missing = [n for n in _GOSSIP_SIZES if n not in sizes]
        notes.append(f"**This run simulated {', '.join(map(str, sizes))} nodes only, with "
                     f"{ctx.get('seeds', '?')} seeds each** (a quick run); the figures for "
                     f"{', '.join(map(str, missing))} nodes are not measured.")
    seeds = ctx.get("seeds", "many")
    notes.append(
        f"bench/gossip_rounds.py runs `{ctx.get('command', 'converge-sim ... --json')}` for "
        f"seeds 1 to {seeds} of every cluster size N and fanout F: the real replication::Node "
        "on the deterministic simulated network (docs/simulation.md), frames delayed 1 ms, no "
        "loss, no faults, membership gossiped for 2 s of warm-up, then one GCounter or "
        "PnCounter increment (it always makes a delta) on a random node at a random moment of "
        "the next 2 s. converge-sim counts gossip rounds (100 ms of virtual time each) from "
        "that write until every node holds the same bytes for the key; p50 is the median "
        "over the seeds, max the most any seed took. The runs are deterministic: the same "
        "seeds give the same rounds on any machine, whatever its load.")
    notes.append(
        "The references: log2(N), the order of the rounds any epidemic needs, and the "
        "number of rounds a synchronous push epidemic needs when every informed node tells "
        "F random others per round, log_(F+1)(N) + ln(N)/F (Pittel 1987 for F = 1, log2 N + "
        "ln N; Frieze and Grimmett 1985; the protocol is that of Demers et al. 1987). A node "
        "here does more than push: each round it sends its new deltas to F peers and runs "
        "one anti-entropy session (push-pull) with a peer, and since every node runs its own "
        "round timer and a frame takes 1 ms, a delta received early in a period can be "
        "forwarded within the same period. So the counts are of 100 ms periods, not of "
        "synchronous rounds, and the bound is an upper reference, not a prediction; "
        "`gossip_rounds_max_vs_bound_*` at or below 1 means no seed needed more rounds than "
        "the push epidemic.")
    large = ctx.get("large_sizes")
    if large is not None:
        notes.append(
            "Large clusters (`sim_rounds_n*_f3_median`, `sim_bytes_per_node_round_n*`): "
            + ", ".join(f"{n} nodes with {s} seed(s)" for n, s in large.items())
            + (" (1,024 nodes only in a full run)" if "1024" not in large else "")
            + ", fanout 3. Beyond 16 other members a node runs the large-cluster membership "
            "(docs/replication.md, \"Membership\"): gossip carries at most 16 member changes, "
            "members are probed, whole lists are exchanged with one member every max(32, N/4) "
            "rounds. The target: rounds within 2 of log_3(N) + ln(N)/2, and bytes per node "
            "per round at rest O(fanout), not O(N). The bytes at rest are those of the second "
            "half of converge-sim's settling period; they include the amortized whole-list "
            "exchange and, in the largest clusters, the last acknowledgements of the one "
            "write (a delta-buffer entry stays until every member acknowledged it, F peers "
            "a round).")
    if ctx.get("elapsed_seconds") is not None:
        notes[-1] += f" This part took {ctx['elapsed_seconds']:.0f} s."
    return notes


def _ae_notes(figures: dict[str, Figure], results: dict[str, SuiteResults]) -> list[str]:
    ctx = _context_of(results, "replication")
    notes = []
    shared = int(ctx.get("ae_shared_keys", 0) or 0)
    leaves = int(ctx.get("ae_tree_leaves", 0) or 0)
    if not results["replication"].runs:
        reason = ("--filter selected none of its runs" if results["replication"].path.exists()
                  else "converge_replication_benchmark did not run")
        notes.append(f"**Anti-entropy was not measured in this run: {reason}.**")
    if shared and shared != 100_000:
        notes.append(f"**This run used {shared:,} shared keys, not 100,000** (a quick run), "
                     f"and {max(1, shared // 10):,} for `ae_bytes_d100_tenth_keys`.")
    notes.append(
        "bench/replication_benchmark.cc runs two real replication::Node objects, a and b, "
        "on the deterministic simulated network (replication/sim/sim_world.h), each with a "
        "MemoryStore. Both hold the same "
        + (f"{shared:,}" if shared else "N")
        + " cart keys (OrMap<std::string, CausalCounter>, one line, "
        + (f"{ctx['ae_state_bytes']}-byte states, " if ctx.get("ae_state_bytes") else "")
        + "the same canonical bytes on both, joined into each node with Node::Merge before "
        "they can reach each other), and a holds d more (or, for the `changed` figures, a "
        "newer state of d of them). The delta path is disabled "
        "(NodeOptions::delta_buffer_max_bytes = 1: every delta leaves the buffer at the next "
        "round), so only digest anti-entropy can repair. The link is opened, and the run "
        "counts until the two digest trees are equal: NodeStats::ae_bytes_sent of both "
        "nodes, and the frames sent while it grew (messages). Then both stores are compared "
        "key by key (they must be byte-for-byte equal). Each node starts a session with the "
        "other every round, so both nodes' sessions are counted. Virtual time, one seed: "
        "the counts are the same on every run and every machine.")
    if leaves:
        occupied = 1 - math.exp(-shared / leaves) if shared else None
        notes.append(
            f"The digest tree has {leaves:,} leaves (depth 4, fanout 16), "
            f"and a message carries at most {int(ctx.get('ae_max_message_bytes', 0)):,} "
            "bytes. A session compares the roots, then the 16 children of each differing "
            "node, down to the leaves, then exchanges the key digests of the differing "
            "leaves and the states of the differing keys; a subtree the peer holds nothing "
            "of is pushed whole, without key lists. So the cost grows with d, and with the "
            "keys per leaf only through the key lists of the differing leaves"
            + (f" ({shared / leaves:.2f} keys per leaf on average here, {100 * occupied:.0f} % "
               "of the leaves occupied; a key that lands in a leaf b holds nothing of is "
               "pushed without a list)" if occupied is not None else "")
            + ". `ae_bytes_d100_ten_times_keys` compares the same 100 differing keys among "
            "10× as many keys; `ae_full_state_bytes` is what sending a's whole state would "
            "cost.")
    return notes


def _bootstrap_notes(figures: dict[str, Figure], results: dict[str, SuiteResults]) -> list[str]:
    ctx = _context_of(results, "bootstrap")
    notes = []
    reason = _missing_reason(results, "bootstrap", "bench/bootstrap.py")
    if reason:
        notes.append(f"**The bootstrap was not measured in this run: {reason}.**")
    keys = ctx.get("keys")
    if keys and int(keys) != 1_000_000:
        shown = ("its figures are the `bootstrap_100k_keys_*` ones" if int(keys) == 100_000
                 else "no figure above shows it")
        notes.append(f"**This run bootstrapped {int(keys):,} keys, not 1,000,000** (a quick "
                     f"run); {shown}, and the `bootstrap_1m_keys_*` figures and their target "
                     "are not measured.")
    commands = ctx.get("commands") or {}
    notes.append(
        "bench/bootstrap.py starts a converge-node (replication/tools/converge_node.cc) and "
        "loads the carts into it with its `loadcarts N` command (one local update per key; "
        "the load is timed apart: `*_load_s`), then starts an empty converge-node seeded with "
        "it, both with certificates from scripts/make-certs (mutual TLS over loopback TCP), "
        f"--durability {ctx.get('durability', 'buffered')} and otherwise the defaults (200 ms "
        "rounds, fanout 3, 1 MiB messages). The clock starts when the joiner's process is "
        "spawned and stops at the first poll (every 50 ms) at which its `root` equals the "
        "source's and its `keys` count too: process start, TLS handshake, membership and the "
        "whole anti-entropy catch-up are inside. MiB are the bytes the joiner's transport "
        "sent and received (`net_bytes_*` of `stats`); CPU seconds are user + system time "
        "of each process over the catch-up (all threads); peak RSS is VmHWM, the source's "
        "reset through /proc/PID/clear_refs after its load"
        + ("" if ctx.get("source_hwm_reset", True) else
           " (**the reset failed in this run: the source's peak includes its load**)")
        + "."
        + (f" Commands: `{commands['source']}` and `{commands['joiner']}` (ports chosen "
           "free at run time)." if commands else "")
        + _load_text(ctx))
    suite = results.get("bootstrap")
    for run in (suite.runs.values() if suite is not None else []):
        share = run[0].get("other_cpu_fraction")
        if isinstance(share, (int, float)):
            notes.append(f"Competition for the CPUs: during the catch-up, processes other than "
                         f"the two nodes used {100 * share:.0f} % of the machine's CPU time "
                         "(/proc/stat; near 0 % on a quiet machine).")
    return [_repo_relative(n) for n in notes]


def _repo_relative(text: str) -> str:
    return text.replace(str(REPO_ROOT) + "/", "")


def _cart_http_notes(figures: dict[str, Figure], results: dict[str, SuiteResults]) -> list[str]:
    ctx = _context_of(results, "cart_http")
    notes = []
    reason = _missing_reason(results, "cart_http", "bench/cart_http.py")
    if reason:
        notes.append(f"**The cart HTTP figures were not measured in this run: {reason}.** "
                     "Every figure above says \"not measured\".")
    if ctx.get("nginx_skipped"):
        notes.append(f"**The nginx reference was not measured in this run: "
                     f"{ctx['nginx_skipped']}.** The figures compared with it say \"not "
                     "measured\".")
    duration = ctx.get("duration_s")
    if duration and int(duration) != 10:
        notes.append(f"**Each wrk run lasted {duration} s, not 10 s** (a quick run).")
    commands = ctx.get("commands") or {}
    reps = ctx.get("repetitions", 1)
    notes.append(
        "bench/cart_http.py starts one cart-server (`"
        + ctx.get("server_command_buffered", "cart-server --insecure-loopback ...")
        + "`, ports chosen free at run time, a fresh data directory), runs wrk against it "
        f"(-t{ctx.get('threads', 2)} -c{ctx.get('connections', 32)} --latency, "
        f"{duration or '?'} s, after a {ctx.get('warmup_s', 1)} s warm-up that is not "
        "counted) with bench/wrk/cart_write.lua — POST /carts/<id>/items, "
        "{\"sku\":...,\"quantity\":1-5}, a new cart for every request, so no cart nears the "
        "line or quantity limits — and then with bench/wrk/cart_read.lua — GET of random "
        "carts that write run made; then the same writes against a fresh cart-server with "
        "--durability sync, and finally nginx (Debian nginx-light, a minimal configuration "
        "written for the run: worker_processes auto, access_log off, keepalive_requests "
        "1000000) serving a static file holding the body cart-server answered for one of "
        "the written carts"
        + (f" ({ctx['static_file_bytes']} bytes)" if ctx.get("static_file_bytes") else "")
        + ", with the same wrk. "
        + (f"Each was run {reps} times with fresh servers (median shown). " if reps > 1
           else "Each ran once. ")
        + "The latencies are wrk's (`--latency`, from the moment wrk writes a request to the "
        "moment it has read the answer). Answers other than 2xx fail a run (none did where a "
        "figure is shown). wrk and the server share this machine's "
        "CPUs: a rate here is that of the pair, for cart-server and nginx alike, which is "
        "why nginx is measured in the same run; the server CPU per request (its process's "
        "user + system time, all threads, over the run) is the figure that does not depend "
        "on what else ran." + _load_text(ctx))
    suite = results.get("cart_http")
    shares = []
    for label, benchmark in (("buffered writes", "CartHttp/write/durability:buffered"),
                             ("reads", "CartHttp/read/durability:buffered"),
                             ("synced writes", "CartHttp/write/durability:sync"),
                             ("nginx", "NginxStatic/get")):
        values = suite.values(benchmark, "other_cpu_fraction") if suite is not None else []
        if values:
            shares.append(f"{100 * statistics.median(values):.0f} % during the {label}")
    if shares:
        notes.append("Competition for the CPUs: of the machine's CPU time while wrk ran, "
                     "processes other than wrk and the server used " + ", ".join(shares)
                     + " (/proc/stat; kernel threads count as other processes, such as "
                     "those writing the synced writes' journal; near 0 % on a quiet "
                     "machine).")
    if commands:
        notes.append("wrk commands: " + "; ".join(f"`{_repo_relative(c)}`"
                                                  for c in commands.values()) + ".")
    return [_repo_relative(n) for n in notes]


SECTION_NOTES = {
    ("crdt", "OrSet add"): _orset_add_notes,
    ("crdt", "Counters and maps"): [
        "The representation of a CausalCounter may grow with the increments it receives "
        "(one dot per increment until reset), and with it the cost of an update; each timed "
        "batch therefore starts from a fresh copy of the same prepared cart, and the table "
        "above shows how the cost depends on the increments a key received before.",
    ],
    ("storage", "Buffered writes, one writer"): _storage_buffered_notes,
    ("storage", "Synced writes"): _storage_sync_notes,
    ("storage", "Scale: 10,000,000 keys"): _storage_scale_notes,
    ("replication", "Gossip rounds against cluster size"): _gossip_notes,
    ("replication", "Anti-entropy against differing keys"): _ae_notes,
    ("replication", "Bootstrap of a new replica"): _bootstrap_notes,
    ("cart_http", "Throughput and latency against nginx"): _cart_http_notes,
}


def section_notes(suite: str, section: str, figures: dict[str, Figure],
                  results: dict[str, SuiteResults]) -> list[str]:
    notes = SECTION_NOTES.get((suite, section), [])
    if callable(notes):
        notes = notes(figures, results)
    out = []
    for note in notes:
        out += ["", note]
    return out


METHOD_NOTES = [
    "- Every timed benchmark measures its own region with a steady clock "
    "(Google Benchmark `UseManualTime`); building inputs, copying states and destroying "
    "results are outside it. Element names (`item-0`, `item-1`, …) are generated beforehand "
    "and fit the small-string buffer, so copying one into a set allocates nothing.",
    "- Every mutator's returned delta is kept alive until the next operation and passed to "
    "`benchmark::DoNotOptimize`, so building and destroying it is part of the cost.",
    "- Values are medians over the repetitions of a benchmark; \"Spread (CV)\" is the "
    "standard deviation over the mean across repetitions. The CPU-time column recomputes "
    "time figures from the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).",
    "- Memory figures are the growth of `mallinfo2()` `uordblks + hblkhd` while building the "
    "state (glibc serves large vectors and hash tables by mmap, counted in `hblkhd`), "
    "divided by the element count; malloc's chunk overhead is included. Delta heap bytes "
    "and allocation counts come from a counting `operator new` in the benchmark binary "
    "(bench/alloc_counter.cc).",
    "- Instruction counts (`orset_add_instructions_*`) and simulated cache misses "
    "(`orset_add_l2_misses_*`, `orset_add_l3_misses_*`) come from valgrind's callgrind, not "
    "from a clock: bench/orset_add_cost.py runs bench/orset_add_cost.cc under "
    "`valgrind --tool=callgrind`, reads the `totals:` line of each output file and divides by "
    "the number of measured adds. They do not depend on the load of the machine. Without "
    "valgrind these figures are reported as not measured. The heap sizes "
    "(`orset_heap_bytes_at_*`) come from native runs of the same binary (mallinfo2).",
    "- Storage figures (bench/storage_benchmark.cc) time whole runs, one Google Benchmark "
    "iteration each, with a steady clock from the moment all writer threads start to the "
    "moment the last one finishes; every run starts from an empty store in "
    "`build-bench/storage-data/`, deleted afterwards. Their raw RocksDB reference is "
    "Debian's db_bench run by bench/rocksdb_reference.py in the same bench/run "
    "(`build-bench/results/rocksdb_reference.json`, same shape as the other results).",
    "- Replication figures: anti-entropy bytes and messages come from two real nodes on the "
    "deterministic simulated network (bench/replication_benchmark.cc), gossip rounds from "
    "converge-sim over many seeds (bench/gossip_rounds.py); both are counts, the same on "
    "every machine. The bootstrap (bench/bootstrap.py) is two converge-node processes over "
    "loopback TCP with mutual TLS, timed by the wall clock.",
    "- HTTP figures (bench/cart_http.py) are wrk's, against one cart-server and, in the same "
    "run, nginx serving a static file: the ratio to nginx says how close the cart service "
    "comes to the fastest HTTP server this machine and client allow.",
    "- Plots (docs/benchmarks/*.png) are drawn by report.py with gnuplot from the tables "
    "they follow; without gnuplot the report says so and links none.",
    "- Raw results: `build-bench/results/*.json` (Google Benchmark JSON, one file per suite; "
    "`orset_add_cost.json` holds the callgrind counts, `rocksdb_reference.json`, "
    "`cart_http.json`, `bootstrap.json` and `gossip_rounds.json` the drivers' results, in the "
    "same shape).",
]


# ---------------------------------------------------------------------------
# Plain-text table for stdout.


def print_table(figures: dict[str, Figure], stream=sys.stdout) -> None:
    rows = [("figure", "value", "target", "status")]
    for f in figures.values():
        value = "not measured" if f.value is None else f"{fmt(f.value)} {f.unit}"
        rows.append((f.name, value, f.target_text(), f.status()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), file=stream)
        if i == 0:
            print("  ".join("-" * w for w in widths), file=stream)


def read_cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=REPO_ROOT / "build-bench" / "results")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write {figure: value} to this file")
    parser.add_argument("--command", help="command line to show in the report "
                        "(default: the one recorded in run.json)")
    parser.add_argument("--plots", type=Path, default=None,
                        help="directory of the PNG plots (default: benchmarks/ beside --out)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw plots")
    parser.add_argument("--gnuplot", default=None,
                        help="gnuplot binary (default: PATH; none: no plots, and say so)")
    args = parser.parse_args(argv)

    run_info_path = args.results / "run.json"
    run_info = json.loads(run_info_path.read_text()) if run_info_path.exists() else {}
    if args.command:
        run_info["command"] = args.command

    results = load_results(args.results)
    if not any(r.runs for r in results.values()):
        print(f"report.py: no benchmark results in {args.results}", file=sys.stderr)
        return 1
    figures = compute_figures(results)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    plots = None
    if not args.no_plots:
        plot_dir = args.plots or args.out.parent / (args.out.stem)
        try:
            prefix = plot_dir.resolve().relative_to(args.out.parent.resolve()).as_posix() + "/"
        except ValueError:
            prefix = plot_dir.resolve().as_posix() + "/"
        plots = draw_plots(figures, plot_dir, prefix, args.gnuplot)
    args.out.write_text(render(figures, results, run_info, plots))
    if args.json:
        flat = {name: f.value for name, f in figures.items()}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(flat, indent=2) + "\n")

    print_table(figures)
    print(f"\nreport: {args.out}" + (f"; figures: {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
