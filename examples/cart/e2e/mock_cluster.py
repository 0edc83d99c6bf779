#!/usr/bin/env python3
"""A stand-in cart cluster for developing the web page (Python 3 stdlib only).

Not the real thing: N in-memory replicas in one process, one HTTP port each,
implementing the parts of docs/cart-api.md the page uses: GET /, /app.js,
/style.css, /healthz, /cluster, the cart endpoints, CORS for member origins,
and /admin/partition. Carts are OR-maps of causal counters (one dot per
increment, observed remove, docs/semantics.md); every gossip interval each
pair of replicas that is not cut exchanges full states and joins them, so
healing a partition merges exactly as the real cluster does.

    mock_cluster.py --ports 18081,18082,18083 [--no-fault-injection] [--down n3]

The end-to-end test runs against cart-server (run_e2e.sh); `run_e2e.sh
--mock` runs it against this instead.
"""

import argparse
import base64
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CART_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")
MAX_Q = 1_000_000
WEB_TYPES = {"/": ("index.html", "text/html; charset=utf-8"),
             "/app.js": ("app.js", "text/javascript; charset=utf-8"),
             "/style.css": ("style.css", "text/css; charset=utf-8")}


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Cart:
    """OrMap<sku, CausalCounter>: store sku -> {dot: amount}, context = set of dots."""

    def __init__(self):
        self.store = {}
        self.ctx = set()

    def items(self):
        return [{"sku": s, "quantity": sum(d.values())}
                for s, d in sorted(self.store.items(), key=lambda kv: kv[0].encode()) if d]

    def quantity(self, sku):
        return sum(self.store.get(sku, {}).values())

    def add(self, dot, sku, q):
        self.store.setdefault(sku, {})[dot] = q
        self.ctx.add(dot)

    def set(self, dot, sku, q):
        self.store.pop(sku, None)
        if q > 0:
            self.add(dot, sku, q)

    def join(self, other):
        for sku in set(self.store) | set(other.store):
            mine, theirs = self.store.get(sku, {}), other.store.get(sku, {})
            kept = {d: a for d, a in mine.items() if d in theirs or d not in other.ctx}
            kept.update({d: a for d, a in theirs.items() if d not in self.ctx})
            if kept:
                self.store[sku] = kept
            else:
                self.store.pop(sku, None)
        self.ctx |= other.ctx

    def context(self):
        """What a read shows, as the server's context (unsealed here: a mock)."""
        seen = {s: sorted([list(d) for d in dots]) for s, dots in self.store.items() if dots}
        return base64.b64encode(json.dumps(seen, sort_keys=True).encode()).decode()

    def remove_seen(self, seen, skus):
        """Removes exactly the dots a context showed for `skus` (docs/cart-api.md)."""
        for s in skus:
            dots = {tuple(d) for d in seen.get(s, [])}
            line = {d: a for d, a in self.store.get(s, {}).items() if d not in dots}
            if line:
                self.store[s] = line
            else:
                self.store.pop(s, None)
            self.ctx |= dots

    def copy(self):
        c = Cart()
        c.store = {s: dict(d) for s, d in self.store.items()}
        c.ctx = set(self.ctx)
        return c


class Replica:
    def __init__(self, name, http, fault_injection):
        self.name, self.http, self.fault_injection = name, http, fault_injection
        self.lock = threading.Lock()
        self.carts = {}
        self.counter = 0
        self.updates = 0
        self.blocked = set()
        self.peers = {}  # name -> {"acked": updates of ours seen, "heard": time}

    def dot(self):
        self.counter += 1
        return (self.name, self.counter)

    def cart(self, cid):
        return self.carts.setdefault(cid, Cart())


