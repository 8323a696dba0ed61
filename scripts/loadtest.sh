#!/usr/bin/env bash
# Bounded load test against a running gateway, for any CI pipeline. See usage() or --help.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/loadtest.sh --url URL [options]

Sends load to a running gateway and checks thresholds; exits 0 when every threshold holds,
1 when one breaks, 2 on a usage error. Prints a table, the responses by status, and one summary
line for CI logs:  loadtest: PASS requests=… rps=… p50_ms=… p99_ms=… error_rate=…

  --url URL              https://host:port/path (loopback only unless --allow-remote)
  --protocol h1|h2       h1: wrk, rotating --hosts and --keys per request (default)
                         h2: h2load, the first host and key
  --duration S           seconds of load, at most 600 (default 10)
  --connections N        concurrent connections (default 50)
  --streams N            h2: concurrent streams per connection (default 10)
  --rate R               total requests per second (default: as fast as possible)
  --hosts FILE           Host (h1) / :authority (h2) values, one per line
  --keys FILE            API keys, one per line, sent as Authorization: Bearer
  --header 'N: v'        an extra request header (repeatable)
  --max-p99-ms MS        fail when p99 latency is above MS
  --max-error-rate F     fail when the share of errors is above F (default 0: any error fails)
  --allow-status LIST    statuses that are not errors besides 2xx, e.g. 403,404 (default: none)
  --latency-out FILE     write the latency distribution (percentile, ms) as TSV
  --plot FILE.png        plot it with gnuplot: log-scale percentile axis, the --max-p99-ms line drawn
  --allow-remote         allow a URL that is not loopback (you own the target and its capacity)
  -h, --help             this text

An error is a non-2xx response not in --allow-status, or a socket error (connect, read, timeout).
USAGE
}

PROTO=h1 DURATION=10 CONNS=50 STREAMS=10 URL="" HOSTS="" KEYS="" MAX_P99="" MAX_ERR="0" LAT_OUT="" PLOT=""
RATE="" ALLOW_STATUS="" ALLOW_REMOTE=0
HEADERS=()
need() { [ $# -ge 2 ] && [ -n "$2" ] || { echo "$1 needs a value (see --help)" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --protocol) need "$@"; PROTO="$2"; shift 2 ;;
    --duration) need "$@"; DURATION="$2"; shift 2 ;;
    --connections) need "$@"; CONNS="$2"; shift 2 ;;
    --streams) need "$@"; STREAMS="$2"; shift 2 ;;
    --rate) need "$@"; RATE="$2"; shift 2 ;;
    --url) need "$@"; URL="$2"; shift 2 ;;
    --hosts) need "$@"; HOSTS="$2"; shift 2 ;;
    --keys) need "$@"; KEYS="$2"; shift 2 ;;
    --header) need "$@"; HEADERS+=("$2"); shift 2 ;;
    --max-p99-ms) need "$@"; MAX_P99="$2"; shift 2 ;;
    --max-error-rate) need "$@"; MAX_ERR="$2"; shift 2 ;;
    --allow-status) need "$@"; ALLOW_STATUS="$2"; shift 2 ;;
    --latency-out) need "$@"; LAT_OUT="$2"; shift 2 ;;
    --plot) need "$@"; PLOT="$2"; shift 2 ;;
    --allow-remote) ALLOW_REMOTE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$URL" ] || { echo "--url is required (see --help)" >&2; exit 2; }
case "$PROTO" in h1|h2) ;; *) echo "--protocol must be h1 or h2" >&2; exit 2 ;; esac
for n in "$DURATION" "$CONNS" "$STREAMS" ${RATE:+"$RATE"}; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "durations, counts and rates are positive integers, not '$n'" >&2; exit 2; }
done
[[ "$ALLOW_STATUS" =~ ^([0-9]{3}(,[0-9]{3})*)?$ ]] || { echo "--allow-status is a comma-separated list of statuses" >&2; exit 2; }
if [ "$ALLOW_REMOTE" = 0 ]; then
  case "$URL" in https://127.*|https://localhost[:/]*|https://localhost|https://\[::1\]*) ;;
    *) echo "load tests target loopback only; pass --allow-remote for $URL" >&2; exit 2 ;;
  esac
