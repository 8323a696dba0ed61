#!/usr/bin/env bash
# Compares two tenant-gateway binaries *at the same time*: both pinned to the same CPU (1), each
# under its own copy of the same load (CPU 0), so the scheduler splits CPU 1 between them and the
# one that spends less CPU per request serves more. Whatever else the VM does during a round hits
# both alike, which alternating runs (scripts/bench-ab.sh) cannot promise: the ratio B/A is the
# figure to read. Launch order alternates between rounds.
# usage: scripts/bench-pair.sh BIN_A BIN_B   env: WORKLOADS ("h1 key h2"), ROUNDS (4), DUR (s, 6)
set -euo pipefail
A="$(realpath "$1")"; B="$(realpath "$2")"
WORK="${WORK:-/tmp/tgw-bench}"; ROUNDS="${ROUNDS:-4}"; DUR="${DUR:-6}"; WORKLOADS="${WORKLOADS:-h1 key h2}"
[ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
cd "$WORK"
for port in 19901 19911; do
  if curl -s -o /dev/null "http://127.0.0.1:$port/readyz"; then echo "a gateway is already serving on 127.0.0.1:$port: stop it first" >&2; exit 2; fi
done
sed -e 's/127.0.0.1:18446/127.0.0.1:18456/' -e 's/127.0.0.1:19901/127.0.0.1:19911/' -e 's#state_dir: \([^,}]*\)#state_dir: \1-pair#' \
  gateway-bench.conf >gateway-bench-pair.conf
pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
load() {  # workload port
  case "$1" in
    h1) taskset -c 0 wrk -t1 -c25 -d"${DUR}s" -s rotate.lua "https://127.0.0.1:$2/" 2>&1 | awk '/Requests\/sec/ {print $2}' ;;
    key) taskset -c 0 wrk -t1 -c25 -d"${DUR}s" -s rotate-keys.lua "https://127.0.0.1:$2/" 2>&1 | awk '/Requests\/sec/ {print $2}' ;;
    h2) taskset -c 0 h2load -D "$DUR" -c 25 -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:$2/x" 2>&1 \
          | grep -oE '[0-9.]+ req/s' | head -1 | cut -d' ' -f1 ;;
  esac
}
RESULTS="$(mktemp)"
for round in $(seq 1 "$ROUNDS"); do
  for w in $WORKLOADS; do
    if [ $((round % 2)) -eq 1 ]; then first="$A"; second="$B"; else first="$B"; second="$A"; fi
    taskset -c 1 "$first" serve --config gateway-bench.conf >"$WORK/pair-1.log" 2>&1 & g1=$!
    taskset -c 1 "$second" serve --config gateway-bench-pair.conf >"$WORK/pair-2.log" 2>&1 & g2=$!
    for port in 19901 19911; do for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done; done
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
