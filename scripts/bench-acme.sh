#!/usr/bin/env bash
# ACME against pebble on loopback, timed (issue 4/6):
#   scripts/bench-acme.sh [N=1000]
# Starts Debian's pebble (PEBBLE_VA_NOSLEEP=1, scripts/pebble-test-server.sh) and the release
# gateway with tls.acme on, validating real tls-alpn-01 on the gateway's TLS port, and prints:
#   start  the seconds from /readyz 200 until the sample shops' custom domains are valid
#   live   the seconds from `domains add` until a handshake presents the new certificate
#   bulk   N domains mapped by one change set: the seconds until all are valid, and the peak of
#          tenant_gateway_acme_orders_running (sampled every 50 ms) against max_concurrent_orders
# MAX_CONCURRENT (default 8, the config default) sets tls.acme.max_concurrent_orders.
# Loopback only; bounded (BULK_TIMEOUT, default 900 s); stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
MAX_CONCURRENT="${MAX_CONCURRENT:-8}"
BULK_TIMEOUT="${BULK_TIMEOUT:-900}"
WORK="${WORK:-/tmp/tgw-bench-acme}"
ACME_PORT=28700 DNS_PORT=28702 TLS_PORT=28443 HTTP_PORT=28080 ADMIN_PORT=28901
ROOT="$PWD"
swift build -c release --product tenant-gateway >/dev/null
BIN="$(swift build -c release --show-bin-path)/tenant-gateway"

rm -rf "$WORK"; mkdir -p "$WORK/certs"
GW_PID=""
cleanup() {
  [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
  bash scripts/pebble-test-server.sh stop "$WORK/pebble" || true
}
trap cleanup EXIT
bash scripts/pebble-test-server.sh start "$WORK/pebble" $ACME_PORT $DNS_PORT $TLS_PORT $HTTP_PORT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$WORK/certs/platform.key" \
  -out "$WORK/certs/platform.pem" -days 2 -subj "/CN=*.platform.localhost" -addext "subjectAltName=DNS:*.platform.localhost" 2>/dev/null
cp samples/tenants.json "$WORK/tenants.json"
cat > "$WORK/gateway.conf" <<CONF
listen: {address: "127.0.0.1:$TLS_PORT", http_address: "127.0.0.1:$HTTP_PORT", https_redirect_port: $TLS_PORT}
admin: {address: "127.0.0.1:$ADMIN_PORT"}
tls:
  certificates: [{cert: $WORK/certs/platform.pem, key: $WORK/certs/platform.key}]
  acme: {directory_url: "https://127.0.0.1:$ACME_PORT/dir", contact: ops@example.com, ca_file: $WORK/pebble/ca.pem,
         storage_dir: $WORK/acme, challenges: [tls-alpn-01], handshake_wait_s: 15,
         max_orders_per_hour: 100000, max_concurrent_orders: $MAX_CONCURRENT}
platform: {api_hosts: [api.platform.localhost], domain: platform.localhost}
snapshot: {path: $WORK/tenants.json, state_dir: $WORK/var}
upstreams: {default: "http://127.0.0.1:9"}
tenant_header: {signing_keys: [{kid: k1, alg: HS256, secret_file: $ROOT/dev/tenant-hs256.key}]}
access_log: {path: ""}
CONF

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }
# The number of domains in STATE in /admin/certificates.
count_state() {
  curl -s "http://127.0.0.1:$ADMIN_PORT/admin/certificates" \
    | python3 -c "import json, sys; print(json.load(sys.stdin)['byState'].get(sys.argv[1], 0))" "$1"
}
# awk reads to the end: an early exit would break curl's pipe, which pipefail turns into a failure.
metric() { curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk -v m="$1" '$1 == m {v = $2} END {print v}'; }

# Started here, not in $(...), so GW_PID belongs to this shell and the trap can stop it.
"$BIN" serve --config "$WORK/gateway.conf" >"$WORK/gateway.log" 2>&1 &
GW_PID=$!
until curl -fs -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz"; do
  kill -0 "$GW_PID" 2>/dev/null || { tail -20 "$WORK/gateway.log"; exit 1; }
  sleep 0.02
done
ready=$(now)
until [ "$(count_state valid)" -ge 2 ]; do sleep 0.02; done
echo "start: the 2 sample custom domains valid $(since "$ready" "$(now)") s after /readyz"

t0=$(now)
"$BIN" domains add live.acme.test acme --config "$WORK/gateway.conf" >/dev/null
until openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername live.acme.test </dev/null 2>/dev/null \
    | openssl x509 -noout -issuer 2>/dev/null | grep -q -i pebble; do sleep 0.02; done
echo "live: domains add -> certificate presented in $(since "$t0" "$(now)") s"

python3 - "$N" > "$WORK/bulk.json" <<'PY'
import json, sys, uuid
n = int(sys.argv[1])
shops = [{"id": str(uuid.UUID(int=0xb0 << 120 | i)), "subdomain": f"bulk{i}", "customDomains": [f"shop{i}.bulk-merchant.test"],
          "headlessMode": False, "allowedOrigins": [], "status": "active"} for i in range(n)]
print(json.dumps({"version": f"bench-acme-bulk-{n}", "shops": shops}))
PY
before=$(count_state valid)
t0=$(now)
"$BIN" apply "$WORK/bulk.json" --config "$WORK/gateway.conf" >"$WORK/apply.out" 2>&1 || { cat "$WORK/apply.out" >&2; exit 1; }
peak=0
deadline=$(( $(date +%s) + BULK_TIMEOUT ))
while :; do
  running=$(metric tenant_gateway_acme_orders_running); running=${running:-0}
  [ "$running" -gt "$peak" ] && peak=$running
  valid=$(count_state valid)
  [ "$valid" -ge $((before + N)) ] && break
  [ "$(date +%s)" -ge "$deadline" ] && { echo "bulk: timed out with $((valid - before)) of $N valid" >&2; exit 1; }
  sleep 0.05
done
elapsed=$(since "$t0" "$(now)")
echo "bulk: $N domains in one change set, all valid after $elapsed s; peak orders running $peak (max_concurrent_orders $MAX_CONCURRENT)"
echo "orders: issued $(metric 'tenant_gateway_acme_orders_total{result="issued"}'), failed $(metric 'tenant_gateway_acme_orders_total{result="failed"}')"
