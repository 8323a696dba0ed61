#!/usr/bin/env bash
# Runs the gateway on every configuration and snapshot the repository ships, as a deploy would:
#   - `tenant-gateway check` on gateway.conf, docker/gateway.conf (with the snapshot compose mounts)
#     and the two documents embedded in docker/k8s/configmap.yaml, extracted;
#   - `serve` once on the container's config with the container's snapshot: ready, one request
#     through the demo upstream with a verified X-Tenant, SIGTERM, exit 0.
# Absolute paths of the containers (/run/secrets, /etc/tenant-gateway, /var/lib/tenant-gateway) are
# moved under a temporary root, where development certificates and secrets are generated.
#   scripts/check-shipped.sh [path/to/tenant-gateway]      (default: the debug build)
# Needs: openssl, curl, python3. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${TGW_BINARY:-.build/debug/tenant-gateway}}"
[ -x "$BIN" ] || { echo "no gateway binary at $BIN (swift build first)" >&2; exit 2; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

root="$(mktemp -d /tmp/tgw-shipped.XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$root"; }
trap cleanup EXIT
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# Secrets where the manifests mount them (docker/compose.yaml and docker/k8s/deployment.yaml).
s="$root/run/secrets"
mkdir -p "$s/tls" "$s/signing" "$s/admin" "$root/etc/tenant-gateway/snapshot" "$root/var/lib/tenant-gateway"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj /CN=api.platform.localhost \
  -addext "subjectAltName=DNS:api.platform.localhost,DNS:*.platform.localhost,DNS:api.platform.example,DNS:*.platform.example" \
  -keyout "$s/tls/platform.key" -out "$s/tls/platform.pem" 2>/dev/null
cp "$s/tls/platform.pem" "$s/tls/tls.crt"; cp "$s/tls/platform.key" "$s/tls/tls.key"
head -c 48 /dev/urandom | base64 > "$s/tenant-hs256.key"
cp "$s/tenant-hs256.key" "$s/signing/hs256.key"
head -c 24 /dev/urandom | base64 > "$s/admin-token"
cp "$s/admin-token" "$s/admin/token"
chmod 600 "$s"/tls/* "$s"/*.key "$s"/signing/* "$s"/admin-token "$s"/admin/*

relocate() {
  sed -e "s#/run/secrets#$root/run/secrets#g" -e "s#/etc/tenant-gateway#$root/etc/tenant-gateway#g" \
      -e "s#/var/lib/tenant-gateway#$root/var/lib/tenant-gateway#g" "$1"
}
check() {
  local name="$1"; shift
  if out="$("$BIN" check "$@" 2>&1)" && grep -q "configuration OK" <<<"$out"; then
    echo "ok: check $name"
  else
    echo "$out" >&2
    fail "check $name"
  fi
}

# 1. The repository's development file (a development certificate is generated when missing).
check gateway.conf --config gateway.conf

# 2. The container's file, with the snapshot compose mounts into it.
relocate docker/gateway.conf > "$root/docker-gateway.conf"
cp samples/tenants.json "$root/etc/tenant-gateway/tenants.json"
check docker/gateway.conf --config "$root/docker-gateway.conf"

# 3. The ConfigMap's two documents, extracted as the kubelet would mount them.
python3 - docker/k8s/configmap.yaml "$root/k8s-gateway.conf.in" "$root/etc/tenant-gateway/snapshot/tenants.json" <<'EOF'
import sys
lines = open(sys.argv[1]).read().split("\n")
docs, current = {}, None
for line in lines:
    if line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(": |"):
        current = line.strip()[:-3]
        docs[current] = []
        continue
    if current is not None:
        if line.startswith("    ") or line == "":
            docs[current].append(line[4:])
        else:
            current = None
for name, out in (("gateway.conf", sys.argv[2]), ("tenants.json", sys.argv[3])):
    if name not in docs:
        sys.exit(f"configmap.yaml has no {name}")
    open(out, "w").write("\n".join(docs[name]).rstrip() + "\n")
EOF
relocate "$root/k8s-gateway.conf.in" > "$root/k8s-gateway.conf"
check "docker/k8s/configmap.yaml (gateway.conf + tenants.json)" --config "$root/k8s-gateway.conf"

# 4. Start the container's config with the container's snapshot once.
ports=($(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])'))
tls=${ports[0]} admin=${ports[1]} up=${ports[2]}
set_args=(--set "listen.address=127.0.0.1:$tls" --set "admin.address=127.0.0.1:$admin" --set "upstreams.default=http://127.0.0.1:$up")
"$BIN" demo-upstream --listen "127.0.0.1:$up" --config "$root/docker-gateway.conf" >"$root/upstream.log" 2>&1 &
pids+=($!)
"$BIN" serve --config "$root/docker-gateway.conf" "${set_args[@]}" >"$root/gateway.log" 2>&1 &
gw=$!
pids+=($gw)
ready=0
for _ in $(seq 150); do
  if curl -fs "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
if [ "$ready" = 1 ]; then
  body="$(curl -sk --max-time 5 --resolve "api.platform.localhost:$tls:127.0.0.1" \
    -H 'Authorization: Bearer sk_live_acme_demo_0000000000000001' "https://api.platform.localhost:$tls/v1/admin/products" || true)"
  if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d.get("verified") is True else 1)' "$body" 2>/dev/null; then
    echo "ok: serve docker/gateway.conf: a request through it reached the upstream with a verified X-Tenant"
  else
    fail "serve docker/gateway.conf: unexpected answer: $body"
  fi
  kill -TERM "$gw"
  rc=0; wait "$gw" || rc=$?
  [ "$rc" = 0 ] && echo "ok: serve docker/gateway.conf: SIGTERM drained and exited 0" || fail "serve exited $rc after SIGTERM"
else
  cat "$root/gateway.log" >&2
  fail "serve docker/gateway.conf never became ready"
fi

if [ "$failures" -gt 0 ]; then echo "shipped files: $failures FAILED"; exit 1; fi
echo "shipped files: ok"
