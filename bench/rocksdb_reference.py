#!/usr/bin/env python3
"""Raw RocksDB write throughput on this machine, measured by Debian's db_bench.

Runs db_bench (package rocksdb-tools, the same RocksDB release converge links)
with --benchmarks=fillrandom, with the key and value sizes of converge's
persisted cart updates and the same operation counts as
bench/storage_benchmark.cc, and writes the results as a file in the shape of
Google Benchmark JSON, which bench/report.py reads like the other suites.

Usage:
  bench/rocksdb_reference.py --storage-binary PATH --out FILE
                             [--mode quick|full] [--repetitions N]
                             [--filter REGEX] [--work-dir DIR] [--db-bench PATH]

The key size, value size and operation counts come from
`converge_storage_benchmark --print_workload [--quick]`: a cart key
("cart:" + 12 digits) and the encoded OrMap<std::string, CausalCounter> delta
of one increment in a fresh cart. Runs, named like benchmarks:

  RocksDbBench/fillrandom/sync:0/writers:1   --sync=0 --threads=1
  RocksDbBench/fillrandom/sync:1/writers:1   --sync=1 --threads=1
  RocksDbBench/fillrandom/sync:1/writers:4   --sync=1 --threads=4

each with --num = the operations per writer of the matching converge
benchmark (db_bench's fillrandom writes --num random keys out of --num per
thread, one key per write), a fresh --db under DIR (default build-bench/
rocksdb-reference, deleted afterwards), --disable_wal=0, LZ4 compression
(what RocksStore uses for its data column family; it only matters when a
memtable is flushed), a 64 MiB write buffer and 2 background jobs (RocksStore's
settings; both are db_bench's defaults too). A full run repeats each
--repetitions times (the report shows the median); a quick run once.

Counters of each run: ops_per_s (db_bench's "ops/sec"), ns_per_op (its
inverse), micros_per_op (db_bench's own "micros/op": summed over threads),
ops (operations done, all threads), process_cpu_s (user + system time of the
db_bench process) and, for the run without sync, cpu_ns_per_op: that CPU time
minus the CPU time of the same command with --num=1 (start, open, close),
per operation, which bench/report.py shows as the CPU-time value and uses to
flag a busy CPU. If db_bench is not installed the file
records why in context.skipped and holds no runs, and every figure drawn from
it is reported as not measured.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

RUNS = [
    # name, sync, threads, which operation count
    ("RocksDbBench/fillrandom/sync:0/writers:1", 0, 1, "ops_buffered"),
    ("RocksDbBench/fillrandom/sync:1/writers:1", 1, 1, "ops_sync"),
    ("RocksDbBench/fillrandom/sync:1/writers:4", 1, 4, "ops_sync"),
]

# "fillrandom   :       6.859 micros/op 145786 ops/sec 0.686 seconds 100000 operations;"
RESULT = re.compile(r"^fillrandom\s*:\s*([0-9.]+) micros/op\s+([0-9.]+) ops/sec"
                    r"(?:\s+([0-9.]+) seconds\s+([0-9]+) operations)?", re.MULTILINE)

COMPRESSION = "lz4"
WRITE_BUFFER_BYTES = 64 << 20
BACKGROUND_JOBS = 2
TIMEOUT_SECONDS = 900


def db_bench_version(db_bench: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}", "rocksdb-tools"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        if out.strip():
            return out.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "db_bench (version unknown)"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_db_bench(cmd: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    """Runs db_bench; returns the process and its CPU time (user + system, all
    threads)."""
    before = children_cpu_seconds()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    return proc, children_cpu_seconds() - before


def selected(name: str, pattern: str | None) -> bool:
    """Google Benchmark's --benchmark_filter: a regex searched in the name,
    or with a leading '-' the runs it does not match."""
    if not pattern:
        return True
    if pattern.startswith("-"):
        return re.search(pattern[1:], name) is None
    return re.search(pattern, name) is not None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage-binary", required=True,
                        help="converge_storage_benchmark, for the sizes and counts")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--filter", default=None)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--db-bench", default=None, help="path of db_bench (default: PATH)")
    args = parser.parse_args(argv)

    quick = args.mode == "quick"
    repetitions = 1 if quick else max(1, args.repetitions)
    context: dict = {"mode": args.mode, "compression": COMPRESSION,
                     "write_buffer_bytes": WRITE_BUFFER_BYTES,
                     "max_background_jobs": BACKGROUND_JOBS, "repetitions": repetitions}
    result = {"context": context, "benchmarks": []}

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    db_bench = args.db_bench or shutil.which("db_bench")
    if not db_bench:
        context["skipped"] = ("db_bench is not installed (Debian: apt-get install rocksdb-tools)")
        write()
        print(f"raw RocksDB reference skipped: {context['skipped']}")
        return 0
    context["db_bench"] = db_bench
    context["db_bench_version"] = db_bench_version(db_bench)

    workload_cmd = [args.storage_binary, "--print_workload"] + (["--quick"] if quick else [])
    workload = json.loads(subprocess.run(workload_cmd, capture_output=True, text=True,
                                         check=True, timeout=60).stdout)
    context["workload"] = workload

    work_dir = args.work_dir or args.out.parent.parent / "rocksdb-reference"
    work_dir = work_dir.resolve()
    db_dir = work_dir / "db"
    context["commands"] = {}
    failed = 0
    for name, sync, threads, count in RUNS:
        if not selected(name, args.filter):
            continue
        num = int(workload[count])
        for rep in range(repetitions):
            shutil.rmtree(db_dir, ignore_errors=True)
            db_dir.mkdir(parents=True)
            cmd = [db_bench, "--benchmarks=fillrandom", f"--db={db_dir}",
                   f"--num={num}", f"--threads={threads}", f"--sync={sync}",
                   "--disable_wal=0", f"--key_size={workload['key_bytes']}",
                   f"--value_size={workload['value_bytes']}",
                   f"--compression_type={COMPRESSION}",
                   f"--write_buffer_size={WRITE_BUFFER_BYTES}",
                   f"--max_background_jobs={BACKGROUND_JOBS}",
                   "--use_existing_db=0", "--histogram=0", "--statistics=0",
                   f"--seed={rep + 1}"]
            context["commands"][name] = shlex.join(cmd)
            print(f"  {name} (repetition {rep + 1}/{repetitions}): num={num} per thread",
                  flush=True)
            entry = {"name": name, "run_name": name, "run_type": "iteration",
                     "repetitions": repetitions, "repetition_index": rep, "iterations": 1,
                     "threads": 1, "time_unit": "ns"}
            started = time.monotonic()
            try:
                fixed_cpu = 0.0
                if not sync:
                    # The CPU time of starting db_bench, opening and closing an
                    # empty database: the same command with --num=1, subtracted
                    # below so that cpu_ns_per_op is that of the writes.
                    baseline = [a if not a.startswith("--num=") else "--num=1" for a in cmd]
                    _, fixed_cpu = run_db_bench(baseline)
                    shutil.rmtree(db_dir, ignore_errors=True)
                    db_dir.mkdir(parents=True)
                proc, cpu = run_db_bench(cmd)
                output = proc.stdout
                match = RESULT.search(output)
                if proc.returncode != 0 or match is None:
                    tail = (proc.stderr.strip() or output.strip()).splitlines()[-3:]
                    raise RuntimeError(f"db_bench exited with {proc.returncode}: "
                                       + " / ".join(tail))
            except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                failed += 1
                entry.update(error_occurred=True, error_message=str(e))
                result["benchmarks"].append(entry)
                print(f"    error: {e}", file=sys.stderr)
                continue
            finally:
                shutil.rmtree(db_dir, ignore_errors=True)
            wall = time.monotonic() - started
            ops_per_s = float(match.group(2))
            ops = int(match.group(4)) if match.group(4) else num * threads
            if "Assertions are enabled" in output:
                context["assertions_enabled"] = True
            entry.update(ops_per_s=ops_per_s, ns_per_op=1e9 / ops_per_s if ops_per_s else None,
                         micros_per_op=float(match.group(1)), ops=ops,
                         seconds=float(match.group(3)) if match.group(3) else None,
                         process_wall_s=wall, process_cpu_s=cpu,
                         real_time=1e9 / ops_per_s if ops_per_s else 0, cpu_time=0)
            if not sync and cpu > fixed_cpu:
                # One writing thread and no memtable flush at these counts:
                # nearly all of this CPU time is the writes'. Not set for
                # synced runs, whose threads mostly wait for the disk.
                entry["cpu_ns_per_op"] = (cpu - fixed_cpu) * 1e9 / ops
                entry["fixed_cpu_s"] = fixed_cpu
            result["benchmarks"].append(entry)
            print(f"    {ops_per_s:,.0f} ops/s ({ops:,} operations)", flush=True)
    try:
        work_dir.rmdir()  # only if empty: never delete what was there before
    except OSError:
        pass
    write()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