fi
[ "$DURATION" -le 600 ] || { echo "--duration is capped at 600 s" >&2; exit 2; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
RESULT="$WORK/result.json"

if [ "$PROTO" = h1 ]; then
  command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
  lua_list() { if [ -n "$1" ]; then awk 'NF { gsub(/"/, "\\\""); printf "  \"%s\",\n", $0 }' "$1"; fi; }
  {
    echo "local hosts = {"; lua_list "$HOSTS"; echo "}"
    echo "local keys = {"; lua_list "$KEYS"; echo "}"
    echo "local extra = {"
    for h in "${HEADERS[@]+"${HEADERS[@]}"}"; do printf '  {"%s", "%s"},\n' "${h%%:*}" "$(echo "${h#*:}" | sed 's/^ *//')"; done
    echo "}"
    # --rate: each connection waits connections/rate seconds between its requests.
    if [ -n "$RATE" ]; then echo "local delay_ms = $(( CONNS * 1000 / RATE ))"; else echo "local delay_ms = nil"; fi
    cat <<'LUA'
if delay_ms then function delay() return delay_ms end end
local threads = {}
local counter = 0
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function request()
  counter = counter + 1
  local h = {}
  if #hosts > 0 then h["Host"] = hosts[(counter % #hosts) + 1] end
  if #keys > 0 then h["Authorization"] = "Bearer " .. keys[(counter % #keys) + 1] end
  for _, kv in ipairs(extra) do h[kv[1]] = kv[2] end
  return wrk.format("GET", nil, h)
end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("statuses")) do counts[s] = (counts[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(counts) do table.insert(parts, string.format('"%d": %d', s, n)) end
  local dist = {}
  for p = 1, 99 do table.insert(dist, string.format("[%d, %.3f]", p, latency:percentile(p) / 1000)) end
  table.insert(dist, string.format("[99.9, %.3f]", latency:percentile(99.9) / 1000))
  table.insert(dist, string.format("[100, %.3f]", latency.max / 1000))
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.stderr:write(string.format('RESULT {"requests": %d, "seconds": %.3f, "socket_errors": %d, "statuses": {%s}, "dist": [%s]}\n',
    summary.requests, summary.duration / 1e6, errors, table.concat(parts, ", "), table.concat(dist, ", ")))
end
LUA
  } > "$WORK/load.lua"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$WORK/load.lua" "$URL" 2> "$WORK/wrk.err" > "$WORK/wrk.out" || true
  grep '^RESULT ' "$WORK/wrk.err" | sed 's/^RESULT //' > "$RESULT" || { cat "$WORK/wrk.err" "$WORK/wrk.out" >&2; exit 2; }
else
  command -v h2load >/dev/null || { echo "h2load is needed (apt-get install nghttp2-client)" >&2; exit 2; }
  args=(-D "$DURATION" -c "$CONNS" -m "$STREAMS" -t 1 --log-file "$WORK/h2.log")
  # --rate: h2load's --rps is per client (connection).
  if [ -n "$RATE" ]; then args+=(--rps "$(awk -v r="$RATE" -v c="$CONNS" 'BEGIN { printf "%.3f", r / c }')"); fi
  if [ -n "$HOSTS" ]; then args+=(-H ":authority: $(head -n1 "$HOSTS")"); fi
  if [ -n "$KEYS" ]; then args+=(-H "authorization: Bearer $(head -n1 "$KEYS")"); fi
  for h in "${HEADERS[@]+"${HEADERS[@]}"}"; do args+=(-H "$h"); done
  h2load "${args[@]}" "$URL" > "$WORK/h2.out" 2>&1 || true
  python3 - "$WORK/h2.log" "$WORK/h2.out" "$DURATION" > "$RESULT" <<'PY'
import json, sys
lat, statuses = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 3:
        statuses[f[1]] = statuses.get(f[1], 0) + 1   # start time, status, duration (us)
        lat.append(int(f[2]) / 1000)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p / 100))] if lat else 0
