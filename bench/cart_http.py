#!/usr/bin/env python3
"""HTTP throughput and latency of one cart-server, beside nginx on the same box.

Drives a cart-server (examples/cart, docs/cart-api.md) with wrk: writes
(POST /carts/<id>/items, a new cart per request, bench/wrk/cart_write.lua)
with --durability buffered and then sync, and reads (GET /carts/<id> of the
carts just written, bench/wrk/cart_read.lua); and, in the same run, nginx
serving a small static file of the size of a cart answer, as the ceiling of
an HTTP server on this machine with this client. Writes the results as a file
in the shape of Google Benchmark JSON, which bench/report.py reads like the
other suites.

Usage:
  bench/cart_http.py --server PATH --out FILE [--mode quick|full]
                     [--repetitions N] [--filter REGEX] [--work-dir DIR]
                     [--threads T] [--connections C] [--duration S]
                     [--wrk PATH|none] [--nginx PATH|none]

Runs, named like benchmarks (each repetition starts fresh servers):

  CartHttp/write/durability:buffered   POST, cart-server --durability buffered
  CartHttp/read/durability:buffered    GET of the carts that run wrote
  CartHttp/write/durability:sync       POST, cart-server --durability sync
  NginxStatic/get                      GET of a static file from nginx

each `wrk -tT -cC -dS --latency` (default -t2 -c32; -d10s full, -d3s quick)
after a 1 s warm-up run of the same script that is not counted. cart-server
runs with --insecure-loopback (no peers: one replica), a fresh --data
directory under DIR (default build-bench/cart-http, deleted afterwards) and
its other defaults; nginx (Debian nginx-light) with a minimal configuration
in a temporary directory (worker_processes auto, access_log off,
keepalive_requests 1000000 so that it keeps wrk's connections open as
cart-server does), on a free loopback port. The static file holds the body
cart-server answered to a GET of one of the written carts, so both send
answers of the same size.

Counters of each run: requests_per_s (wrk's Requests/sec), p50_ms, p75_ms,
p90_ms, p99_ms (wrk's latency distribution, --latency), avg_ms, requests,
non2xx (answers that were not 2xx or 3xx; more than 0.1 % of the requests
fails the run), socket_errors, server_cpu_us_per_request (user + system CPU
time of the server's processes, all threads, over the run, per request),
wrk_cpu_us_per_request (the same for wrk) and other_cpu_fraction (the share
of the machine's CPU time, /proc/stat, that neither used while wrk ran: other
processes competing for the CPUs). wrk and the server share the
machine's CPUs, so a rate here is that of the pair; the same holds for nginx.

When wrk is not installed the file records why in context.skipped and holds
no runs; when nginx is not, in context.nginx_skipped, and only the nginx run
is missing. Every figure drawn from a missing run is reported as not
measured. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WRITE_SCRIPT = BENCH_DIR / "wrk" / "cart_write.lua"
READ_SCRIPT = BENCH_DIR / "wrk" / "cart_read.lua"
WARMUP_SECONDS = 1
START_TIMEOUT_SECONDS = 30
# More answers than this fraction outside 2xx/3xx fail a run.
MAX_ERROR_FRACTION = 0.001

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LATENCY_LINE = re.compile(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_AVG_LINE = re.compile(r"^\s+Latency\s+([0-9.]+)(us|ms|s|m|h)", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_REQUESTS = re.compile(r"^\s+([0-9]+) requests in ([0-9.]+)(us|ms|s|m|h)", re.MULTILINE)
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+([0-9]+)")
_SOCKET = re.compile(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), "
                     r"timeout ([0-9]+)")
_WRITTEN = re.compile(r"^carts-written thread=([0-9]+) requests=([0-9]+)", re.MULTILINE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_until_serving(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} at start")
        try:
            status, _ = http_get(url, timeout=1.0)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {START_TIMEOUT_SECONDS} s")


def process_tree(pid: int) -> list[int]:
    """pid and its children (nginx's workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            pids.append(int(entry))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all CPUs, /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_wrk(output: str) -> dict:
    rps = _RPS.search(output)
    latencies = {p: float(v) * _UNITS[u] for p, v, u in _LATENCY_LINE.findall(output)}
    requests = _REQUESTS.search(output)
    if rps is None or "50" not in latencies or "99" not in latencies or requests is None:
        raise RuntimeError("could not read wrk's output: "
                           + " / ".join(output.strip().splitlines()[-4:]))
    avg = _AVG_LINE.search(output)
    non2xx = _NON2XX.search(output)
    sock = _SOCKET.search(output)
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": latencies["50"], "p75_ms": latencies.get("75"),
        "p90_ms": latencies.get("90"), "p99_ms": latencies["99"],
        "avg_ms": float(avg.group(1)) * _UNITS[avg.group(2)] if avg else None,
        "requests": int(requests.group(1)),
        "seconds": float(requests.group(2)) * _UNITS[requests.group(3)] / 1e3,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
    }