class Cluster:
    def __init__(self, host, ports, fault_injection, web_dir):
        self.web_dir = web_dir
        self.replicas = [Replica(f"n{i + 1}", f"{host}:{p}", fault_injection) for i, p in enumerate(ports)]
        now = time.monotonic()
        for r in self.replicas:
            r.peers = {o.name: {"acked": 0, "heard": now} for o in self.replicas if o is not r}

    def gossip_round(self):
        for a in self.replicas:
            for b in self.replicas:
                if a is b or b.name in a.blocked or a.name in b.blocked:
                    continue
                with a.lock:
                    snapshot = {k: c.copy() for k, c in a.carts.items()}
                    updates = a.updates
                with b.lock:
                    for k, c in snapshot.items():
                        b.cart(k).join(c)
                    b.peers[a.name]["heard"] = time.monotonic()
                with a.lock:
                    a.peers[b.name]["acked"] = updates
                    a.peers[b.name]["heard"] = time.monotonic()

    def cluster_json(self, r):
        now = time.monotonic()
        members = []
        for o in self.replicas:
            if o is r:
                continue
            p = r.peers[o.name]
            silent = now - p["heard"]
            state = "alive" if silent < 1.0 else "suspect" if silent < 3.0 else "dead"
            members.append({"name": o.name, "http": o.http, "gossip": "", "state": state,
                            "lag": r.updates - p["acked"], "acked": p["acked"],
                            "last_heard_ms_ago": int(silent * 1000)})
        return {"node": r.name, "http": r.http, "gossip": "", "replica": "mock-" + r.name,
                "incarnation": 1, "durability": "buffered", "fault_injection": r.fault_injection,
                "blocked": sorted(r.blocked), "members": members,
                "stats": {"updates": r.updates}}


def parse_body(handler, allowed):
    length = int(handler.headers.get("Content-Length") or 0)
    if length > 16 * 1024:
        raise BadRequest(413, "body too large")
    raw = handler.rfile.read(length)
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise BadRequest(400, "body is not JSON")
    if not isinstance(body, dict):
        raise BadRequest(400, "body must be one JSON object")
    unknown = set(body) - set(allowed)
    if unknown:
        raise BadRequest(400, f"unknown field {sorted(unknown)[0]!r}")
    return body


def quantity(body, low):
    q = body.get("quantity")
    if type(q) is not int:
        raise BadRequest(400, "quantity must be an integer")
    if not low <= q <= MAX_Q:
        raise BadRequest(400, f"quantity must be between {low} and {MAX_Q}")
    return q


def check_sku(sku):
    if not isinstance(sku, str) or not 1 <= len(sku.encode("utf-8", "surrogatepass")) <= 128:
        raise BadRequest(400, "sku must be 1-128 bytes")
    if CONTROL.search(sku):
        raise BadRequest(400, "sku contains a control character")
    return sku


