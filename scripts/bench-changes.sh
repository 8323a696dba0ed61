#!/usr/bin/env bash
# Edits at platform scale (PRODUCT.md §6 "Changes"), on loopback, bounded, stops by itself.
#   scripts/bench-changes.sh N        (N shops, N*5 entries; scripts/gen-snapshot.py's data)
# Prints: time to ready; one `domains add` command's wall time and max RSS; edit -> served p50/p99
# over 100 edits through POST /admin/changes and 100 journal lines by another writer; change sets
# per second applied from a journal burst (10 000 lines) while h1 load runs, and RSS before/after;
# `snapshot compact` time and max RSS. Beside them, in the same run: HAProxy's runtime API
# (`add map` on the same 2N-entry host map, then one request through it), and with PG=1 the
# PostgreSQL source (a real PostgreSQL 15, scripts/pg-test-server.sh): time to ready from the
# database and commit -> served. Env: WORK=dir (default /tmp/tgw-bench-changes), EDITS=100,
# BURST=10000, PG=0|1.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"; WORK="${WORK:-/tmp/tgw-bench-changes}"; EDITS="${EDITS:-100}"; BURST="${BURST:-10000}"; PG="${PG:-0}"
command -v haproxy >/dev/null || { echo "haproxy is needed (scripts/install-deps.sh)" >&2; exit 2; }
mkdir -p "$WORK"
swift build -c release --product tenant-gateway >/dev/null
BIN="$(swift build -c release --show-bin-path)/tenant-gateway"
[ -f "$WORK/snapshot-$N.json" ] || { echo "generating $N shops ..." >&2; python3 scripts/gen-snapshot.py "$N" "$WORK"; }
RUN="$WORK/run"; rm -rf "$RUN"; mkdir -p "$RUN/var"
cp "$WORK/snapshot-$N.json" "$RUN/tenants.json"
PORT=$((20000 + RANDOM % 20000)); ADMIN=$((PORT + 1))
cat > "$RUN/gateway.conf" <<CONF
listen: {address: "127.0.0.1:$PORT"}
admin: {address: "127.0.0.1:$ADMIN"}
tls: {certificates: [{cert: $RUN/cert.pem, key: $RUN/key.pem}], generate_dev_certificate: true}
platform: {api_hosts: [api.platform.test], domain: platform.test, dashboard_hosts: [dashboard.platform.test]}
snapshot: {path: $RUN/tenants.json, state_dir: $RUN/var}
upstreams: {default: "http://127.0.0.1:9"}
tenant_header: {signing_keys: [{kid: b-1, alg: HS256, secret_file: $RUN/hs.key}]}
access_log: {path: ""}
CONF
head -c 32 /dev/urandom | base64 > "$RUN/hs.key"; chmod 600 "$RUN/hs.key"
# Progress on stderr, so a slow step shows where it is.
step() { echo "[$(date +%T)] $*" >&2; }
# Fails the run (not hangs it) when a wait passes its bound.
deadline() { [ "$(date +%s)" -lt "$1" ] || { echo "timed out: $2" >&2; exit 1; }; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
# Max RSS (MB) and wall seconds of a command: "seconds mb".
timed() { python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if r.returncode: sys.stderr.write(r.stdout + r.stderr); sys.exit(r.returncode)
print("%.3f %d" % (time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))' "$@"; }

# Starts the gateway with CONFIG (log to LOG), sets GW and READY (seconds until /readyz is 200).
serve_until_ready() {  # CONFIG LOG
  local start; start=$(date +%s.%N)
  "$BIN" serve --config "$1" --log-level warning > "$2" 2>&1 &
  GW=$!
  local until=$(( $(date +%s) + 600 ))
  until curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null; do
    kill -0 $GW 2>/dev/null || { cat "$2"; exit 1; }; deadline $until "gateway ready ($1)"; sleep 0.1
  done
  READY=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$start" "$(date +%s.%N)")
}

step "starting the gateway on $N shops"
serve_until_ready "$RUN/gateway.conf" "$RUN/gateway.log"
trap 'kill $GW 2>/dev/null || true' EXIT
RSS0=$(rss $GW)

step "ready in $READY s; one domains add, then $EDITS edits each way"
read -r CMD_S CMD_MB < <(timed "$BIN" domains add bench-added.example shop7 --config "$RUN/gateway.conf")
ADMIN_LAT=$(python3 Tests/GatewayIntegrationTests/clients/edit_latency.py "$ADMIN" admin "$EDITS")
JOURNAL_LAT=$(python3 Tests/GatewayIntegrationTests/clients/edit_latency.py "$ADMIN" journal "$EDITS" "$RUN/tenants.json.changes")

step "journal burst of $BURST change sets"
# A burst: BURST change sets appended at once (each maps a new domain to an existing shop).
python3 - "$RUN/tenants.json.changes" "$BURST" <<'PY'
import json, sys, fcntl, os
path, n = sys.argv[1], int(sys.argv[2])
with open(path + ".lock", "a") as lock, open(path, "a") as f:
    fcntl.flock(lock, fcntl.LOCK_EX)
    for i in range(n):
        f.write(json.dumps({"version": f"burst-{i}", "shops": [{"id": f"burst-{i}", "subdomain": f"burst{i}", "customDomains": [f"burst{i}.example"]}]}) + "\n")
    f.flush(); os.fsync(f.fileno())
PY
# Requests keep flowing while the burst is applied (one client on existing shops): none may fail.
python3 - "$PORT" "$RUN/burst-load.json" <<'PY' &
import http.client, json, socket, ssl, sys, time
port, out = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
class Conn(http.client.HTTPSConnection):
    def connect(self):  # SNI of a platform subdomain (the development certificate covers them all)
        self.sock = ctx.wrap_socket(socket.create_connection((self.host, self.port), self.timeout), server_hostname="shop0.platform.test")
ok = failed = 0; end = time.time() + 4; conn = None
while time.time() < end:
    try:
        if conn is None:
            conn = Conn("127.0.0.1", port, timeout=5)
        conn.request("GET", "/", headers={"Host": f"shop{(ok + failed) % 1000}.platform.test"})
        r = conn.getresponse(); code = json.loads(r.read() or b"{}").get("error", {}).get("code", "")
        # The bench has no upstream: a shop that resolved ends in upstream_unavailable/upstream_error.
        if code.startswith("upstream_"): ok += 1
        else: failed += 1
    except Exception:
        failed += 1; conn = None
json.dump({"resolved": ok, "failed": failed}, open(out, "w"))
PY
LOADER=$!
B0=$(date +%s.%N)
B_UNTIL=$(( $(date +%s) + 300 ))
until [ "$(curl -s "http://127.0.0.1:$ADMIN/admin/snapshot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)" = "burst-$((BURST - 1))" ]; do
  deadline $B_UNTIL "burst applied (snapshot: $(curl -s "http://127.0.0.1:$ADMIN/admin/snapshot"))"; sleep 0.05
done
RATE=$(python3 -c "import sys; print(int(int(sys.argv[3]) / (float(sys.argv[2]) - float(sys.argv[1]))))" "$B0" "$(date +%s.%N)" "$BURST")
wait $LOADER
sleep 1
RSS1=$(rss $GW)
kill $GW; wait $GW 2>/dev/null || true; trap - EXIT
step "snapshot compact"
read -r COMPACT_S COMPACT_MB < <(timed "$BIN" snapshot compact --config "$RUN/gateway.conf")

# HAProxy's runtime API on the same hosts (2N entries): `add map` over the stats socket, then one
# request whose answer is the new mapping. In memory only: not durable, not validated.
HP_PORT=$((PORT + 2))
cat > "$RUN/haproxy.cfg" <<CFG
global
  nbthread 1
  stats socket $RUN/haproxy.sock level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend f
  bind 127.0.0.1:$HP_PORT
  http-request return status 200 content-type text/plain lf-string "%[req.hdr(host),lower,map($WORK/hosts-$N.map,unknown)]"
CFG
step "haproxy with the $((N * 2))-entry host map"
HP0=$(date +%s.%N); HP_UNTIL=$(( $(date +%s) + 300 ))
haproxy -db -f "$RUN/haproxy.cfg" >"$RUN/haproxy.log" 2>&1 &
HP=$!
trap 'kill $HP 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$HP_PORT/"; do kill -0 $HP 2>/dev/null || { cat "$RUN/haproxy.log"; exit 1; }; deadline $HP_UNTIL "haproxy ready"; sleep 0.05; done
HP_READY=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$HP0" "$(date +%s.%N)")
HP_RSS=$(rss $HP)
HP_LAT=$(python3 - "$RUN/haproxy.sock" "$HP_PORT" "$WORK/hosts-$N.map" "$EDITS" <<'PY'
import http.client, json, socket, sys, time
sock_path, port, mapfile, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def cli(cmd):
    s = socket.socket(socket.AF_UNIX); s.connect(sock_path); s.sendall(cmd.encode() + b"\n")
    out = b""
    while True:
        b = s.recv(4096)
        if not b: break
        out += b
    s.close(); return out.decode()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
lat = []
for i in range(count):
    host, shop = f"hp-added-{i}.example", f"hp-shop-{i}"
    t = time.monotonic()
    r = cli(f"add map {mapfile} {host} {shop}")
    if r.strip(): sys.exit("add map: " + r)
    conn.request("GET", "/", headers={"Host": host}); body = conn.getresponse().read().decode()
    if body != shop: sys.exit(f"haproxy answered {body!r} for {host}")
    lat.append((time.monotonic() - t) * 1000)
lat.sort(); pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)
print(json.dumps({"count": count, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 2)}))
PY
)
kill $HP; wait $HP 2>/dev/null || true; trap - EXIT

if [ "$PG" = 1 ]; then
  # The same shops, domains and keys in a real PostgreSQL: the gateway reads both views at start
  # (streamed, one REPEATABLE READ transaction), then follows commits.
  step "postgres: start, seed, gateway from the database"
  PGDIR="$WORK/pg"; rm -rf "$PGDIR"; PGPORT=$((PORT + 3))
  bash scripts/pg-test-server.sh start "$PGDIR" "$PGPORT"
  trap 'bash scripts/pg-test-server.sh stop "$PGDIR"' EXIT
  python3 Tests/GatewayIntegrationTests/clients/seed_postgres.py "$WORK/snapshot-$N.json" --copy > "$RUN/seed.sql"
  PG_SEED_S=$(python3 -c '
import subprocess, sys, time
t = time.monotonic()
subprocess.run(["psql", "-h", "127.0.0.1", "-p", sys.argv[1], "-U", "postgres", "-d", "platform", "-q", "-v", "ON_ERROR_STOP=1", "-f", sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
print("%.1f" % (time.monotonic() - t))' "$PGPORT" "$RUN/seed.sql")
  sed -e "s|snapshot: {path: $RUN/tenants.json, state_dir: $RUN/var}|snapshot: {postgres: {url: \"postgres://postgres@127.0.0.1:$PGPORT/platform\", tls: disable}, state_dir: $RUN/var-pg}|" \
    "$RUN/gateway.conf" > "$RUN/gateway-pg.conf"
  grep -q "postgres:" "$RUN/gateway-pg.conf" || { echo "could not edit the snapshot line" >&2; exit 1; }
  GATEWAY_READY="$READY"
  serve_until_ready "$RUN/gateway-pg.conf" "$RUN/gateway-pg.log"
  trap 'kill $GW 2>/dev/null || true; bash scripts/pg-test-server.sh stop "$PGDIR"' EXIT
  PG_READY="$READY"; READY="$GATEWAY_READY"
  PG_RSS=$(rss $GW)
  PG_LAT=$(python3 - "$ADMIN" "$PGPORT" "$EDITS" <<'PY'
import json, subprocess, sys, time, urllib.request
admin, pgport, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
psql = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", pgport, "-U", "postgres", "-d", "platform", "-q", "-v", "ON_ERROR_STOP=1"],
                        stdin=subprocess.PIPE, text=True)
shop = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/admin/lookup?host=shop7.platform.test"))["shopId"]
lat = []
for i in range(count):
    host = f"pg-added-{i}.example"
    t = time.monotonic()
    psql.stdin.write(f"INSERT INTO \"Domain\" VALUES ('{host}', '{shop}');\n"); psql.stdin.flush()
    while json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin}/admin/lookup?host={host}")).get("shopId") != shop:
        if time.monotonic() - t > 10: sys.exit(f"{host} not served after 10 s")
        time.sleep(0.001)
    lat.append((time.monotonic() - t) * 1000)
psql.stdin.close(); psql.wait()
lat.sort(); pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)
print(json.dumps({"count": count, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(lat[-1], 1)}))
PY
)
  kill $GW; wait $GW 2>/dev/null || true
  bash scripts/pg-test-server.sh stop "$PGDIR"; trap - EXIT
fi

echo "bench-changes N=$N ($((N * 5)) entries), release build"
printf '%-44s %s\n' "ready from the snapshot file" "${READY} s"
printf '%-44s %s\n' "one 'domains add' (gateway running)" "${CMD_S} s, ${CMD_MB} MB max RSS"
printf '%-44s %s\n' "edit -> served, POST /admin/changes" "$ADMIN_LAT"
printf '%-44s %s\n' "edit -> served, journal line (other writer)" "$JOURNAL_LAT"
printf '%-44s %s\n' "journal burst applied" "$RATE change sets/s ($BURST lines; requests meanwhile: $(cat "$RUN/burst-load.json"))"
printf '%-44s %s\n' "gateway RSS before / after the edits" "$RSS0 MB / $RSS1 MB"
printf '%-44s %s\n' "snapshot compact" "${COMPACT_S} s, ${COMPACT_MB} MB max RSS"
printf '%-44s %s\n' "haproxy: ready with the host map" "${HP_READY} s, ${HP_RSS} MB RSS"
printf '%-44s %s\n' "haproxy: add map -> served (not durable)" "$HP_LAT"
if [ "$PG" = 1 ]; then
  printf '%-44s %s\n' "postgres: seeded (psql COPY)" "${PG_SEED_S} s"
  printf '%-44s %s\n' "postgres: gateway ready from the database" "${PG_READY} s, ${PG_RSS} MB RSS"
  printf '%-44s %s\n' "postgres: commit -> served (psql, one each)" "$PG_LAT"
fi
