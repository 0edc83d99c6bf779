#!/usr/bin/env python3
"""Gossip rounds to converge against cluster size, measured with converge-sim.

For every cluster size N and fanout F, runs `converge-sim --json` for many
seeds with one write and no faults, and writes the rounds it took every node
to hold that write, as a file in the shape of Google Benchmark JSON that
bench/report.py reads like the other suites.

Usage:
  bench/gossip_rounds.py --sim PATH --out FILE [--mode quick|full]
                         [--seeds N] [--filter REGEX] [--jobs N]

Each run is

  converge-sim --nodes N --fanout F --seed S --workload counter --writes 1
               --keys 1 --majority-percent 0 --all-percent 0 --window-ms 2000
               --json

the real replication::Node on the deterministic simulated network (frames
take 1 ms, no loss), a cluster that has gossiped its membership for 2 s of
warm-up, and one GCounter or PnCounter increment (it always makes a delta) at
a random moment of the following 2 s on a random node. converge-sim counts
the gossip rounds (100 ms of virtual time each) from that write until every
node holds the same bytes for the key. Every node runs its own round timer,
so a delta received early in a round may be forwarded in the same round:
the count is of round periods, not of synchronous rounds.

Runs, named like benchmarks, one entry per (N, F):

  GossipRounds/nodes:N/fanout:F

with counters rest_bytes_per_node_round_mean (converge-sim's
rest_bytes_per_node_round: what a node sends per round at rest), rounds_p50
(median over the seeds), rounds_max, rounds_mean,
rounds_p90, seeds, converged (runs that converged), violations (summed),
log2_n, and epidemic_bound: log_{F+1}(N) + ln(N)/F, the number of rounds a
push epidemic in which every informed node tells F random others per round
needs to reach all N (Pittel 1987 for F = 1: log2 N + ln N; Frieze and
Grimmett 1985; Demers et al. 1987 for the protocol), the theoretical
reference of the figures. A run that does not converge or reports a
violation is counted and fails the entry.

Sizes: full N in 4, 8, 16, 32, 64 with 50 seeds each, and with fanout 3
only 256 (10 seeds) and 1,024 (3 seeds); quick N in 4, 16, 64 with 8 seeds
each and 256 with 2 (a 64-node run takes about a second of CPU: converge-sim
also plays 2 s of warm-up and 8 s after convergence in which it checks that
the membership settles). Fanout 2 (converge-sim's default) and 3 (the node's
default). The runs are deterministic: the same seeds give the same rounds on
any machine. Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

FULL_SIZES = [4, 8, 16, 32, 64]
QUICK_SIZES = [4, 16, 64]
FANOUTS = [2, 3]
FULL_SEEDS = 50
QUICK_SEEDS = 8
# Large clusters (issue 11): fanout 3 only, fewer seeds (a 1,024-node run
# takes about two minutes of CPU and 2 GiB, so a quick run leaves it out).
# These run the large-cluster membership (more than 16 other members:
# bounded member changes, probes).
LARGE_SIZES = {"full": {256: 10, 1024: 3}, "quick": {256: 2}}
LARGE_FANOUT = 3
WINDOW_MS = 2000
TIMEOUT_SECONDS = 300


def epidemic_bound(n: int, fanout: int) -> float:
    return math.log(n, fanout + 1) + math.log(n) / fanout


def sim_command(sim: str, nodes: int, fanout: int, seed: int) -> list[str]:
    return [sim, "--nodes", str(nodes), "--fanout", str(fanout), "--seed", str(seed),
            "--workload", "counter", "--writes", "1", "--keys", "1",
            "--majority-percent", "0", "--all-percent", "0",
            "--window-ms", str(WINDOW_MS), "--json"]


def run_one(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"converge-sim exited with {proc.returncode}: " + " / ".join(tail))
    report["exit_status"] = proc.returncode
    return report


def selected(name: str, pattern: str | None) -> bool:
    """Google Benchmark's --benchmark_filter: a regex searched in the name,
    or with a leading '-' the runs it does not match."""
    if not pattern:
        return True
    if pattern.startswith("-"):
        return re.search(pattern[1:], name) is None
    return re.search(pattern, name) is not None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[k]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", required=True, help="the converge-sim binary")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per (N, fanout)")
    parser.add_argument("--filter", default=None)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    quick = args.mode == "quick"
    sizes = QUICK_SIZES if quick else FULL_SIZES
    seeds = args.seeds or (QUICK_SEEDS if quick else FULL_SEEDS)
    context = {"mode": args.mode, "sizes": sizes, "fanouts": FANOUTS, "seeds": seeds,
               "window_ms": WINDOW_MS, "gossip_interval_ms": 100,
               "load_avg": list(os.getloadavg()),
               "command": " ".join(sim_command("converge-sim", 0, 0, 0))
               .replace("--nodes 0", "--nodes N").replace("--fanout 0", "--fanout F")
               .replace("--seed 0", "--seed S")}
    result = {"context": context, "benchmarks": []}
    failed = 0
    started = time.monotonic()
    runs = [(nodes, fanout, seeds) for nodes in sizes for fanout in FANOUTS]
    runs += [(nodes, LARGE_FANOUT, args.seeds or n)
             for nodes, n in LARGE_SIZES[args.mode].items()]
    context["large_sizes"] = {str(n): s for n, _, s in runs if n in LARGE_SIZES[args.mode]}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for nodes, fanout, seeds in runs:
            name = f"GossipRounds/nodes:{nodes}/fanout:{fanout}"
            if not selected(name, args.filter):
                continue
            t0 = time.monotonic()
            futures = [pool.submit(run_one, sim_command(args.sim, nodes, fanout, s))
                       for s in range(1, seeds + 1)]
            entry = {"name": name, "run_name": name, "run_type": "iteration",
                     "repetitions": 1, "repetition_index": 0, "iterations": seeds,
                     "threads": 1, "time_unit": "ms"}
            try:
                reports = [f.result() for f in futures]
            except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                failed += 1
                entry.update(error_occurred=True, error_message=str(e))
                result["benchmarks"].append(entry)
                print(f"  {name}: error: {e}", file=sys.stderr)
                continue
            rounds = [float(r["rounds"]) for r in reports if r.get("converged")]
            bad = [r for r in reports if not r.get("converged") or r.get("violations")]
            if bad or not rounds:
                failed += 1
                entry.update(error_occurred=True,
                             error_message=f"{len(bad)} of {seeds} runs did not converge "
                                           f"cleanly; replay: {bad[0].get('replay', '?')}"
                             if bad else "no run converged")
                result["benchmarks"].append(entry)
                print(f"  {name}: error: {entry['error_message']}", file=sys.stderr)
                continue
            elapsed = time.monotonic() - t0
            entry.update(
                rounds_p50=statistics.median(rounds), rounds_max=max(rounds),
                rounds_min=min(rounds), rounds_mean=statistics.fmean(rounds),
                rounds_p90=percentile(rounds, 0.9), seeds=len(reports),
                converged=len(rounds),
                violations=sum(int(r.get("violations", 0)) for r in reports),
                log2_n=math.log2(nodes), epidemic_bound=epidemic_bound(nodes, fanout),
                bytes_per_node_mean=statistics.fmean(float(r["bytes_per_node"])
                                                     for r in reports),
                rest_bytes_per_node_round_mean=statistics.fmean(
                    float(r.get("rest_bytes_per_node_round", 0)) for r in reports),
                rounds_histogram={str(int(k)): rounds.count(k) for k in sorted(set(rounds))},
                real_time=elapsed * 1e3 / seeds, cpu_time=0)
            result["benchmarks"].append(entry)
            print(f"  {name}: rounds p50 {entry['rounds_p50']:g}, max "
                  f"{entry['rounds_max']:g} over {seeds} seeds (log2 N = "
                  f"{entry['log2_n']:.2f}, epidemic bound {entry['epidemic_bound']:.2f}); "
                  f"{elapsed:.1f} s", flush=True)
    context["elapsed_seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
