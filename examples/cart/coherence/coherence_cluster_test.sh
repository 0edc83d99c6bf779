#!/usr/bin/env bash
# coherence-check against a real 3-node cart-server cluster (docs/coherence.md,
# "Testing"):
#   1. carts written over HTTP converge; a scan is clean (exit 0);
#   2. one replica's state of one cart is corrupted with /admin/corrupt: one
#      scan flags exactly that key on that node as unexplainable (exit 1),
#      nothing else, and --repair leaves it alone;
#   3. a node is partitioned and carts are written on both sides: with a short
#      grace the scan says behind/concurrent (exit 0, converging); --repair
#      makes every node equal (checked by digests and by GET /carts);
#   4. after healing, a full scan still finds exactly the planted corruption;
#   5. errors exit 2: bad flags, a node nothing listens on, a --metrics address
#      that is taken;
#   6. --watch 0.5 --metrics serves converge_coherence_* over HTTP (the planted
#      corruption included) and exits 0 on SIGTERM.
#
# usage: coherence_cluster_test.sh CART_SERVER COHERENCE_CHECK [WORK_DIR]
# Exit 0 pass, 1 fail, 77 skipped (something needed is missing).
# COHERENCE_BENCH_KEYS=N also writes N carts and reports scan figures.
set -u -o pipefail

SERVER=${1:-}
CHECK=${2:-}
WORK=${3:-$(mktemp -d -t coherence-cluster.XXXXXX)}

skip() { echo "SKIP: $*" >&2; exit 77; }
[[ -n "$SERVER" && -x "$SERVER" ]] || skip "cart-server binary not given or not executable: '$SERVER'"
[[ -n "$CHECK" && -x "$CHECK" ]] || skip "coherence-check binary not given or not executable: '$CHECK'"
command -v curl >/dev/null || skip "curl is not installed"
command -v python3 >/dev/null || skip "python3 is not installed"

rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
FAILED=0

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  wait 2>/dev/null
  if [[ $FAILED -ne 0 ]]; then
    echo "--- server logs (last lines) ---" >&2
    for f in "$WORK"/n*.log; do echo "== $f" >&2; tail -n 20 "$f" >&2; done
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*" >&2; FAILED=1; exit 1; }
step() { echo "== $*"; }

# Seven free loopback ports (HTTP and gossip of three nodes, metrics).
read -r -a PORTS < <(python3 - <<'PY'
import socket
socks = []
for _ in range(7):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
) || skip "cannot find free ports"
HTTP=("${PORTS[0]}" "${PORTS[1]}" "${PORTS[2]}")
GOSSIP=("${PORTS[3]}" "${PORTS[4]}" "${PORTS[5]}")
METRICS_PORT=${PORTS[6]}
url() { echo "http://127.0.0.1:${HTTP[$1]}"; }

start_node() {  # index
  local i=$1 name="n$(( $1 + 1 ))"
  local args=(--id "$name" --http "127.0.0.1:${HTTP[$i]}" --gossip "127.0.0.1:${GOSSIP[$i]}"
              --data "$WORK/$name" --insecure-loopback --allow-fault-injection --allow-repair
              --gossip-interval-ms 100 --durability buffered)
  [[ $i -gt 0 ]] && args+=(--seed "127.0.0.1:${GOSSIP[0]}")
  "$SERVER" "${args[@]}" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}

for i in 0 1 2; do start_node "$i"; done

# Every node answers /healthz and n1 knows both others with their HTTP address.
for _ in $(seq 200); do
  ok=1
  for i in 0 1 2; do curl -sf "$(url $i)/healthz" >/dev/null || ok=0; done
  if [[ $ok -eq 1 ]] && curl -sf "$(url 0)/cluster" | python3 -c '
import json, sys
m = json.load(sys.stdin)["members"]
sys.exit(0 if sum(1 for x in m if x.get("state") == "alive" and x.get("http")) == 2 else 1)'; then
    break
  fi
  ok=0
  sleep 0.1
done
[[ $ok -eq 1 ]] || fail "the cluster did not form within 20 s"
step "cluster of 3 up: $(url 0) $(url 1) $(url 2)"

