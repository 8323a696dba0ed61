#!/usr/bin/env bash
# Bounded load test against a running gateway, for any CI pipeline.
#
#   scripts/loadtest.sh --url https://127.0.0.1:8443/products --hosts hosts.txt \
#       [--protocol h1|h2] [--duration 10] [--connections 50] [--streams 10] \
#       [--keys keys.txt] [--header 'Name: value'] [--max-p99-ms 50] [--max-error-rate 0.001] \
#       [--latency-out latencies.tsv] [--plot latency.png]
#
# h1 uses wrk (rotating --hosts as Host and --keys as Bearer keys, one per request); h2 uses h2load
# (one host, the first of --hosts or the URL's; one key). Prints rps, p50/p90/p99/max latency and
# responses by status, writes the latency distribution (percentile, ms) with --latency-out and plots
# it with gnuplot with --plot, and exits 1 when a threshold is broken (2 on usage errors).
set -euo pipefail
PROTO=h1 DURATION=10 CONNS=50 STREAMS=10 URL="" HOSTS="" KEYS="" MAX_P99="" MAX_ERR="" LAT_OUT="" PLOT=""
HEADERS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --protocol) PROTO="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNS="$2"; shift 2 ;;
    --streams) STREAMS="$2"; shift 2 ;;
    --url) URL="$2"; shift 2 ;;
    --hosts) HOSTS="$2"; shift 2 ;;
    --keys) KEYS="$2"; shift 2 ;;
    --header) HEADERS+=("$2"); shift 2 ;;
    --max-p99-ms) MAX_P99="$2"; shift 2 ;;
    --max-error-rate) MAX_ERR="$2"; shift 2 ;;
    --latency-out) LAT_OUT="$2"; shift 2 ;;
    --plot) PLOT="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$URL" ] || { echo "--url is required" >&2; exit 2; }
case "$URL" in https://127.*|https://localhost*|https://\[::1\]*) ;; *) echo "load tests target loopback only" >&2; exit 2 ;; esac
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
    cat <<'LUA'
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

python3 - "$RESULT" "$MAX_P99" "$MAX_ERR" "$LAT_OUT" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); max_p99 = sys.argv[2]; max_err = sys.argv[3]; out = sys.argv[4]
d = dict((p, v) for p, v in r["dist"])
total = sum(r["statuses"].values())
bad = sum(n for s, n in r["statuses"].items() if not str(s).startswith("2")) + r["socket_errors"]
rate = bad / max(1, total + r["socket_errors"])
print(f"{'requests':>10} {'rps':>10} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>8}")
print(f"{total:>10} {total / r['seconds']:>10.0f} {d[50]:>8.2f} {d[90]:>8.2f} {d[99]:>8.2f} {d[100]:>8.2f} {rate:>8.4f}")
print("responses by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items())) + (f", socket errors: {r['socket_errors']}" if r["socket_errors"] else ""))
if out:
    with open(out, "w") as f:
        f.write("# percentile\tlatency_ms\n")
        for p, v in r["dist"]: f.write(f"{p}\t{v}\n")
fail = []
if max_p99 and d[99] > float(max_p99): fail.append(f"p99 {d[99]:.2f} ms > {max_p99} ms")
if max_err and rate > float(max_err): fail.append(f"error rate {rate:.4f} > {max_err}")
if total == 0: fail.append("no responses")
for f in fail: print("THRESHOLD BROKEN: " + f)
sys.exit(1 if fail else 0)
PY
status=$?
if [ -n "$PLOT" ] && [ -n "$LAT_OUT" ]; then
  if command -v gnuplot >/dev/null; then
    gnuplot -e "set terminal png size 800,500; set output '$PLOT'; set title 'tenant-gateway latency ($PROTO, $CONNS connections)'; set xlabel 'percentile'; set ylabel 'ms'; set logscale y; set grid; plot '$LAT_OUT' using 1:2 with lines lw 2 title 'latency'"
    echo "plot: $PLOT"
  else
    echo "gnuplot not installed: no plot (apt-get install gnuplot-nox)" >&2
  fi
elif [ -n "$PLOT" ]; then
  echo "--plot needs --latency-out" >&2
fi
exit $status
