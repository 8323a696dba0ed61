#!/usr/bin/env bash
# Profiles a tenant-gateway binary under one of peers.sh's workloads (same pinning, same workspace
# as scripts/bench-ab.sh) and prints where the CPU goes, by component (scripts/perf-categories.py).
# usage: scripts/profile.sh BIN [h1|key|h2]   env: WORK, DUR (seconds recorded, default 8)
# Leaves perf.data in $WORK/profile-<workload>.data for `perf report -i`.
set -euo pipefail
BIN="$(realpath "$1")"; W="${2:-h1}"; WORK="${WORK:-/tmp/tgw-bench}"; DUR="${DUR:-8}"
HERE="$(cd "$(dirname "$0")" && pwd)"
command -v perf >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
[ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
cd "$WORK"
pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
taskset -c 1 "$BIN" serve --config "$WORK/gateway-bench.conf" >"$WORK/profile-gateway.log" 2>&1 & g=$!
trap 'kill -TERM $g 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:19901/readyz && break; sleep 0.2; done
LOAD=$((DUR + 6))
case "$W" in
  h1) taskset -c 0 wrk -t1 -c50 -d"${LOAD}s" -s rotate.lua "https://127.0.0.1:18446/" >"$WORK/profile-load.out" 2>&1 & ;;
  key) taskset -c 0 wrk -t1 -c50 -d"${LOAD}s" -s rotate-keys.lua "https://127.0.0.1:18446/" >"$WORK/profile-load.out" 2>&1 & ;;
  h2) taskset -c 0 h2load -D "$LOAD" -c 50 -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:18446/x" >"$WORK/profile-load.out" 2>&1 & ;;
  *) echo "workload: h1, key or h2" >&2; exit 2 ;;
esac
l=$!
sleep 3
perf record -q -F 999 -g --call-graph dwarf,16384 -p "$g" -o "$WORK/profile-$W.data" -- sleep "$DUR" >/dev/null 2>&1
wait "$l" || true
grep -E 'Requests/sec|req/s' "$WORK/profile-load.out" | head -1 || true
perf script -i "$WORK/profile-$W.data" -F comm,tid,ip,sym 2>/dev/null >"$WORK/profile-$W.script"
python3 "$HERE/perf-categories.py" "$WORK/profile-$W.script" | swift demangle --simplified | cut -c1-260
