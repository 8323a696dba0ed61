#!/usr/bin/env bash
# Counts heap allocations (libc malloc calls, via a perf uprobe) per proxied request, for one of
# peers.sh's workloads: a deterministic figure to compare builds with, where req/s on this VM
# drifts by ±20 %. With TOP=1 it also samples every 50th malloc with its call stack and prints
# the allocation sites, each with its share (scripts/alloc-sites.py).
# usage: scripts/allocs.sh BIN [h1|key|h2]   env: WORK (peers.sh's workspace), DUR (s, 5), TOP
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(realpath "$1")"; W="${2:-h1}"; WORK="${WORK:-/tmp/tgw-bench}"; DUR="${DUR:-5}"
command -v perf >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
[ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
LIBC="$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')"
perf probe -l 2>/dev/null | grep 'probe_libc:malloc' >/dev/null || perf probe -q -x "$LIBC" --add malloc
if curl -s -o /dev/null http://127.0.0.1:19901/readyz; then
  echo "a gateway is already serving on peers.sh's ports (127.0.0.1:19901): stop it first" >&2; exit 2
fi
cd "$WORK"
pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
taskset -c 1 "$BIN" serve --config "$WORK/gateway-bench.conf" >"$WORK/allocs-gateway.log" 2>&1 & g=$!
trap 'kill -TERM $g 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:19901/readyz && break; sleep 0.2; done
load() {
  case "$W" in
    h1) taskset -c 0 wrk -t1 -c50 -d"${DUR}s" -s rotate.lua "https://127.0.0.1:18446/" ;;
    key) taskset -c 0 wrk -t1 -c50 -d"${DUR}s" -s rotate-keys.lua "https://127.0.0.1:18446/" ;;
    h2) taskset -c 0 h2load -D "$DUR" -c 50 -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:18446/x" ;;
    *) echo "workload: h1, key or h2" >&2; exit 2 ;;
  esac
}
# Warm up (connections, TLS sessions, pools), so the count is the steady state per request.
DUR=2 load >/dev/null 2>&1 || true
if [ -n "${TOP:-}" ]; then
  perf record -q -e probe_libc:malloc -c 50 --call-graph dwarf,16384 -p "$g" -o "$WORK/allocs-$W.data" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
else
  perf stat -x, -e probe_libc:malloc -p "$g" -o "$WORK/allocs-$W.stat" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
fi
p=$!
sleep 0.5
out="$(load 2>&1)"
wait "$p" || true
case "$W" in
  h1|key) n="$(echo "$out" | awk '/requests in/ {print $1}')" ;;
  h2) n="$(echo "$out" | awk '/^requests:/ {print $8}')" ;;
esac
if [ -n "${TOP:-}" ]; then
  echo "$W: $n requests; where the allocations are made (every 50th malloc sampled):"
  perf script -i "$WORK/allocs-$W.data" -F ip,sym 2>/dev/null >"$WORK/allocs-$W.script"
  python3 "$HERE/alloc-sites.py" "$WORK/allocs-$W.script" | swift demangle --simplified | cut -c1-220
else
  m="$(awk -F, '/probe_libc:malloc/ {print $1}' "$WORK/allocs-$W.stat")"
  echo "$W  $(basename "$BIN")  requests $n  mallocs $m  per request $(python3 -c "print(f'{$m/$n:.1f}')")"
fi