dist = [[p, pct(p)] for p in range(1, 100)] + [[99.9, pct(99.9)], [100, lat[-1] if lat else 0]]
out = open(sys.argv[2]).read()
failed = sum(int(l.split()[9]) for l in out.splitlines() if l.startswith("requests:") and len(l.split()) > 9)
print(json.dumps({"requests": len(lat), "seconds": float(sys.argv[3]), "socket_errors": failed, "statuses": statuses, "dist": dist}))
PY
fi

set +e
python3 - "$RESULT" "$MAX_P99" "$MAX_ERR" "$LAT_OUT" "$ALLOW_STATUS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); max_p99 = sys.argv[2]; max_err = sys.argv[3]; out = sys.argv[4]
allowed = set(filter(None, sys.argv[5].split(",")))
d = dict((p, v) for p, v in r["dist"])
total = sum(r["statuses"].values())
bad = sum(n for s, n in r["statuses"].items() if not str(s).startswith("2") and str(s) not in allowed) + r["socket_errors"]
rate = bad / max(1, total + r["socket_errors"])
rps = total / r["seconds"] if r["seconds"] else 0
print(f"{'requests':>10} {'rps':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>8}")
print(f"{total:>10} {rps:>10.0f} {d[50]:>8.2f} {d[90]:>8.2f} {d[99]:>8.2f} {d[100]:>8.2f} {rate:>8.4f}")
print("responses by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items())) + (f", socket errors: {r['socket_errors']}" if r["socket_errors"] else ""))
if out:
    with open(out, "w") as f:
        f.write("# percentile\tlatency_ms\n")
        for p, v in r["dist"]: f.write(f"{p}\t{v}\n")
fail = []
if max_p99 and d[99] > float(max_p99): fail.append(f"p99 {d[99]:.2f} ms > {max_p99} ms")
if rate > float(max_err):
    what = ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items()) if not str(s).startswith("2") and str(s) not in allowed)
    fail.append(f"error rate {rate:.4f} > {max_err} ({what or 'socket errors'}; --allow-status or --max-error-rate to accept some)")
if total == 0: fail.append("no responses")
for f in fail: print("THRESHOLD BROKEN: " + f)
print(f"loadtest: {'FAIL' if fail else 'PASS'} requests={total} rps={rps:.0f} p50_ms={d[50]:.2f} p99_ms={d[99]:.2f} max_ms={d[100]:.2f} error_rate={rate:.4f}")
sys.exit(1 if fail else 0)
PY
status=$?
set -e
if [ -n "$PLOT" ] && [ -n "$LAT_OUT" ]; then
  if command -v gnuplot >/dev/null; then
    # The x axis is 1/(1 - percentile): 50, 90, 99, 99.9 equally spaced, so the tail is visible.
    threshold=""
    [ -n "$MAX_P99" ] && threshold=", $MAX_P99 with lines dashtype 2 lw 2 lc rgb 'red' title 'max p99 ($MAX_P99 ms)'"
    if gnuplot -e "set terminal png size 900,500; set output '$PLOT'; set title 'tenant-gateway latency ($PROTO, $CONNS connections)'; set xlabel 'percentile'; set ylabel 'ms'; set logscale x; set logscale y; set grid; set xtics ('50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, 'max' 10000); set xrange [1:10000]; plot '$LAT_OUT' using (\$1 >= 100 ? 10000 : 1/(1-\$1/100.0)):2 with lines lw 2 title 'latency'$threshold"; then
      echo "plot: $PLOT"
    else
      echo "gnuplot failed: no plot" >&2
    fi
  else
    echo "gnuplot not installed: no plot (apt-get install gnuplot-nox)" >&2
  fi
elif [ -n "$PLOT" ]; then
  echo "--plot needs --latency-out" >&2
fi
exit $status
