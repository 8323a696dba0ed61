#!/usr/bin/env bash
# Compares two tenant-gateway binaries *at the same time*: both pinned to the same CPU (1), each
# under its own copy of the same load (CPU 0), so the scheduler splits CPU 1 between them and the
# one that spends less CPU per request serves more. Whatever else the VM does during a round hits
# both alike, which alternating runs (scripts/bench-ab.sh) cannot promise: the ratio B/A is the
# figure to read. Launch order alternates between rounds.
# usage: scripts/bench-pair.sh BIN_A BIN_B   env: WORKLOADS ("h1 key h2"), ROUNDS (4), DUR (s, 6)
set -euo pipefail
A="$(realpath "$1")"; B="$(realpath "$2")"
. "$(cd "$(dirname "$0")" && pwd)/bench-lib.sh"
ROUNDS="${ROUNDS:-4}"; DUR="${DUR:-6}"; WORKLOADS="${WORKLOADS:-h1 key h2}"
bench_require_free 19901 19911
bench_workspace
sed -e 's/127.0.0.1:18446/127.0.0.1:18456/' -e 's/127.0.0.1:19901/127.0.0.1:19911/' -e 's#state_dir: \([^,}]*\)#state_dir: \1-pair#' \
  gateway-bench.conf >gateway-bench-pair.conf
load() {  # workload port: req/s with 25 connections (two loads share CPU 0)
  bench_rps "$1" "$(bench_load "$1" "$DUR" "$2" 25)"
}
RESULTS="$(mktemp)"
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    if [ $((round % 2)) -eq 1 ]; then first="$A"; second="$B"; else first="$B"; second="$A"; fi
    bench_serve "$first" gateway-bench.conf "$WORK/pair-1.log" 19901; g1=$BENCH_PID
    bench_serve "$second" gateway-bench-pair.conf "$WORK/pair-2.log" 19911; g2=$BENCH_PID
    load "$w" 18446 >"$WORK/pair-1.out" & l1=$!
    load "$w" 18456 >"$WORK/pair-2.out" & l2=$!
    wait "$l1" "$l2" || true
    r1="$(cat "$WORK/pair-1.out")"; r2="$(cat "$WORK/pair-2.out")"
    kill -TERM "$g1" "$g2"; wait "$g1" "$g2" 2>/dev/null || true
    if [ "$first" = "$A" ]; then ra="$r1"; rb="$r2"; else ra="$r2"; rb="$r1"; fi
    echo "round $round  $w  A $ra  B $rb  B/A $(python3 -c "print(f'{$rb/$ra:.3f}')")" | tee -a "$RESULTS"
  done
done
echo
python3 - "$RESULTS" <<'PY'
import statistics, sys
from collections import defaultdict
r = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    r[f[2]].append(float(f[-1]))
for w, xs in r.items():
    print(f"{w:4} B/A  mean {statistics.mean(xs):.3f}  median {statistics.median(xs):.3f}  B ahead in {sum(x > 1 for x in xs)}/{len(xs)}")
PY
rm -f "$RESULTS"
