#!/usr/bin/env python3
"""Counts the instructions of OrSet<std::string>::Add at several set sizes.

Runs bench/orset_add_cost.cc (converge_orset_add_cost) under valgrind's
callgrind and writes the counts as a results file in the shape of Google
Benchmark JSON, which bench/report.py reads like the other suites.

Usage:
  bench/orset_add_cost.py --binary PATH --out FILE [--mode quick|full]
                          [--repetitions N] [--filter REGEX] [--adds M]
                          [--work-dir DIR] [--jobs N]

For each size N (1,000, 10,000, 100,000 and 1,000,000) the binary builds a
set of N elements and then performs M (default 10,000) further adds; only
these M adds are counted. Runs, named like benchmarks:

  OrSetAddCost/instructions/reserved/size:N
      set reserved for N + M elements first, so no vector or index growth
      falls among the M adds; callgrind with --instr-atstart=no, the binary
      switching instrumentation on and off around the M adds with
      CALLGRIND_START/STOP_INSTRUMENTATION. Repeated --repetitions times in a
      full run (the count is deterministic; the repetitions show it).
  OrSetAddCost/instructions/unreserved/size:N
      the same without reserve: growth that falls among the M adds counts.
  OrSetAddCost/cache_l2/size:N, OrSetAddCost/cache_l3/size:N
      reserved, with callgrind's cache simulation: level 1 caches and a last
      level (LL) the size of this machine's L2 or L3 (read from
      /sys/devices/system/cpu/cpu0/cache). The whole run is simulated, so the
      caches hold what building the set left in them, and only the M adds are
      counted (--collect-atstart=no --toggle-collect on the function that
      performs them). A quick run simulates sizes below 1,000,000 only
      (the simulation of building the largest set takes a minute per level).

  OrSetAddCost/heap/size:N
      run natively, without valgrind: set_heap_bytes of a set of N elements
      built without reserve.

The runs are independent and run --jobs (default: the number of CPUs) at a
time: callgrind counts instructions and simulates the caches itself, so
neither depends on what else runs; seconds_under_valgrind does.

Counters of each run: instructions_per_op (Ir / M), d1_misses_per_op and
ll_misses_per_op (cache runs), set_heap_bytes (heap in use by the set after
the N adds), ir_total and adds. If valgrind is not installed the file records
why in context.skipped and holds no runs, and every figure drawn from it is
reported as not measured.

Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = [1_000, 10_000, 100_000, 1_000_000]
# A quick run simulates the caches only below this size.
QUICK_CACHE_SIZE_LIMIT = 1_000_000
MEASURED_FUNCTION = "converge_bench_measured_adds"
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[match.group(2)]


def read_caches() -> dict[str, dict]:
    """This machine's caches as valgrind cache options, by name (L1d, L1i, L2, L3)."""
    caches = {}
    for index in sorted(CACHE_DIR.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = parse_size((index / "size").read_text())
            ways = int((index / "ways_of_associativity").read_text())
            line = int((index / "coherency_line_size").read_text())
        except (OSError, ValueError):
            continue
        name = {"Data": f"L{level}d", "Instruction": f"L{level}i"}.get(kind, f"L{level}")
        caches[name] = dict(size=size, ways=ways, line=line)
    return caches


def cache_option(cache: dict) -> str:
    return f"{cache['size']},{cache['ways']},{cache['line']}"


def valid_for_valgrind(cache: dict) -> bool:
    """Valgrind needs a power-of-two number of sets."""
    if not cache or cache["ways"] <= 0 or cache["line"] <= 0:
        return False
    sets, rest = divmod(cache["size"], cache["ways"] * cache["line"])
    return rest == 0 and sets > 0 and sets & (sets - 1) == 0


def describe_cache(cache: dict) -> str:
    size = cache["size"]
    text = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
    return f"{text}, {cache['ways']}-way, {cache['line']}-byte lines"


def read_callgrind_totals(path: Path) -> dict[str, int]:
    """Event name -> total, from the "events:" and "totals:" lines of a callgrind file."""
    events: list[str] = []
    totals: list[int] | None = None
    summary: list[int] | None = None
    with path.open() as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split(":", 1)[1].split()
            elif line.startswith("totals:"):
                totals = [int(x) for x in line.split(":", 1)[1].split()]
            elif line.startswith("summary:"):
                summary = [int(x) for x in line.split(":", 1)[1].split()]
    # With --instr-atstart=no callgrind writes "summary: 0"; "totals:" holds
    # the sum of the collected costs. Missing trailing values are zero.
    values = totals if totals is not None else summary
    if not events or values is None:
        raise ValueError(f"{path}: no events/totals lines")
    values = values + [0] * (len(events) - len(values))
    return dict(zip(events, values))


def parse_output(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


class Runner:
    def __init__(self, valgrind: str, binary: Path, adds: int, work_dir: Path):
        self.valgrind = valgrind
        self.binary = binary
        self.adds = adds
        self.work_dir = work_dir

    def run(self, name: str, size: int, reserved: bool, tool_args: list[str],
            repetition: int) -> dict:
        out_file = self.work_dir / (re.sub(r"[^A-Za-z0-9]+", "_", name) + f".{repetition}.out")
        program = [str(self.binary), str(size), str(self.adds)]
        if not reserved:
            program.append("--unreserved")
        command = [self.valgrind, "--tool=callgrind", f"--callgrind-out-file={out_file}",
                   *tool_args, *program]
        entry = dict(name=name, run_name=name, run_type="iteration",
                     repetition_index=repetition, iterations=1, adds=self.adds,
                     command=" ".join(["valgrind", "--tool=callgrind", *tool_args,
                                       self.binary.name, *program[1:]]))
        start = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
        entry["seconds_under_valgrind"] = round(time.monotonic() - start, 2)
        output = parse_output(proc.stdout)
        try:
            if proc.returncode != 0:
                raise RuntimeError(f"exit status {proc.returncode}: "
                                   + (proc.stderr.strip().splitlines() or ["no output"])[-1])
            if int(output.get("final_size", -1)) != size + self.adds:
                raise RuntimeError(f"final size {output.get('final_size')}, "
                                   f"expected {size + self.adds}")
            totals = read_callgrind_totals(out_file)
        except (RuntimeError, ValueError, OSError) as error:
            entry.update(error_occurred=True, error_message=str(error))
            return entry
        entry["ir_total"] = totals.get("Ir", 0)
        entry["instructions_per_op"] = totals.get("Ir", 0) / self.adds
        if "D1mr" in totals:
            entry["d1_misses_per_op"] = (totals["D1mr"] + totals.get("D1mw", 0)) / self.adds
            entry["ll_misses_per_op"] = (totals.get("DLmr", 0) + totals.get("DLmw", 0)
                                         + totals.get("ILmr", 0)) / self.adds
            entry["ll_read_misses_per_op"] = totals.get("DLmr", 0) / self.adds
            entry["ll_write_misses_per_op"] = totals.get("DLmw", 0) / self.adds
        if "set_heap_bytes" in output:
            entry["set_heap_bytes"] = int(output["set_heap_bytes"])
        return entry


def native_heap_run(binary: Path, name: str, size: int, adds: int) -> dict:
    """Runs the binary natively without reserve: the heap of a set of `size` elements."""
    entry = dict(name=name, run_name=name, run_type="iteration", repetition_index=0,
                 iterations=1, adds=adds)
    proc = subprocess.run([str(binary), str(size), str(adds), "--unreserved"],
                          capture_output=True, text=True, check=False)
    output = parse_output(proc.stdout)
    if proc.returncode != 0 or "set_heap_bytes" not in output:
        entry.update(error_occurred=True,
                     error_message=f"exit status {proc.returncode}: {proc.stderr.strip()}")
    else:
        entry["set_heap_bytes"] = int(output["set_heap_bytes"])
    return entry


def selected(name: str, pattern: str | None) -> bool:
    """Google Benchmark's --benchmark_filter: a regex searched in the name; '-' negates."""
    if not pattern:
        return True
    if pattern.startswith("-"):
        return re.search(pattern[1:], name) is None
    return re.search(pattern, name) is not None


def write(out: Path, context: dict, runs: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"context": context, "benchmarks": runs}, indent=2) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=["quick", "full"], default="full")
    parser.add_argument("--repetitions", type=int, default=5,
                        help="runs of each reserved instruction count in a full run")
    parser.add_argument("--filter", help="run only the runs whose name matches this regex")
    parser.add_argument("--adds", type=int, default=10_000, help="measured adds per run (M)")
    parser.add_argument("--work-dir", type=Path,
                        help="where to keep the callgrind output files (default: a temporary "
                             "directory, removed afterwards)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="valgrind runs at once (default: the CPUs); the counts do not "
                             "depend on it")
    args = parser.parse_args(argv)

    context = dict(adds_per_run=args.adds, sizes=SIZES, mode=args.mode,
                   measured_function=MEASURED_FUNCTION)

    # The heap of the set at each size needs no valgrind: native runs.
    runs: list[dict] = []
    for size in SIZES:
        name = f"OrSetAddCost/heap/size:{size}"
        if selected(name, args.filter):
            runs.append(native_heap_run(args.binary, name, size, args.adds))

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        reason = ("valgrind is not installed (Debian package valgrind; scripts/test installs it "
                  "when run as root)")
        context["skipped"] = reason
        write(args.out, context, runs)
        print(f"bench/run: instruction-count figures skipped: {reason}", flush=True)
        return 0
    version = subprocess.run([valgrind, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    context["valgrind"] = version

    # A native run says whether the binary was built with <valgrind/callgrind.h>.
    probe = subprocess.run([str(args.binary), "1", "1"], capture_output=True, text=True,
                           check=False)
    if probe.returncode != 0:
        print(f"orset_add_cost.py: {args.binary} failed: {probe.stderr.strip()}",
              file=sys.stderr)
        return 1
    client_requests = parse_output(probe.stdout).get("client_requests") == "yes"
    context["client_requests"] = "yes" if client_requests else "no"
    if client_requests:
        count_args = ["--instr-atstart=no"]
        context["instruction_method"] = (
            "callgrind --instr-atstart=no, with the binary switching instrumentation on and "
            "off around the measured adds by CALLGRIND_START_INSTRUMENTATION and "
            "CALLGRIND_STOP_INSTRUMENTATION")
    else:
        count_args = ["--collect-atstart=no", f"--toggle-collect={MEASURED_FUNCTION}"]
        context["instruction_method"] = (
            "callgrind --collect-atstart=no --toggle-collect=" + MEASURED_FUNCTION
            + ", as the binary was built without <valgrind/callgrind.h>")

    caches = read_caches()
    context["cache_text"] = {name: describe_cache(c) for name, c in caches.items()}
    context["cache_bytes"] = {name: c["size"] for name, c in caches.items()}
    level1 = []
    for name, option in (("L1d", "--D1"), ("L1i", "--I1")):
        if valid_for_valgrind(caches.get(name, {})):
            level1.append(f"{option}={cache_option(caches[name])}")
    cache_runs = {}
    cache_skipped = {}
    for name in ("L2", "L3"):
        cache = caches.get(name)
        if cache is None:
            cache_skipped[name] = f"this machine reports no {name} cache"
        elif not valid_for_valgrind(cache):
            cache_skipped[name] = (f"the {name} cache ({describe_cache(cache)}) has a number of "
                                   "sets valgrind cannot simulate")
        else:
            cache_runs[name] = ["--collect-atstart=no", f"--toggle-collect={MEASURED_FUNCTION}",
                                "--cache-sim=yes", *level1, f"--LL={cache_option(cache)}"]
    if cache_skipped:
        context["cache_skipped"] = cache_skipped
    context["cache_simulation"] = {
        name: " ".join(a for a in run_args if a.startswith(("--D1", "--I1", "--LL")))
        for name, run_args in cache_runs.items()}

    repetitions = 1 if args.mode == "quick" else max(1, args.repetitions)
    plan = []  # (name, size, reserved, tool args, repetitions)
    for size in SIZES:
        plan.append((f"OrSetAddCost/instructions/reserved/size:{size}", size, True,
                     count_args, repetitions))
    for size in SIZES:
        plan.append((f"OrSetAddCost/instructions/unreserved/size:{size}", size, False,
                     count_args, 1))
    # Simulating the caches through the build of a 1,000,000-element set takes
    # a minute per level: a quick run simulates the smaller sizes only.
    cache_sizes = [n for n in SIZES if args.mode == "full" or n < QUICK_CACHE_SIZE_LIMIT]
    context["cache_sizes"] = cache_sizes
    for name, run_args in cache_runs.items():
        for size in cache_sizes:
            plan.append((f"OrSetAddCost/cache_{name.lower()}/size:{size}", size, True,
                         run_args, 1))
    plan = [p for p in plan if selected(p[0], args.filter)]

    with tempfile.TemporaryDirectory(prefix="orset_add_cost.") as tmp:
        work_dir = args.work_dir or Path(tmp)
        work_dir.mkdir(parents=True, exist_ok=True)
        runner = Runner(valgrind, args.binary, args.adds, work_dir)
        # Independent runs, --jobs at a time: the counts (and the simulated
        # caches) do not depend on what else runs; only the wall time does.
        jobs = [(name, size, reserved, tool_args, repetition, reps)
                for name, size, reserved, tool_args, reps in plan
                for repetition in range(reps)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(runner.run, name, size, reserved, tool_args, repetition)
                       for name, size, reserved, tool_args, repetition, _ in jobs]
            for (name, _, _, _, repetition, reps), future in zip(jobs, futures):
                entry = future.result()
                runs.append(entry)
                if entry.get("error_occurred"):
                    detail = "error: " + entry["error_message"]
                else:
                    detail = f"{entry['instructions_per_op']:,.1f} instructions/add"
                    if "ll_misses_per_op" in entry:
                        detail += f", {entry['ll_misses_per_op']:.3f} LL misses/add"
                print(f"    {name}{f' #{repetition + 1}' if reps > 1 else ''}: {detail} "
                      f"({entry['seconds_under_valgrind']:.1f} s)", flush=True)
    write(args.out, context, runs)
    return 1 if any(r.get("error_occurred") for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