def make_handler(cluster, r):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "mock-cart"

        def log_message(self, fmt, *args):  # quiet
            pass

        def cors(self):
            origin = self.headers.get("Origin")
            if origin and origin in {"http://" + o.http for o in cluster.replicas}:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")
            return origin

        def reply(self, status, body, ctype="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.cors()
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self):
            self.send_response(204)
            if self.cors():
                self.send_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", "Content-Type, Idempotency-Key, Cart-Context")
                self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            self.route("GET")

        def do_POST(self):
            self.route("POST")

        def do_PUT(self):
            self.route("PUT")

        def do_DELETE(self):
            self.route("DELETE")

        def route(self, method):
            try:
                status, body, ctype = self.handle_api(method, urlsplit(self.path).path)
                self.reply(status, body, ctype)
            except BadRequest as e:
                self.reply(e.status, {"error": str(e)})

        def handle_api(self, method, path):
            if method == "GET" and path in WEB_TYPES:
                name, ctype = WEB_TYPES[path]
                with open(os.path.join(cluster.web_dir, name), "rb") as f:
                    return 200, f.read(), ctype
            if method == "GET" and path == "/healthz":
                return 200, {"status": "ok", "node": r.name}, "application/json"
            if method == "GET" and path == "/cluster":
                with r.lock:
                    return 200, cluster.cluster_json(r), "application/json"
            if path == "/admin/partition" and r.fault_injection:
                with r.lock:
                    if method == "POST":
                        peers = parse_body(self, {"peers"}).get("peers")
                        if not isinstance(peers, list) or not all(isinstance(p, str) for p in peers):
                            raise BadRequest(400, "peers must be a list of node names")
                        r.blocked |= set(peers)
                    elif method == "DELETE":
                        r.blocked.clear()
                    else:
                        raise BadRequest(405, "method not allowed")
                    return 200, {"blocked": sorted(r.blocked)}, "application/json"
            m = re.fullmatch(r"/carts/([^/]+)(/items(?:/([^/]+))?)?", path)
            if not m:
                raise BadRequest(404, "not found")
            cid = unquote(m.group(1))
            if not CART_ID.match(cid):
                raise BadRequest(400, "bad cart id")
            items, sku = m.group(2), m.group(3)
            token = self.headers.get("Cart-Context")
            try:
                seen = json.loads(base64.b64decode(token, validate=True)) if token is not None else None
                if seen is not None and not isinstance(seen, dict):
                    raise ValueError("not an object")
            except ValueError:
                raise BadRequest(400, "Cart-Context: malformed")
            with r.lock:
                c = r.cart(cid)
                if method == "GET" and not items:
                    pass
                elif method == "DELETE" and not items:
                    if seen is None:
                        c.store.clear()
                    else:
                        c.remove_seen(seen, list(seen))
                    r.updates += 1
                elif method == "POST" and items and sku is None:
                    body = parse_body(self, {"sku", "quantity"})
                    s, q = check_sku(body.get("sku")), quantity(body, 1)
                    if c.quantity(s) + q > MAX_Q:
                        raise BadRequest(409, f"line {s} would exceed {MAX_Q}")
                    if s not in c.store and len(c.store) >= 500:
                        raise BadRequest(409, "cart has 500 lines")
                    c.add(r.dot(), s, q)
                    r.updates += 1
                elif method == "PUT" and sku is not None:
                    s = check_sku(unquote(sku, errors="strict"))
                    q = quantity(parse_body(self, {"quantity"}), 0)
                    if seen is None:
                        c.set(r.dot(), s, q)
                    else:
                        c.remove_seen(seen, [s])
                        if q > 0:
                            c.add(r.dot(), s, q)
                    r.updates += 1
                elif method == "DELETE" and sku is not None:
                    s = check_sku(unquote(sku, errors="strict"))
                    if seen is None:
                        c.store.pop(s, None)
                    else:
                        c.remove_seen(seen, [s])
                    r.updates += 1
                else:
                    raise BadRequest(405, "method not allowed")
                return 200, {"cart": cid, "items": c.items(), "context": c.context()}, "application/json"

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--ports", required=True, help="comma-separated HTTP ports, one replica each (n1, n2, ...)")
    ap.add_argument("--no-fault-injection", action="store_true")
    ap.add_argument("--gossip-interval-ms", type=int, default=100)
    ap.add_argument("--down", action="append", default=[], metavar="NAME",
                    help="list this replica as a member but do not serve its port (an unreachable replica)")
    ap.add_argument("--web-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "web"))
    args = ap.parse_args()

    ports = [int(p) for p in args.ports.split(",")]
    cluster = Cluster(args.host, ports, not args.no_fault_injection, args.web_dir)
    servers = []
    for r, port in zip(cluster.replicas, ports):
        if r.name in args.down:
            r.blocked = {o.name for o in cluster.replicas if o is not r}
            print(f"{r.name} http://{r.http}/ (down)", flush=True)
            continue
        srv = ThreadingHTTPServer((args.host, port), make_handler(cluster, r))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        print(f"{r.name} http://{r.http}/", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(args.gossip_interval_ms / 1000):
        cluster.gossip_round()
    for srv in servers:  # the serving threads are daemons: closing the sockets is enough
        srv.server_close()


if __name__ == "__main__":
    main()