post() {  # node path json
  local code
  code=$(curl -s -o "$WORK/last-answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
         --data "$3" "$(url "$1")$2") || fail "POST $2 on n$(( $1 + 1 )): curl failed"
  [[ "$code" == 200 ]] || fail "POST $2 on n$(( $1 + 1 )) $3: HTTP $code $(cat "$WORK/last-answer")"
}
put() {
  local code
  code=$(curl -s -o "$WORK/last-answer" -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
         --data "$3" "$(url "$1")$2") || fail "PUT $2: curl failed"
  [[ "$code" == 200 ]] || fail "PUT $2 on n$(( $1 + 1 )): HTTP $code $(cat "$WORK/last-answer")"
}
delete() {
  local code
  code=$(curl -s -o "$WORK/last-answer" -w '%{http_code}' -X DELETE "$(url "$1")$2") || fail "DELETE $2: curl failed"
  [[ "$code" == 200 ]] || fail "DELETE $2 on n$(( $1 + 1 )): HTTP $code $(cat "$WORK/last-answer")"
}

# Keys (under a prefix) whose digests differ between the nodes, from
# /internal/keys directly: an oracle independent of coherence-check.
differing() {  # prefix -> prints the number of keys that differ
  python3 - "$1" "$(url 0)" "$(url 1)" "$(url 2)" <<'PY'
import json, sys, urllib.parse, urllib.request
prefix, urls = sys.argv[1], sys.argv[2:]
views = []
for u in urls:
    keys, after = {}, ""
    while True:
        q = {"prefix": prefix, "limit": "1000"}
        if after: q["after"] = after
        page = json.load(urllib.request.urlopen(u + "/internal/keys?" + urllib.parse.urlencode(q), timeout=5))
        for k in page["keys"]: keys[k["key"]] = k["digest"]
        if page["next"] is None: break
        after = page["keys"][-1]["key"]
    views.append(keys)
allkeys = set().union(*views)
print(sum(1 for k in allkeys if len({v.get(k) for v in views}) > 1))
PY
}

wait_converged() {  # prefix
  for _ in $(seq 150); do
    [[ "$(differing "$1")" == 0 ]] && return 0
    sleep 0.1
  done
  fail "keys under '$1' did not converge within 15 s ($(differing "$1") differ)"
}

# Runs coherence-check; leaves its exit status in RC and its output in $WORK/$name.out
run_check() {  # name args...
  local name=$1; shift
  "$CHECK" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  RC=$?
}

# A Python assertion over a JSON report: report FILE, code (j is the report).
assert_json() {  # file python-expr message
  python3 - "$1" "$2" <<'PY' || fail "$3 (report: $1)"
import json, sys
j = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2], {"j": j})
sys.exit(0 if ok else 1)
PY
}

# --- 1. converged carts: clean ---------------------------------------------------------------
step "writing carts on every node"
for c in $(seq 0 29); do
  n=$(( c % 3 ))
  post "$n" "/carts/c$c/items" '{"sku":"apple","quantity":2}'
  post $(( (n + 1) % 3 )) "/carts/c$c/items" "{\"sku\":\"pear\",\"quantity\":$(( c % 5 + 1 ))}"
done
wait_converged "cart:c"
for c in 0 5 10; do put $(( c % 3 )) "/carts/c$c/items/pear" '{"quantity":7}'; done
delete 1 "/carts/c7/items/apple"
delete 2 "/carts/c8"
wait_converged "cart:"

step "scan of the converged cluster"
run_check clean --node "$(url 0)" --discover --grace 0.5
[[ $RC -eq 0 ]] || fail "clean scan exited $RC: $(cat "$WORK/clean.out" "$WORK/clean.err")"
grep -q '^result: clean' "$WORK/clean.out" || fail "clean scan did not say clean: $(cat "$WORK/clean.out")"
run_check clean-json --node "$(url 0)" --discover --grace 0.5 --json
[[ $RC -eq 0 ]] || fail "clean --json scan exited $RC"
assert_json "$WORK/clean-json.out" 'j["result"] == "clean" and len(j["nodes"]) == 3 and all(n["reachable"] for n in j["nodes"]) and j["keys"]["scanned"] == 30 and j["keys"]["equal"] == 30 and not j["domain"]' \
  "clean scan: expected 3 reachable nodes, 30 equal keys, no finding"
head -n 4 "$WORK/clean.out"; tail -n 3 "$WORK/clean.out"

