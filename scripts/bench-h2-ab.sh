#!/usr/bin/env bash
# A/B of HTTP/2 throughput for two or more tenant-gateway binaries, alternating rounds, on the
# workspace ../shared/bench/peers.sh leaves in $WORK (run peers.sh once first): gateway pinned to
# CPU 1, nginx upstream and h2load (50 connections x 10 streams) on CPU 0, as peers.sh does.
# usage: scripts/bench-h2-ab.sh BIN_A BIN_B [...]   env: ROUNDS (default 2), DUR (s, default 8)
set -euo pipefail
WORK="${WORK:-/tmp/tgw-bench}"; ROUNDS="${ROUNDS:-2}"; DUR="${DUR:-8}"
[ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
cd "$WORK"
pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    taskset -c 1 "$bin" serve --config "$WORK/gateway-bench.conf" >"$WORK/ab-gateway.log" 2>&1 & g=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:19901/readyz && break; sleep 0.2; done
    out=$(taskset -c 0 h2load -D "$DUR" -c 50 -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:18446/x" 2>&1)
    rps=$(echo "$out" | grep -oE '[0-9.]+ req/s' | head -1)
    failed=$(echo "$out" | grep -oE '[0-9]+ failed' | head -1)
    echo "round $round  $bin  $rps  $failed"
    kill -TERM "$g"; wait "$g" 2>/dev/null || true
  done
done
