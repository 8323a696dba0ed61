# Shared by scripts/bench-ab.sh, bench-pair.sh, profile.sh and allocs.sh (source it): the
# workspace ../shared/bench/peers.sh prepares, its pinning (gateway on CPU 1, nginx upstream and
# load generators on CPU 0) and its three workloads, defined once.
#   h1  = wrk over rotating subdomains   key = wrk over rotating secret keys (API host)
#   h2  = h2load, N connections x 10 streams, on one subdomain

WORK="${WORK:-/tmp/tgw-bench}"

# cd into the workspace and make sure the nginx upstream runs.
bench_workspace() {
  [ -f "$WORK/gateway-bench.conf" ] || { echo "run ../shared/bench/peers.sh once first (it prepares $WORK)" >&2; exit 2; }
  cd "$WORK"
  pgrep -f "upstream-nginx.conf" >/dev/null || { taskset -c 0 nginx -c "$WORK/upstream-nginx.conf" -p "$WORK" >/dev/null 2>&1 & sleep 1; }
}

# Refuses to run while a gateway already answers on one of these admin ports (port conflicts).
bench_require_free() {
  for port in "$@"; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/readyz"; then
      echo "a gateway is already serving on 127.0.0.1:$port: stop it first" >&2; exit 2
    fi
  done
}

bench_ensure_perf() {
  command -v perf >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
}

# Starts BIN pinned to CPU 1 with CONFIG, logging to LOG; sets BENCH_PID; waits until ready on ADMIN_PORT.
bench_serve() {  # BIN CONFIG LOG [ADMIN_PORT]
  taskset -c 1 "$1" serve --config "$2" >"$3" 2>&1 &
  BENCH_PID=$!
  # -f: /readyz answers 503 while the snapshot loads (the admin listener is up first).
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:${4:-19901}/readyz" && break; sleep 0.2; done
}

# Runs one workload in the foreground on CPU 0 and prints the tool's report.
bench_load() {  # WORKLOAD SECONDS [PORT] [CONNECTIONS]
  local port="${3:-18446}" conns="${4:-50}"
  case "$1" in
    h1) taskset -c 0 wrk -t1 -c"$conns" -d"$2s" -s rotate.lua --latency "https://127.0.0.1:$port/" 2>&1 ;;
    key) taskset -c 0 wrk -t1 -c"$conns" -d"$2s" -s rotate-keys.lua --latency "https://127.0.0.1:$port/" 2>&1 ;;
    h2) taskset -c 0 h2load -D "$2" -c "$conns" -m 10 -t 1 -H ':authority: shop77.platform.test' "https://127.0.0.1:$port/x" 2>&1 ;;
    *) echo "workload: h1, key or h2" >&2; return 2 ;;
  esac
}

# req/s from a bench_load report.
bench_rps() {  # WORKLOAD REPORT
  case "$1" in
    h1|key) echo "$2" | awk '/Requests\/sec/ {print $2}' ;;
    h2) echo "$2" | grep -oE '[0-9.]+ req/s' | head -1 | cut -d' ' -f1 ;;
  esac
}