class Wrk:
    def __init__(self, binary: str, threads: int, connections: int):
        self.binary = binary
        self.threads = threads
        self.connections = connections

    def command(self, url: str, seconds: int, script: Path | None, script_args: list[str]):
        cmd = [self.binary, f"-t{self.threads}", f"-c{self.connections}", f"-d{seconds}s",
               "--latency", "--timeout", "10s"]
        if script is not None:
            cmd += ["-s", str(script)]
        cmd.append(url)
        if script_args:
            cmd += ["--"] + script_args
        return cmd

    def run(self, url: str, seconds: int, script: Path | None = None,
            script_args: list[str] | None = None, server_pids: list[int] | None = None):
        cmd = self.command(url, seconds, script, script_args or [])
        server_before = cpu_seconds(server_pids or [])
        wrk_before = children_cpu_seconds()
        busy_before = machine_busy_seconds()
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        wall = time.monotonic() - started
        busy = machine_busy_seconds() - busy_before
        wrk_cpu = children_cpu_seconds() - wrk_before
        server_cpu = cpu_seconds(server_pids or []) - server_before
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise RuntimeError(f"wrk exited with {proc.returncode}: " + " / ".join(tail))
        result = parse_wrk(proc.stdout)
        n = max(1, result["requests"])
        result["server_cpu_us_per_request"] = server_cpu * 1e6 / n
        result["wrk_cpu_us_per_request"] = wrk_cpu * 1e6 / n
        # The share of the machine's CPU time that neither wrk nor the server
        # used while wrk ran: other processes (and this script, polling none).
        result["other_cpu_fraction"] = max(0.0, busy - wrk_cpu - server_cpu) / (
            (os.cpu_count() or 1) * wall)
        result["written"] = {int(t): int(c) for t, c in _WRITTEN.findall(proc.stdout)}
        result["command"] = cmd
        return result


