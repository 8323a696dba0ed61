#!/usr/bin/env bash
# Counts heap allocations (libc malloc calls, via a perf uprobe) per proxied request, for one of
# peers.sh's workloads: a deterministic figure to compare builds with, where req/s on this VM
# drifts by ±20 %. With TOP=1 it also samples every 50th malloc with its call stack and prints
# the allocation sites, each with its share (scripts/alloc-sites.py).
# usage: scripts/allocs.sh BIN [h1|key|h2]   env: WORK (peers.sh's workspace), DUR (s, 5), TOP
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(realpath "$1")"; W="${2:-h1}"; DUR="${DUR:-5}"
. "$HERE/bench-lib.sh"
case "$W" in h1|key|h2) ;; *) echo "workload: h1, key or h2" >&2; exit 2 ;; esac
bench_ensure_perf
LIBC="$(ldconfig -p | awk '/libc.so.6 .*x86-64/ {print $NF; exit}')"
perf probe -l 2>/dev/null | grep 'probe_libc:malloc' >/dev/null || perf probe -q -x "$LIBC" --add malloc
bench_require_free 19901
bench_workspace
bench_serve "$BIN" "$WORK/gateway-bench.conf" "$WORK/allocs-gateway.log"; g=$BENCH_PID
trap 'kill -TERM $g 2>/dev/null || true' EXIT
# Warm up (connections, TLS sessions, pools), so the count is the steady state per request.
bench_load "$W" 2 >/dev/null || true
if [ -n "${TOP:-}" ]; then
  perf record -q -e probe_libc:malloc -c 50 --call-graph dwarf,16384 -p "$g" -o "$WORK/allocs-$W.data" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
else
  perf stat -x, -e probe_libc:malloc -p "$g" -o "$WORK/allocs-$W.stat" -- sleep "$((DUR + 1))" >/dev/null 2>&1 &
fi
p=$!
sleep 0.5
out="$(bench_load "$W" "$DUR")"
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
