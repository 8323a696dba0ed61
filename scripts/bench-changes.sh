#!/usr/bin/env bash
# Edits at platform scale (PRODUCT.md §6 "Changes"), on loopback, bounded, stops by itself.
#   scripts/bench-changes.sh N        (N shops, N*5 entries; scripts/gen-snapshot.py's data)
# Prints: time to ready; one `domains add` command's wall time and max RSS; edit -> served p50/p99
# over 100 edits through POST /admin/changes and 100 journal lines by another writer; change sets
# per second applied from a journal burst (10 000 lines) and RSS before/after; `snapshot compact`
# time and max RSS. Env: WORK=dir (default /tmp/tgw-bench-changes), EDITS=100, BURST=10000.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"; WORK="${WORK:-/tmp/tgw-bench-changes}"; EDITS="${EDITS:-100}"; BURST="${BURST:-10000}"
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
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
# Max RSS (MB) and wall seconds of a command: "seconds mb".
timed() { python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if r.returncode: sys.stderr.write(r.stdout + r.stderr); sys.exit(r.returncode)
print("%.3f %d" % (time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024))' "$@"; }

START=$(date +%s.%N)
"$BIN" serve --config "$RUN/gateway.conf" --log-level warning > "$RUN/gateway.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null; do
  kill -0 $GW 2>/dev/null || { cat "$RUN/gateway.log"; exit 1; }; sleep 0.1
done
READY=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$START" "$(date +%s.%N)")
RSS0=$(rss $GW)

read -r CMD_S CMD_MB < <(timed "$BIN" domains add bench-added.example shop7 --config "$RUN/gateway.conf")
ADMIN_LAT=$(python3 Tests/GatewayIntegrationTests/clients/edit_latency.py "$ADMIN" admin "$EDITS")
JOURNAL_LAT=$(python3 Tests/GatewayIntegrationTests/clients/edit_latency.py "$ADMIN" journal "$EDITS" "$RUN/tenants.json.changes")

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
B0=$(date +%s.%N)
until [ "$(curl -s "http://127.0.0.1:$ADMIN/admin/snapshot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = "burst-$((BURST - 1))" ]; do sleep 0.05; done
RATE=$(python3 -c "import sys; print(int(int(sys.argv[3]) / (float(sys.argv[2]) - float(sys.argv[1]))))" "$B0" "$(date +%s.%N)" "$BURST")
sleep 1
RSS1=$(rss $GW)
kill $GW; wait $GW 2>/dev/null || true; trap - EXIT
read -r COMPACT_S COMPACT_MB < <(timed "$BIN" snapshot compact --config "$RUN/gateway.conf")

echo "bench-changes N=$N ($((N * 5)) entries), release build"
printf '%-44s %s\n' "ready from the snapshot file" "${READY} s"
printf '%-44s %s\n' "one 'domains add' (gateway running)" "${CMD_S} s, ${CMD_MB} MB max RSS"
printf '%-44s %s\n' "edit -> served, POST /admin/changes" "$ADMIN_LAT"
printf '%-44s %s\n' "edit -> served, journal line (other writer)" "$JOURNAL_LAT"
printf '%-44s %s\n' "journal burst applied" "$RATE change sets/s ($BURST lines)"
printf '%-44s %s\n' "gateway RSS before / after the edits" "$RSS0 MB / $RSS1 MB"
printf '%-44s %s\n' "snapshot compact" "${COMPACT_S} s, ${COMPACT_MB} MB max RSS"