# --- 1b. under write load: divergence is only ever behind/concurrent -------------------------
step "scans with grace 0 while writes go on at every node (no false positive allowed)"
python3 - "$WORK/load.stop" "${HTTP[@]}" >"$WORK/load.log" 2>&1 <<'PY' &
import http.client, json, os, random, sys
stop, ports = sys.argv[1], sys.argv[2:]
conns = [http.client.HTTPConnection("127.0.0.1", int(p), timeout=10) for p in ports]
rng = random.Random(7)
writes = 0
while not os.path.exists(stop):
    c = rng.choice(conns)
    cart, sku = f"w{rng.randrange(12)}", rng.choice(["apple", "pear", "fig", "plum"])
    op = rng.random()
    if op < 0.6:
        c.request("POST", f"/carts/{cart}/items", json.dumps({"sku": sku, "quantity": rng.randint(1, 5)}),
                  {"Content-Type": "application/json"})
    elif op < 0.8:
        c.request("PUT", f"/carts/{cart}/items/{sku}", json.dumps({"quantity": rng.randint(0, 9)}),
                  {"Content-Type": "application/json"})
    elif op < 0.95:
        c.request("DELETE", f"/carts/{cart}/items/{sku}")
    else:
        c.request("DELETE", f"/carts/{cart}")
    r = c.getresponse(); r.read()
    assert r.status == 200, (r.status, cart, sku)
    writes += 1
print(writes, "writes")
PY
LOAD=$!
sleep 0.5
for k in 1 2 3 4 5; do
  run_check "load-$k" --node "$(url 0)" --discover --prefix cart:w --grace 0 --json
  [[ $RC -eq 0 ]] || fail "scan $k under load exited $RC: $(cat "$WORK/load-$k.out")"
  assert_json "$WORK/load-$k.out" 'j["keys"]["unexplainable"] == 0 and not j["domain"] and not j["needs_person"]' \
    "scan $k under load flagged something"
  python3 - "$WORK/load-$k.out" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))["keys"]
print(f"   scan under load: {k['scanned']} keys, {k['behind']} behind, {k['concurrent']} concurrent, {k['equal']} equal")
PY
done
touch "$WORK/load.stop"
wait "$LOAD" || fail "the load writer failed: $(cat "$WORK/load.log")"
echo "   load: $(cat "$WORK/load.log")"
wait_converged "cart:w"
run_check load-after --node "$(url 0)" --discover --prefix cart:w --grace 0.5
[[ $RC -eq 0 ]] && grep -q '^result: clean' "$WORK/load-after.out" || fail "not clean after the load: $(cat "$WORK/load-after.out")"

# --- 2. planted corruption ---------------------------------------------------------------------
step "corrupting cart:c3 on n2 (apple: 99, same causal context)"
post 1 /admin/corrupt '{"key":"cart:c3","sku":"apple","quantity":99}'
run_check corrupt --node "$(url 0)" --node "$(url 1)" --node "$(url 2)" --grace 0.5 --json
[[ $RC -eq 1 ]] || fail "scan after corruption exited $RC, expected 1: $(cat "$WORK/corrupt.out")"
assert_json "$WORK/corrupt.out" '[d["key"] for d in j["divergent"]] == ["cart:c3"]' \
  "expected exactly one divergent key, cart:c3"
assert_json "$WORK/corrupt.out" 'j["divergent"][0]["class"] == "unexplainable"' "cart:c3 is not unexplainable"
assert_json "$WORK/corrupt.out" '[n["node"] for n in j["divergent"][0]["nodes"] if n["class"] == "unexplainable"] == ["n2"]' \
  "expected exactly n2 flagged"
assert_json "$WORK/corrupt.out" '[n["class"] for n in j["divergent"][0]["nodes"] if n["node"] != "n2"] == ["current", "current"]' \
  "n1 and n3 should hold the join"
assert_json "$WORK/corrupt.out" 'j["needs_person"] == ["1 unexplainable key"] and not j["domain"] and j["keys"]["equal"] == j["keys"]["scanned"] - 1' \
  "expected nothing else to need a person (no false positives)"
