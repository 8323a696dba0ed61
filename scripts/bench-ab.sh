#!/usr/bin/env bash
# A/B of tenant-gateway binaries, alternating rounds, with ../shared/bench/peers.sh's workloads and
# pinning (scripts/bench-lib.sh), 50 connections, on the workspace peers.sh leaves in $WORK.
# usage: scripts/bench-ab.sh BIN_A BIN_B [...]   env: WORKLOADS (default "h1 key h2"), ROUNDS (2), DUR (s, 8)
# Ends with mean and median req/s per binary and workload, and how many rounds each binary won.
# This VM's req/s drifts by ±20 % over minutes, so prefer many short rounds (ROUNDS=10 DUR=4).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/bench-lib.sh"
ROUNDS="${ROUNDS:-2}"; DUR="${DUR:-8}"; WORKLOADS="${WORKLOADS:-h1 key h2}"
bench_require_free 19901
bench_workspace
summary() {
  case "$1" in
    h1|key) echo "$2" | awk '/Requests\/sec/ {rps=$2} / 99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "%s req/s  p99 %s  non-2xx %s", rps, p99, bad+0}' ;;
    h2) echo "$(echo "$2" | grep -oE '[0-9.]+ req/s' | head -1)  $(echo "$2" | grep -oE '[0-9]+ failed' | head -1)" ;;
  esac
}
RESULTS="$(mktemp)"
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    for bin in "$@"; do
      bench_serve "$bin" "$WORK/gateway-bench.conf" "$WORK/ab-gateway.log"
      echo "round $round  $w  $bin  $(summary "$w" "$(bench_load "$w" "$DUR")")" | tee -a "$RESULTS"
      kill -TERM "$BENCH_PID"; wait "$BENCH_PID" 2>/dev/null || true
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
