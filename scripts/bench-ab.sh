#!/usr/bin/env bash
# A/B of tenant-gateway binaries, alternating rounds, with ../shared/bench/peers.sh's workloads and
# pinning, on the workspace peers.sh leaves in $WORK (run peers.sh once first): gateway on CPU 1,
# nginx upstream and the load generator on CPU 0.
#   h1  = wrk -c50 over rotating subdomains   key = wrk -c50 over rotating secret keys (API host)
#   h2  = h2load 50 connections x 10 streams on one subdomain
# usage: scripts/bench-ab.sh BIN_A BIN_B [...]   env: WORKLOADS (default "h1 key h2"), ROUNDS (2), DUR (s, 8)
# Ends with mean and median req/s per binary and workload, and how many rounds each binary won.
# This VM's req/s drifts by ±20 % over minutes, so prefer many short rounds (ROUNDS=10 DUR=4).
set -euo pipefail
WORK="${WORK:-/tmp/tgw-bench}"; ROUNDS="${ROUNDS:-2}"; DUR="${DUR:-8}"; WORKLOADS="${WORKLOADS:-h1 key h2}"
[ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
cd "$WORK"
pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
load() {
  case "$1" in
    h1) taskset -c 0 wrk -t1 -c50 -d"${DUR}s" -s rotate.lua --latency "https://127.0.0.1:18446/" 2>&1 ;;
    key) taskset -c 0 wrk -t1 -c50 -d"${DUR}s" -s rotate-keys.lua --latency "https://127.0.0.1:18446/" 2>&1 ;;
    h2) taskset -c 0 h2load -D "$DUR" -c 50 -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:18446/x" 2>&1 ;;
  esac
}
summary() {
  case "$1" in
    h1|key) echo "$2" | awk '/Requests\/sec/ {rps=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s req/s  p99 %s  non-2xx %s", rps, p99, bad+0}' ;;
    h2) echo "$(echo "$2" | grep -oE '[0-9.]+ req/s' | head -1)  $(echo "$2" | grep -oE '[0-9]+ failed' | head -1)" ;;
  esac
}
if curl -s -o /dev/null http://127.0.0.1:19901/readyz; then
  echo "a gateway is already serving on peers.sh's ports (127.0.0.1:19901): stop it first" >&2; exit 2
fi
RESULTS="$(mktemp)"
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    for bin in "$@"; do
      taskset -c 1 "$bin" serve --config "$WORK/gateway-bench.conf" >"$WORK/ab-gateway.log" 2>&1 & g=$!
      for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:19901/readyz && break; sleep 0.2; done
      echo "round $round  $w  $bin  $(summary "$w" "$(load "$w")")" | tee -a "$RESULTS"
      kill -TERM "$g"; wait "$g" 2>/dev/null || true
    done
  done
done
echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(dict)  # (workload, round) -> {binary: req/s}
for line in open(sys.argv[1]):
    f = line.split()
    runs[(f[2], f[1])][f[3]] = float(f[4])
for w in dict.fromkeys(k[0] for k in runs):
    rounds = [v for (wl, _), v in runs.items() if wl == w]
    bins = list(rounds[0])
    for b in bins:
        xs = [r[b] for r in rounds if b in r]
        wins = sum(1 for r in rounds if len(r) == len(bins) and max(r, key=r.get) == b)
        print(f"{w:4} {b}  mean {statistics.mean(xs):9.0f}  median {statistics.median(xs):9.0f}  won {wins}/{len(rounds)}")
PY
rm -f "$RESULTS"