class CartServer:
    def __init__(self, binary: str, work_dir: Path, durability: str, name: str):
        self.binary = binary
        self.data = work_dir / f"data-{name}"
        self.log = work_dir / f"{name}.log"
        self.durability = durability
        self.http = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [self.binary, "--id", "bench", "--http", self.http,
                "--gossip", f"127.0.0.1:{free_port()}", "--data", str(self.data),
                "--insecure-loopback", "--durability", self.durability]

    def __enter__(self):
        shutil.rmtree(self.data, ignore_errors=True)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        try:
            wait_until_serving(f"http://{self.http}/healthz", self.proc,
                               f"cart-server --durability {self.durability}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        stop(self.proc)
        shutil.rmtree(self.data, ignore_errors=True)


NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  default_type application/json;
  server {{
    listen 127.0.0.1:{port};
    location / {{ root {prefix}/www; }}
  }}
}}
"""


class Nginx:
    def __init__(self, binary: str, body: bytes):
        self.binary = binary
        self.body = body
        self.port = free_port()
        self.prefix: Path | None = None
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        self.prefix = Path(tempfile.mkdtemp(prefix="converge-bench-nginx-"))
        # Readable by the workers, which run as another user when started as root.
        self.prefix.chmod(0o755)
        (self.prefix / "www").mkdir(mode=0o755)
        (self.prefix / "tmp").mkdir(mode=0o755)
        (self.prefix / "www" / "cart.json").write_bytes(self.body)
        (self.prefix / "www" / "cart.json").chmod(0o644)
        user = "user nobody nogroup;" if os.geteuid() == 0 else ""
        (self.prefix / "nginx.conf").write_text(
            NGINX_CONF.format(prefix=self.prefix, port=self.port, user=user))
        self.proc = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-e", str(self.prefix / "error.log"),
             "-c", str(self.prefix / "nginx.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until_serving(self.url, self.proc, "nginx")
        except BaseException:
            errors = ""
            try:
                errors = (self.prefix / "error.log").read_text()[-500:]
            except OSError:
                pass
            self.__exit__(None, None, None)
            raise RuntimeError(f"nginx did not start: {errors.strip()}") from None
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cart.json"

    def __exit__(self, *exc):
        stop(self.proc, signal.SIGQUIT)
        if self.prefix is not None:
            shutil.rmtree(self.prefix, ignore_errors=True)


def version_of(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}", package],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        return out or None
    except (OSError, subprocess.SubprocessError):
        return None


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
    parser.add_argument("--server", required=True, help="the cart-server binary")
    parser.add_argument("--wrk", default=None, help="wrk binary (default: PATH; none: skip)")
    parser.add_argument("--nginx", default=None,
                        help="nginx binary (default: PATH and /usr/sbin; none: skip it)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--mode", choices=("quick", "full"), default="full")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--filter", default=None)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=None, help="seconds per wrk run")
    args = parser.parse_args(argv)

    quick = args.mode == "quick"
    repetitions = 1 if quick else max(1, args.repetitions)
    duration = args.duration or (3 if quick else 10)
    context: dict = {"mode": args.mode, "repetitions": repetitions, "duration_s": duration,
                     "threads": args.threads, "connections": args.connections,
                     "warmup_s": WARMUP_SECONDS,
                     "load_avg": list(os.getloadavg())}
    result = {"context": context, "benchmarks": []}

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    wrk_binary = None if args.wrk == "none" else (args.wrk or shutil.which("wrk"))
    if not wrk_binary:
        context["skipped"] = ("wrk is not installed (Debian: apt-get install wrk)"
                              if args.wrk != "none" else "wrk was not used (--wrk none)")
        write()
        print(f"cart HTTP figures skipped: {context['skipped']}")
        return 0
    nginx_binary = None if args.nginx == "none" else (
        args.nginx or shutil.which("nginx")
        or shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"))
    if not nginx_binary:
        context["nginx_skipped"] = ("nginx is not installed (Debian: apt-get install "
                                    "nginx-light)" if args.nginx != "none"
                                    else "nginx was not used (--nginx none)")
        print(f"nginx reference skipped: {context['nginx_skipped']}")
    context["wrk_version"] = version_of("wrk") or "wrk"
    if nginx_binary:
        context["nginx"] = nginx_binary
        context["nginx_version"] = (version_of("nginx-light") or version_of("nginx-core")
                                    or version_of("nginx") or "nginx")
    wrk = Wrk(wrk_binary, args.threads, args.connections)
    work_dir = (args.work_dir or args.out.parent.parent / "cart-http").resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    context["commands"] = {}
    failed = 0

    def record(name: str, rep: int, measure) -> dict | None:
        nonlocal failed
        entry = {"name": name, "run_name": name, "run_type": "iteration",
                 "repetitions": repetitions, "repetition_index": rep, "iterations": 1,
                 "threads": 1, "time_unit": "ms"}
        print(f"  {name} (repetition {rep + 1}/{repetitions}, {duration} s)", flush=True)
        try:
            r = measure()
            if r["non2xx"] > MAX_ERROR_FRACTION * max(1, r["requests"]):
                raise RuntimeError(f"{r['non2xx']} of {r['requests']} answers were not 2xx")
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            failed += 1
            entry.update(error_occurred=True, error_message=str(e))
            result["benchmarks"].append(entry)
            print(f"    error: {e}", file=sys.stderr)
            return None
        context["commands"][name] = " ".join(r.pop("command"))
        written = r.pop("written")
        entry.update({k: v for k, v in r.items() if v is not None})
        entry["real_time"] = r["p50_ms"]
        entry["cpu_time"] = 0
        result["benchmarks"].append(entry)
        print(f"    {r['requests_per_s']:,.0f} requests/s, p50 {r['p50_ms']:.2f} ms, "
              f"p99 {r['p99_ms']:.2f} ms", flush=True)
        r["written"] = written
        return r

    cart_body = None
    try:
        for rep in range(repetitions):
            prefix = f"r{rep}w"
            names = ["CartHttp/write/durability:buffered", "CartHttp/read/durability:buffered",
                     "CartHttp/write/durability:sync", "NginxStatic/get"]
            if any(selected(n, args.filter) for n in names[:2]):
                try:
                    with CartServer(args.server, work_dir, "buffered", "buffered") as server:
                        context["server_command_buffered"] = " ".join(server.command())
                        base = f"http://{server.http}"
                        pids = [server.proc.pid]
                        wrk.run(base + "/", WARMUP_SECONDS, WRITE_SCRIPT, ["warm"], pids)
                        written = record(names[0], rep, lambda: wrk.run(
                            base + "/", duration, WRITE_SCRIPT, [prefix], pids))
                        counts = (written or {}).get("written") or {}
                        if counts:
                            # Cart 2 of thread 0 (wrk never sends thread 0's first).
                            first = f"{prefix}0-{(2 * 2654435761) % (1 << 32):08x}"
                            status, body = http_get(f"{base}/carts/{first}")
                            if status == 200:
                                cart_body = body
                        if selected(names[1], args.filter):
                            if not counts:
                                raise RuntimeError("the write run wrote no carts to read")
                            read_args = [prefix] + [str(counts.get(t, 1))
                                                    for t in range(args.threads)]
                            wrk.run(base + "/", WARMUP_SECONDS, READ_SCRIPT, read_args, pids)
                            record(names[1], rep, lambda: wrk.run(
                                base + "/", duration, READ_SCRIPT, read_args, pids))
                except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                    failed += 1
                    print(f"    error: {e}", file=sys.stderr)
                    result["benchmarks"].append(
                        {"name": names[0], "run_name": names[0], "run_type": "iteration",
                         "error_occurred": True, "error_message": str(e)})
            if selected(names[2], args.filter):
                try:
                    with CartServer(args.server, work_dir, "sync", "sync") as server:
                        context["server_command_sync"] = " ".join(server.command())
                        base = f"http://{server.http}"
                        pids = [server.proc.pid]
                        wrk.run(base + "/", WARMUP_SECONDS, WRITE_SCRIPT, ["warm"], pids)
                        record(names[2], rep, lambda: wrk.run(
                            base + "/", duration, WRITE_SCRIPT, [prefix], pids))
                except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                    failed += 1
                    print(f"    error: {e}", file=sys.stderr)
                    result["benchmarks"].append(
                        {"name": names[2], "run_name": names[2], "run_type": "iteration",
                         "error_occurred": True, "error_message": str(e)})
            if nginx_binary and selected(names[3], args.filter):
                body = cart_body or (b'{"cart":"r0w0-9e3779b1","items":'
                                     b'[{"sku":"sku-1","quantity":2}]}')
                context["static_file_bytes"] = len(body)
                try:
                    with Nginx(nginx_binary, body) as nginx:
                        pids = process_tree(nginx.proc.pid)
                        wrk.run(nginx.url, WARMUP_SECONDS, None, [], pids)
                        record(names[3], rep, lambda: wrk.run(nginx.url, duration, None, [],
                                                              pids))
                except (OSError, subprocess.SubprocessError, RuntimeError) as e:
                    failed += 1
                    print(f"    error: {e}", file=sys.stderr)
                    result["benchmarks"].append(
                        {"name": names[3], "run_name": names[3], "run_type": "iteration",
                         "error_occurred": True, "error_message": str(e)})
    finally:
        try:
            work_dir.rmdir()  # only if empty: never delete what was there before
        except OSError:
            pass
        write()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
