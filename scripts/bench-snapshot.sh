#!/usr/bin/env bash
# Snapshot load at platform scale, beside HAProxy loading the same host and key maps.
#   scripts/bench-snapshot.sh N        (N shops; each has 2 host names and 3 keys: N*5 entries)
# Env: FOUNDATION=1 also times Foundation's JSONSerialization and JSONDecoder on the same file;
#      RELOADS=k loads k more times into a live store (peak memory of reloads); WORK=dir.
# Prints one table: load time, memory per entry, and the ratio to HAProxy.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"; WORK="${WORK:-/tmp/tgw-bench-snapshot}"; RELOADS="${RELOADS:-2}"
mkdir -p "$WORK"
command -v haproxy >/dev/null || { echo "haproxy is needed (apt-get install haproxy)" >&2; exit 2; }
swift build -c release --product tenant-gateway >/dev/null
BIN="$(swift build -c release --show-bin-path)/tenant-gateway"

SNAP="$WORK/snapshot-$N.json"
if [ ! -f "$SNAP" ]; then
  echo "generating $N shops ..." >&2
  python3 scripts/gen-snapshot.py "$N" "$WORK"
fi
SIZE=$(stat -c %s "$SNAP")
ENTRIES=$((N * 5))

# HAProxy: the same 2N hosts and 3N keys as map files referenced by converters.
cat > "$WORK/haproxy-maps.cfg" <<CFG
global
  nbthread 1
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
frontend f
  bind 127.0.0.1:18990
  http-request set-var(txn.shop) req.hdr(host),lower,map($WORK/hosts-$N.map)
  http-request set-var(txn.key) req.hdr(authorization),word(2,' '),digest(sha256),hex,lower,map($WORK/keys-$N.map)
  default_backend b
backend b
  server s 127.0.0.1:1
CFG
sed -e "/map(/d" "$WORK/haproxy-maps.cfg" > "$WORK/haproxy-empty.cfg"
hp_start=$(date +%s.%N); haproxy -c -q -f "$WORK/haproxy-maps.cfg"; hp_end=$(date +%s.%N)
HAPROXY_S=$(python3 -c "print(round($hp_end - $hp_start, 3))")
rss_of() {  # start haproxy in the foreground, wait for the maps to load, read VmRSS (bytes)
  haproxy -db -f "$1" >/dev/null 2>&1 & local pid=$!
  for _ in $(seq 600); do ss -ltn 2>/dev/null | grep -q ':18990 ' && break; sleep 0.1; done
  sleep 0.5; local kb; kb=$(awk '/VmRSS/{print $2}' /proc/$pid/status); kill $pid; wait $pid 2>/dev/null || true
  echo $((kb * 1024))
}
HP_RSS_MAPS=$(rss_of "$WORK/haproxy-maps.cfg"); HP_RSS_EMPTY=$(rss_of "$WORK/haproxy-empty.cfg")
HP_PER_ENTRY=$(python3 -c "print(round(($HP_RSS_MAPS - $HP_RSS_EMPTY) / $ENTRIES, 1))")

STATS=$("$BIN" snapshot stats "$SNAP" --domain platform.test --api-host api.platform.test --reloads "$RELOADS")
echo "$STATS" > "$WORK/stats-$N.json"
python3 - "$STATS" "$N" "$SIZE" "$HAPROXY_S" "$HP_PER_ENTRY" "$HP_RSS_MAPS" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); n, size, hp_s, hp_pe, hp_rss = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
mb = lambda b: f"{b / 1048576:.0f} MiB"
print(f"shops {n:,}  entries {s['entries']:,} ({s['hosts']:,} hosts + {s['keys']:,} keys)  snapshot {mb(size)}")
print(f"{'':28} {'gateway':>14} {'haproxy':>14} {'ratio':>8}")
print(f"{'load (s)':28} {s['load_s']:>14.2f} {hp_s:>14.2f} {s['load_s'] / hp_s:>8.2f}")
print(f"{'memory per entry (B)':28} {s['rss_bytes_per_entry']:>14.1f} {hp_pe:>14.1f} {s['rss_bytes_per_entry'] / hp_pe:>8.2f}")
print(f"{'table arrays per entry (B)':28} {s['table_bytes_per_entry']:>14.1f}")
print(f"{'process RSS':28} {mb(s['rss_bytes']):>14} {mb(hp_rss):>14}")
print(f"{'peak RSS, first load':28} {mb(s['peak_rss_first_load_bytes']):>14}")
if 'reload_s' in s:
    print(f"{'reloads (s)':28} {', '.join(f'{t:.2f}' for t in s['reload_s']):>14}")
    print(f"{'peak RSS incl. reloads':28} {mb(s['peak_rss_with_reloads_bytes']):>14}")
print(f"{'swap (µs)':28} {s['swap_us']:>14.1f}")
PY
if [ "${FOUNDATION:-0}" = 1 ]; then
  for p in serialization decoder; do
    "$BIN" snapshot stats "$SNAP" --parser $p | python3 -c "import json,sys; s=json.load(sys.stdin); print(f\"Foundation {s['parser']:14} {s['load_s']:.2f} s (parse only), peak RSS {s['peak_rss_first_load_bytes']/1048576:.0f} MiB\")"
  done
fi