run_check corrupt-human --node "$(url 0)" --discover --grace 0.5
[[ $RC -eq 1 ]] || fail "human scan after corruption exited $RC"
grep -q 'amount 99 here' "$WORK/corrupt-human.out" || fail "the human report does not name the planted amount"
sed -n '/^cart:c3/,/^$/p' "$WORK/corrupt-human.out"
run_check corrupt-repair --node "$(url 0)" --discover --grace 0 --repair --json
[[ $RC -eq 1 ]] || fail "--repair over a corrupt key exited $RC, expected 1"
assert_json "$WORK/corrupt-repair.out" 'j["repairs"]["attempted"] == 0 and j["divergent"][0]["repairs"] == []' \
  "--repair must not push anything over an unexplainable key"

# --- 3. partition: behind and concurrent, then repair -----------------------------------------
step "partitioning n3 from n1 and n2"
post 2 /admin/partition '{"peers":["n1","n2"]}'
post 0 /admin/partition '{"peers":["n3"]}'
post 1 /admin/partition '{"peers":["n3"]}'
post 0 /carts/p1/items '{"sku":"apple","quantity":1}'   # concurrent with n3's write below
post 2 /carts/p1/items '{"sku":"pear","quantity":2}'
post 1 /carts/p2/items '{"sku":"fig","quantity":3}'     # n3 behind (absent)
post 2 /carts/p3/items '{"sku":"kiwi","quantity":4}'    # n1, n2 behind
sleep 1.5                                               # n1 and n2 exchange; n3 cannot
run_check partition --node "$(url 0)" --discover --prefix cart:p --grace 0.3 --json
[[ $RC -eq 0 ]] || fail "scan under partition exited $RC, expected 0: $(cat "$WORK/partition.out")"
assert_json "$WORK/partition.out" 'j["result"] == "converging"' "expected result converging"
assert_json "$WORK/partition.out" '{d["key"]: d["class"] for d in j["divergent"]} == {"cart:p1": "concurrent", "cart:p2": "behind", "cart:p3": "behind"}' \
  "expected p1 concurrent, p2 and p3 behind"
assert_json "$WORK/partition.out" '{n["node"]: n["class"] for n in [d for d in j["divergent"] if d["key"] == "cart:p2"][0]["nodes"]} == {"n1": "current", "n2": "current", "n3": "behind"}' \
  "cart:p2: expected n3 behind"
assert_json "$WORK/partition.out" '{n["node"]: n["class"] for n in [d for d in j["divergent"] if d["key"] == "cart:p3"][0]["nodes"]} == {"n1": "behind", "n2": "behind", "n3": "current"}' \
  "cart:p3: expected n1 and n2 behind"
run_check partition-human --node "$(url 0)" --discover --prefix cart:p --grace 0.3
sed -n '/^cart:p1/,/^$/p' "$WORK/partition-human.out"

step "repairing"
run_check repair --node "$(url 0)" --discover --prefix cart:p --grace 0.3 --repair --json
[[ $RC -eq 0 ]] || fail "--repair exited $RC: $(cat "$WORK/repair.out")"
assert_json "$WORK/repair.out" 'j["result"] == "repaired" and all(d["after_repair"] == "equal" for d in j["divergent"]) and j["repairs"]["failed"] == 0' \
  "expected every divergent key equal after repair"
[[ "$(differing cart:p)" == 0 ]] || fail "digests still differ after --repair (partition still on)"
for i in 0 1 2; do
  got=$(curl -sf "$(url $i)/carts/p1") || fail "GET /carts/p1 on n$(( i + 1 ))"
  python3 -c 'import json, sys; j = json.loads(sys.argv[1]); j.pop("context", None); sys.exit(j != {"cart": "p1", "items": [
      {"sku": "apple", "quantity": 1}, {"sku": "pear", "quantity": 2}]})' "$got" ||
    fail "n$(( i + 1 )) holds $got after repair"
done
run_check after-repair --node "$(url 0)" --discover --prefix cart:p --grace 0
[[ $RC -eq 0 ]] && grep -q '^result: clean' "$WORK/after-repair.out" || fail "not clean after repair: $(cat "$WORK/after-repair.out")"

# --- 4. heal: exactly the planted corruption remains ------------------------------------------
step "healing; the full scan must find exactly the planted corruption"
for i in 0 1 2; do
  curl -sf -X DELETE "$(url $i)/admin/partition" >/dev/null || fail "DELETE /admin/partition on n$(( i + 1 ))"
