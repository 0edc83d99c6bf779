#!/usr/bin/env python3
"""Bootstrap of a new replica: how long an empty node takes to catch up with
one that holds N cart keys, over loopback TCP with mutual TLS.

Starts a converge-node (replication/tools/converge_node.cc) and loads N cart
keys into it with its `loadcarts N` command (one line each, written locally;
the load is timed and reported apart, it is not part of the figure), then
starts a second, empty converge-node seeded with the first and waits until
both have the same digest-tree root (`root`) and the same number of keys
(`keys`). Writes the results as a file in the shape of Google Benchmark JSON,
which bench/report.py reads like the other suites.

Usage:
  bench/bootstrap.py --node PATH --out FILE [--mode quick|full]
                     [--keys N] [--work-dir DIR] [--make-certs PATH]

Run, named like a benchmark: Bootstrap/keys:N, N = 1,000,000 (full) or
100,000 (quick); one repetition whatever the mode (the load of a million keys
takes a while, and the catch-up is one long measurement, not a short one).

The two nodes ("source" and "joiner") use certificates made by
scripts/make-certs in DIR/certs, listen on free loopback ports, keep their
data in fresh directories DIR/source and DIR/joiner (DIR defaults to
build-bench/bootstrap; deleted after a successful run, kept with the nodes'
logs after a failed one) and run with
--durability buffered and otherwise the defaults (200 ms gossip rounds,
fanout 3, 1 MiB messages). The clock of the figure starts when the joiner's
process is spawned and stops at the first poll (every 50 ms) that finds its
root equal to the source's and then its key count equal too: TLS handshake,
membership and the whole anti-entropy catch-up are inside.

Counters: seconds (wall time of the catch-up), mib (bytes the joiner's
transport sent and received, both directions, in MiB; the source's counts
are source_mib_sent and source_mib_received), rss_mib_joiner and
rss_mib_source (peak resident set, VmHWM; the source's high-water mark is
reset just before the joiner starts, through /proc/PID/clear_refs, so that it
is the peak of the catch-up and not of the load; rss_mib_source_load is the
peak of the load), cpu_s_joiner and cpu_s_source (user + system CPU time of
each process during the catch-up), load_s (the load, as loadcarts reports
it), keys_per_s (N / seconds), the node counters of the joiner
(ae_sessions, ae_repairs, ae_keys_repaired), and other_cpu_fraction (the
share of the machine's CPU time, /proc/stat, that neither node used during
the catch-up: other processes competing for the CPUs). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.05


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all CPUs, /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class NodeProcess:
    """One converge-node, driven by its line commands."""

    def __init__(self, binary: str, name: str, data: Path, certs: Path,
                 seeds: list[str] = ()):
        self.name = name
        self.address = f"127.0.0.1:{free_port()}"
        self.cmd = [binary, "--name", name, "--listen", self.address, "--data", str(data),
                    "--tls-dir", str(certs), "--durability", "buffered", "--quiet"]
        for seed in seeds:
            self.cmd += ["--seed", seed]
        self.log = open(data.parent / f"{name}.log", "w")
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise RuntimeError(f"converge-node {name} did not start (said {line!r}); "
                               f"see {self.log.name}")

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer:
            raise RuntimeError(f"converge-node {self.name} ended while answering {command!r}")
        if answer.startswith("error"):
            raise RuntimeError(f"converge-node {self.name}: {command}: {answer}")
        return answer

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in (kv.split("=", 1) for kv in self.ask("stats").split())}

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def hwm_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def reset_hwm(self) -> bool:
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


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
    parser.add_argument("--node", required=True, help="the converge-node binary")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--make-certs", default=str(REPO_ROOT / "scripts" / "make-certs"))
    parser.add_argument("--filter", default=None,
                        help="--benchmark_filter: the run only when its name matches")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds the catch-up may take before the run fails")
    args = parser.parse_args(argv)

    quick = args.mode == "quick"
    keys = args.keys or (100_000 if quick else 1_000_000)
    timeout = args.timeout or (120 if quick else 600)
    name = f"Bootstrap/keys:{keys}"
    context: dict = {"mode": args.mode, "keys": keys, "durability": "buffered",
                     "poll_seconds": POLL_SECONDS,
                     "load_avg": list(os.getloadavg())}
    entry = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1,
             "repetition_index": 0, "iterations": 1, "threads": 1, "time_unit": "s"}
    result = {"context": context, "benchmarks": [entry]}
    if args.filter and not selected(name, args.filter):
        result["benchmarks"] = []
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    work_dir = (args.work_dir or args.out.parent.parent / "bootstrap").resolve()
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    certs = work_dir / "certs"
    source = joiner = None
    failed = False
    try:
        made = subprocess.run([args.make_certs, str(certs), "source", "joiner"],
                              capture_output=True, text=True, timeout=120)
        if made.returncode != 0:
            raise RuntimeError("scripts/make-certs failed: " + made.stderr.strip()[-300:])
        (work_dir / "source").mkdir()
        (work_dir / "joiner").mkdir()
        source = NodeProcess(args.node, "source", work_dir / "source" / "data", certs)
        print(f"  loading {keys:,} carts into the source (loadcarts)", flush=True)
        load = source.ask(f"loadcarts {keys}").split()  # ok N MS
        load_s = int(load[2]) / 1e3
        print(f"    loaded in {load_s:.1f} s", flush=True)
        source_keys = int(source.ask("keys"))
        if source_keys != keys:
            raise RuntimeError(f"the source holds {source_keys} keys after loading {keys}")
        root = source.ask("root")
        load_hwm = source.hwm_mib()
        reset = source.reset_hwm()
        source_before = source.stats()
        source_cpu0 = source.cpu_seconds()

        print(f"  starting an empty joiner seeded with the source", flush=True)
        busy0 = machine_busy_seconds()
        started = time.monotonic()
        joiner = NodeProcess(args.node, "joiner", work_dir / "joiner" / "data", certs,
                             [source.address])
        polls = 0
        while True:
            polls += 1
            if joiner.ask("root") == root and int(joiner.ask("keys")) == keys:
                break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"the joiner had not caught up after {timeout:.0f} s "
                                   f"({joiner.ask('keys')} of {keys} keys)")
            time.sleep(POLL_SECONDS)
        seconds = time.monotonic() - started
        joiner_cpu = joiner.cpu_seconds()
        source_cpu = source.cpu_seconds() - source_cpu0
        busy = machine_busy_seconds() - busy0
        j = joiner.stats()
        s = source.stats()
        entry.update(
            seconds=seconds, real_time=seconds, cpu_time=0,
            mib=(j["net_bytes_sent"] + j["net_bytes_received"]) / 2**20,
            joiner_mib_received=j["net_bytes_received"] / 2**20,
            joiner_mib_sent=j["net_bytes_sent"] / 2**20,
            source_mib_sent=(s["net_bytes_sent"] - source_before["net_bytes_sent"]) / 2**20,
            source_mib_received=(s["net_bytes_received"]
                                 - source_before["net_bytes_received"]) / 2**20,
            rss_mib_joiner=joiner.hwm_mib(), rss_mib_source=source.hwm_mib(),
            rss_mib_source_load=load_hwm,
            cpu_s_joiner=joiner_cpu, cpu_s_source=source_cpu,
            load_s=load_s, keys_per_s=keys / seconds, keys=keys,
            bytes_per_key=(j["net_bytes_received"]) / keys,
            ae_sessions=j["ae_sessions"], ae_repairs=j["ae_repairs"],
            ae_keys_repaired=j["ae_keys_repaired"], polls=polls,
            other_cpu_fraction=max(0.0, busy - joiner_cpu - source_cpu)
            / ((os.cpu_count() or 1) * seconds))
        context["source_hwm_reset"] = reset
        context["commands"] = {"source": " ".join(source.cmd), "joiner": " ".join(joiner.cmd)}
        print(f"    caught up in {seconds:.2f} s: {entry['mib']:.1f} MiB, peak RSS source "
              f"{entry['rss_mib_source']:.0f} MiB, joiner {entry['rss_mib_joiner']:.0f} MiB; "
              f"CPU source {source_cpu:.1f} s, joiner {joiner_cpu:.1f} s", flush=True)
    except (OSError, subprocess.SubprocessError, RuntimeError, ValueError, IndexError) as e:
        failed = True
        entry.update(error_occurred=True, error_message=str(e))
        print(f"    error: {e}", file=sys.stderr)
    finally:
        for node in (joiner, source):
            if node is not None:
                node.close()
        if not failed:  # a failed run leaves its logs
            shutil.rmtree(work_dir, ignore_errors=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
