#!/usr/bin/env bash
# ctest entry point of the cart page's browser test (cart_page_test.mjs).
#
#   run_e2e.sh --server PATH/cart-server --work-dir DIR --screenshot PNG
#   run_e2e.sh --mock --work-dir DIR --screenshot PNG     (development: mock_cluster.py)
#
# Starts 3 cart-servers on 127.0.0.1 with free ports (n2 and n3 seeded with n1),
# waits for /healthz, installs playwright-core with npm into
# <parent of DIR>/e2e-node-modules when it is not there, runs the test against
# n1's page, and always stops the servers. Exits 0 pass, 1 fail, 77 skip
# (no /usr/bin/chromium, no node/npm, or npm cannot install playwright-core).
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
server="" work="" shot="" mock=0
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

while [ $# -gt 0 ]; do
  case "$1" in
    --server) server="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --screenshot) shot="$2"; shift 2 ;;
    --mock) mock=1; shift ;;
    *) echo "run_e2e.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$work" ] || [ -z "$shot" ] || { [ "$mock" = 0 ] && [ -z "$server" ]; }; then
  echo "usage: run_e2e.sh --server CART_SERVER --work-dir DIR --screenshot PNG" >&2
  exit 2
fi
skip() { echo "SKIP: $*" >&2; exit 77; }

[ -x "$CHROMIUM" ] || skip "$CHROMIUM not found (apt-get install chromium); the cart page browser test needs it"
command -v node >/dev/null 2>&1 || skip "node not found; the cart page browser test needs Node.js"
command -v npm >/dev/null 2>&1 || skip "npm not found; the cart page browser test needs npm"
if [ "$mock" = 0 ] && [ ! -x "$server" ]; then
  echo "FAIL: cart-server not found at $server" >&2
  exit 1
fi

start_s=$SECONDS
rm -rf "$work"
mkdir -p "$work" "$(dirname "$shot")" || exit 1
work="$(cd "$work" && pwd)"

# --- playwright-core, cached beside the work dir ---------------------------
cache="$(dirname "$work")/e2e-node-modules"
if [ ! -f "$cache/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core into $cache"
  tmp="$cache.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 40 npm install --no-save --no-audit --no-fund --fetch-retries=2 \
       --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=8000 \
       --loglevel=error --prefix "$tmp" playwright-core@1 >"$work/npm.log" 2>&1 \
     && [ -f "$tmp/node_modules/playwright-core/package.json" ]; then
    if [ ! -f "$cache/node_modules/playwright-core/package.json" ]; then
      rm -rf "$cache"
      mv "$tmp" "$cache" || { rm -rf "$tmp"; skip "cannot move playwright-core into $cache"; }
    fi
    rm -rf "$tmp"
  else
    cat "$work/npm.log" >&2
    rm -rf "$tmp"
    skip "npm could not install playwright-core (log above)"
  fi
fi

# --- the cluster ------------------------------------------------------------
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Six distinct free ports (3 http, 3 gossip), all held open while they are chosen.
read -r -a ports < <(node -e '
  const net = require("net"); const s = [];
  let n = 0;
  for (let i = 0; i < 6; i++) { const srv = net.createServer(); s.push(srv);
    srv.listen(0, "127.0.0.1", () => { if (++n === 6) { console.log(s.map((x) => x.address().port).join(" ")); s.forEach((x) => x.close()); } }); }')
[ "${#ports[@]}" = 6 ] || { echo "FAIL: could not find free ports" >&2; exit 1; }
http=("127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}")
gossip=("127.0.0.1:${ports[3]}" "127.0.0.1:${ports[4]}" "127.0.0.1:${ports[5]}")

if [ "$mock" = 1 ]; then
  python3 "$here/mock_cluster.py" --ports "${ports[0]},${ports[1]},${ports[2]}" >"$work/mock.log" 2>&1 &
  pids+=($!)
else
  for i in 0 1 2; do
    name="n$((i + 1))"
    seed=()
    [ "$i" -gt 0 ] && seed=(--seed "${gossip[0]}")
    "$server" --id "$name" --http "${http[$i]}" --gossip "${gossip[$i]}" --data "$work/$name" \
      "${seed[@]}" --insecure-loopback --allow-fault-injection --gossip-interval-ms 100 \
      --durability buffered >"$work/$name.log" 2>&1 &
    pids+=($!)
  done
fi

healthy() { node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "http://$1/healthz"; }
for i in 0 1 2; do
  ok=0
  for _ in $(seq 100); do
    if healthy "${http[$i]}"; then ok=1; break; fi
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || { echo "FAIL: a server exited during start-up" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
    done
    sleep 0.1
  done
  [ "$ok" = 1 ] || { echo "FAIL: no /healthz from n$((i + 1)) at ${http[$i]} within 10 s" >&2; tail -n 20 "$work"/*.log >&2; exit 1; }
done
echo "cluster up in $((SECONDS - start_s)) s: n1 http://${http[0]}/ n2 http://${http[1]}/ n3 http://${http[2]}/"

# --- the browser test ---------------------------------------------------------
# The whole run stays under 90 s: the test gets what is left of 85 s (at least 30 s).
budget=$((85 - (SECONDS - start_s)))
[ "$budget" -lt 30 ] && budget=30
timeout -k 5 "$budget" node "$here/cart_page_test.mjs" --url "http://${http[0]}/" --screenshot "$shot" \
  --playwright-dir "$cache" --chromium "$CHROMIUM"
rc=$?
if [ "$rc" != 0 ]; then
  [ "$rc" = 124 ] && echo "FAIL: the browser test did not finish within $budget s" >&2
  echo "--- server logs (last lines) ---" >&2
  tail -n 30 "$work"/*.log >&2
  rc=1
fi
echo "run_e2e.sh: $([ "$rc" = 0 ] && echo passed || echo failed) in $((SECONDS - start_s)) s"
exit "$rc"