done
for _ in $(seq 100); do [[ "$(differing cart:p)" == 0 ]] && break; sleep 0.1; done
run_check final --node "$(url 0)" --discover --grace 1 --json
[[ $RC -eq 1 ]] || fail "final scan exited $RC, expected 1"
assert_json "$WORK/final.out" '[(d["key"], [n["node"] for n in d["nodes"] if n["class"] != "current"]) for d in j["divergent"]] == [("cart:c3", ["n2"])] and j["needs_person"] == ["1 unexplainable key"] and j["keys"]["scanned"] >= 33 and j["keys"]["equal"] == j["keys"]["scanned"] - 1' \
  "final: expected exactly cart:c3 on n2"

# --- 5. errors: exit 2 ------------------------------------------------------------------------
step "errors exit 2: bad flags, nothing listening, --metrics address taken"
for bad in "--grace -1" "--grace abc" "--grace 86401" "--grace 1e3" "--grace-ms 500" \
           "--watch 0" "--watch 0.001" "--watch" "--watch 1 --interval-ms 500" \
           "--metrics 127.0.0.1:$METRICS_PORT"; do
  # shellcheck disable=SC2086  # the flags are split on purpose
  run_check bad-flag --node "$(url 0)" $bad
  [[ $RC -eq 2 ]] || fail "coherence-check $bad exited $RC, expected 2: $(cat "$WORK/bad-flag.out" "$WORK/bad-flag.err")"
  [[ -s "$WORK/bad-flag.err" && ! -s "$WORK/bad-flag.out" ]] ||
    fail "coherence-check $bad: expected a message on stderr and nothing on stdout"
done
echo "   e.g. $(head -n 1 "$WORK/bad-flag.err")"
run_check nothing --node http://127.0.0.1:1
[[ $RC -eq 2 ]] || fail "a scan of a node nothing listens on exited $RC, expected 2: $(cat "$WORK/nothing.out")"
grep -q 'UNREACHABLE' "$WORK/nothing.out" || fail "the report does not say the node is unreachable"
run_check nothing-json --node http://127.0.0.1:1 --json
[[ $RC -eq 2 ]] || fail "--json scan of a node nothing listens on exited $RC, expected 2"
assert_json "$WORK/nothing-json.out" 'j["exit_code"] == 2 and j["result"] == "needs-attention" and j["scan_errors"] == ["1 node unreachable"] and j["needs_person"] == []' \
  "a node nothing listens on: expected exit_code 2 and the scan error"
tail -n 1 "$WORK/nothing.out"
# One node down beside a corrupt key: the data problem wins (1).
run_check nothing-and-corrupt --node "$(url 0)" --node "$(url 1)" --node "$(url 2)" --node http://127.0.0.1:1 --grace 0.5 --json
[[ $RC -eq 1 ]] || fail "a node down beside the planted corruption exited $RC, expected 1"
run_check metrics-taken --node "$(url 0)" --watch 1 --metrics "127.0.0.1:${HTTP[0]}"
[[ $RC -eq 2 ]] || fail "--metrics on a port in use exited $RC, expected 2: $(cat "$WORK/metrics-taken.err")"
echo "   $(head -n 1 "$WORK/metrics-taken.err")"

# --- 6. the standing service: --watch with --metrics -------------------------------------------
step "--watch 0.5 --metrics 127.0.0.1:$METRICS_PORT: metrics over HTTP, exit 0 on SIGTERM"
"$CHECK" --node "$(url 0)" --discover --grace 0.5 --json --watch 0.5 \
  --metrics "127.0.0.1:$METRICS_PORT" >"$WORK/watch.out" 2>"$WORK/watch.err" &
WATCH=$!
PIDS+=("$WATCH")
metric() {  # name-with-labels -> its value in $WORK/metrics.txt
  awk -v m="$1" '$1 == m { print $2 }' "$WORK/metrics.txt"
}
# The corruption differs for the grace period before it is reported: wait
# for a scan that reports it (and for at least two scans).
seen=0
for _ in $(seq 100); do
  if curl -sf "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" &&
     [[ "$(metric 'converge_coherence_keys_divergent{reason="unexplainable"}')" == 1 ]] &&
     [[ "$(metric converge_coherence_scans_total)" -ge 2 ]] 2>/dev/null; then
    seen=1
    break
  fi
  kill -0 "$WATCH" 2>/dev/null || fail "coherence-check --watch exited early: $(cat "$WORK/watch.err")"
  sleep 0.1
