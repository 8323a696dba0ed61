#!/usr/bin/env bash
# Profiles a tenant-gateway binary under one of peers.sh's workloads (same pinning, same workspace
# as scripts/bench-ab.sh) and prints where the CPU goes, by component (scripts/perf-categories.py).
# usage: scripts/profile.sh BIN [h1|key|h2]   env: WORK, DUR (seconds recorded, default 8)
# Leaves perf.data in $WORK/profile-<workload>.data for `perf report -i`.
set -euo pipefail
BIN="$(realpath "$1")"; W="${2:-h1}"; DUR="${DUR:-8}"
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/bench-lib.sh"
case "$W" in h1|key|h2) ;; *) echo "workload: h1, key or h2" >&2; exit 2 ;; esac
bench_ensure_perf
bench_require_free 19901
bench_workspace
bench_serve "$BIN" "$WORK/gateway-bench.conf" "$WORK/profile-gateway.log"; g=$BENCH_PID
trap 'kill -TERM $g 2>/dev/null || true' EXIT
bench_load "$W" $((DUR + 6)) >"$WORK/profile-load.out" &
l=$!
sleep 3
perf record -q -F 999 -g --call-graph dwarf,16384 -p "$g" -o "$WORK/profile-$W.data" -- sleep "$DUR" >/dev/null 2>&1
wait "$l" || true
grep -E 'Requests/sec|req/s' "$WORK/profile-load.out" | head -1 || true
perf script -i "$WORK/profile-$W.data" -F comm,tid,ip,sym 2>/dev/null >"$WORK/profile-$W.script"
python3 "$HERE/perf-categories.py" "$WORK/profile-$W.script" | swift demangle --simplified | cut -c1-260