done
[[ $seen -eq 1 ]] || fail "--watch metrics never reported the planted corruption: $(grep '^converge_coherence' "$WORK/metrics.txt" 2>/dev/null)"
for want in "converge_coherence_nodes 3" "converge_coherence_nodes_unreachable 0" \
            "converge_coherence_needs_person 1" "converge_coherence_scan_incomplete 0" \
            'converge_coherence_keys_divergent{reason="behind"} 0'; do
  [[ "$(metric "${want% *}")" == "${want##* }" ]] ||
    fail "metrics: expected $want, got '$(metric "${want% *}")'"
done
for name in converge_coherence_keys_scanned converge_coherence_scan_duration_seconds \
            converge_coherence_last_scan_timestamp_seconds converge_coherence_key_divergence_seconds \
            converge_coherence_divergence_resolved_seconds_count; do
  [[ -n "$(metric "$name")" ]] || fail "metrics: $name missing"
done
echo "   $(grep -c '^converge_coherence_' "$WORK/metrics.txt") converge_coherence_* samples; scans so far: $(metric converge_coherence_scans_total)"
kill -TERM "$WATCH"
wait "$WATCH"
WATCH_RC=$?
[[ $WATCH_RC -eq 0 ]] || fail "coherence-check --watch exited $WATCH_RC on SIGTERM, expected 0: $(cat "$WORK/watch.err")"
python3 - "$WORK/watch.out" <<'PY' || fail "--watch --json: stdout is not one JSON object per line"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) >= 2, lines
reports = [json.loads(l) for l in lines]
assert reports[-1]["result"] == "needs-attention" and reports[-1]["exit_code"] == 1, reports[-1]["result"]
print(f"   {len(reports)} JSON reports on stdout, the last: {reports[-1]['result']} {reports[-1]['needs_person']}")
PY

# --- optional figures ------------------------------------------------------------------------
if [[ -n "${COHERENCE_BENCH_KEYS:-}" ]]; then
  step "writing $COHERENCE_BENCH_KEYS carts for the figures"
  python3 - "$COHERENCE_BENCH_KEYS" "${HTTP[@]}" <<'PY'
import http.client, json, sys
n, ports = int(sys.argv[1]), sys.argv[2:]
conns = [http.client.HTTPConnection("127.0.0.1", int(p), timeout=10) for p in ports]
for i in range(n):
    c = conns[i % len(conns)]
    for sku in ("apple", "pear"):
        c.request("POST", f"/carts/b{i}/items", json.dumps({"sku": sku, "quantity": 1 + i % 7}),
                  {"Content-Type": "application/json"})
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
PY
  wait_converged "cart:b"
  for mode in "" "--digests-only"; do
    run_check bench --node "$(url 0)" --discover --prefix cart:b --grace 0 --json $mode
    python3 - "$WORK/bench.out" "$mode" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
f = j["figures"]
print(f"figures {sys.argv[2] or '(states read)'}: {j['keys']['scanned']} keys, scan {f['scan_seconds']:.3f} s, "
      f"{f['ms_per_1000_keys']:.1f} ms per 1,000 keys, {f['requests']} requests, result {j['result']}")
PY
  done
  step "partitioning n3 and writing $COHERENCE_BENCH_KEYS carts on n1 only (all differ)"
  post 2 /admin/partition '{"peers":["n1","n2"]}'
  post 0 /admin/partition '{"peers":["n3"]}'
  post 1 /admin/partition '{"peers":["n3"]}'
  python3 - "$COHERENCE_BENCH_KEYS" "${HTTP[0]}" <<'PY'
import http.client, json, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(n):
    c.request("POST", f"/carts/d{i}/items", json.dumps({"sku": "apple", "quantity": 1}),
              {"Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  sleep 1
  for mode in "" "--repair"; do
    run_check bench --node "$(url 0)" --discover --prefix cart:d --grace 0 --json $mode
    python3 - "$WORK/bench.out" "$mode" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
f, k = j["figures"], j["keys"]
print(f"figures {sys.argv[2] or '(all differ)'}: {k['scanned']} keys, {k['behind']} behind, "
      f"scan {f['scan_seconds']:.3f} s, {f['ms_per_1000_keys']:.1f} ms per 1,000 keys, "
      f"{f['states_read']} states read, {j['repairs']['attempted']} repairs, result {j['result']}")
PY
  done
fi

step "PASS"
