#!/usr/bin/env bash
# Benchmark of tls.custom_domain_certs_dir with many certificates (issue 8/8):
#   scripts/bench-certs.sh [N=50000]
# Generates N self-signed P-256 certificates (<domain>.pem + <domain>.key), starts the release
# gateway with them, and prints: start-up time (launch → /readyz 200), RSS after start, the cost of a
# first (loading) and a cached handshake for custom domains next to a configured certificate's, RSS
# after the loads; then the same handshakes with the same files served from `tls.acme.storage_dir`
# instead (a snapshot mapping every domain to an active shop; the CA is unreachable, as in an
# outage, so nothing is ordered); then times HAProxy loading the same directory (`haproxy -c`, crt
# directory) for the ratio. Loopback only; bounded (HAPROXY_TIMEOUT, default 900 s).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-50000}"
SAMPLE="${SAMPLE:-300}"
WORK="${WORK:-/tmp/tgw-bench-certs}"
mkdir -p "$WORK"
swift build -c release --product tenant-gateway >/dev/null
BIN="$(swift build -c release --show-bin-path)/tenant-gateway"

if [ "$(ls "$WORK/domains" 2>/dev/null | wc -l)" -ne $((2 * N)) ]; then
  rm -rf "$WORK/domains"; mkdir -p "$WORK/domains"
  echo "generating $N certificates in $WORK/domains ..."
  python3 - "$N" "$WORK/domains" <<'PY'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
n, out = int(sys.argv[1]), sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
for i in range(n):
    name = f"shop{i}.example-merchant.test"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    open(f"{out}/{name}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(f"{out}/{name}.key", "wb").write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
fi

mkdir -p "$WORK/certs"
[ -f "$WORK/certs/platform.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$WORK/certs/platform.key" -out "$WORK/certs/platform.pem" -days 2 -subj "/CN=*.platform.localhost" \
  -addext "subjectAltName=DNS:*.platform.localhost" 2>/dev/null
cat > "$WORK/gateway.conf" <<CONF
listen: {address: "127.0.0.1:18443"}
admin: {address: "127.0.0.1:19901"}
tls:
  custom_domain_certs_dir: $WORK/domains
  certificates: [{cert: $WORK/certs/platform.pem, key: $WORK/certs/platform.key}]
platform: {api_hosts: [api.platform.localhost], domain: platform.localhost}
snapshot: {path: $PWD/samples/tenants.json, changes_path: $WORK/tenants.changes, state_dir: $WORK/var}
upstreams: {default: "http://127.0.0.1:9"}
tenant_header: {signing_keys: [{kid: k1, alg: HS256, secret_file: $PWD/dev/tenant-hs256.key}]}
access_log: {path: ""}
CONF

# The handshake sample: SAMPLE random custom domains twice (first use, cached) beside the
# configured certificate, as JSON on stdout.
handshakes() {
  python3 - "$N" "$SAMPLE" <<'PY'
import json, random, socket, ssl, statistics, sys, time
n, sample = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def handshake(name):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", 18443)) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t2:
            cert = t2.getpeercert(binary_form=True)
    return (time.perf_counter() - t) * 1000, cert
names = [f"shop{i}.example-merchant.test" for i in random.Random(8).sample(range(n), sample)]
base = [handshake("acme.platform.localhost")[0] for _ in range(sample)]
first, certs = zip(*[handshake(x) for x in names])
cached = [handshake(x)[0] for x in names]
assert len(set(certs)) == len(names), "a domain got another domain's certificate"
assert base and certs[0] != handshake("acme.platform.localhost")[1], "a custom domain got the default certificate"
q = lambda v: {"p50": round(statistics.median(v), 2), "p99": round(sorted(v)[int(len(v) * 0.99) - 1], 2)}
print(json.dumps({"configured": q(base), "first": q(first), "cached": q(cached)}))
PY
}

start=$(date +%s.%N)
"$BIN" serve --config "$WORK/gateway.conf" > "$WORK/gateway.log" 2>&1 &
GW=$!
trap 'kill $GW 2>/dev/null; wait 2>/dev/null' EXIT
until curl -fs http://127.0.0.1:19901/readyz >/dev/null 2>&1; do sleep 0.02; done
ready=$(date +%s.%N)
rss() { awk '/VmRSS/{print int($2/1024)}' /proc/$GW/status; }
rss_start=$(rss)
handshakes > "$WORK/handshakes.json"
rss_after=$(rss)
curl -s http://127.0.0.1:19901/metrics | grep '^tenant_gateway_custom_certificate' > "$WORK/metrics.txt"
kill $GW; wait $GW 2>/dev/null || true

# The same files as ACME's storage: every domain a custom domain of an active shop, the CA a closed
# port (loaded at start, served on demand, never ordered while valid).
rm -rf "$WORK/acme-storage"; cp -al "$WORK/domains" "$WORK/acme-storage"
python3 - "$N" > "$WORK/acme-tenants.json" <<'PY'
import json, sys, uuid
n = int(sys.argv[1])
shops = [{"id": str(uuid.UUID(int=0xce << 120 | i)), "subdomain": f"m{i}", "customDomains": [f"shop{i}.example-merchant.test"],
          "headlessMode": False, "allowedOrigins": [], "status": "active"} for i in range(n)]
shops.append({"id": "5b0c6f2e-8a1d-4c3b-9e7f-1a2b3c4d5e01", "subdomain": "acme", "customDomains": [], "headlessMode": False,
              "allowedOrigins": [], "status": "active"})
print(json.dumps({"version": f"bench-certs-{n}", "shops": shops, "apiKeys": []}))
PY
sed -e "s|  custom_domain_certs_dir: $WORK/domains|  acme: {directory_url: \"https://127.0.0.1:9/dir\", contact: ops@example.com, challenges: [tls-alpn-01], storage_dir: $WORK/acme-storage}|" \
    -e "s|snapshot: {path: [^,]*,|snapshot: {path: $WORK/acme-tenants.json,|" -e "s|changes_path: $WORK/tenants.changes|changes_path: $WORK/acme-tenants.changes|" -e "s|state_dir: $WORK/var|state_dir: $WORK/var-acme|" \
    "$WORK/gateway.conf" > "$WORK/gateway-acme.conf"
"$BIN" serve --config "$WORK/gateway-acme.conf" > "$WORK/gateway-acme.log" 2>&1 &
GW=$!
until curl -fs http://127.0.0.1:19901/readyz >/dev/null 2>&1; do sleep 0.02; done
# Storage is read at start: wait until every domain is known valid before timing handshakes.
for _ in $(seq 1 600); do
  valid=$(curl -s http://127.0.0.1:19901/admin/certificates | python3 -c "import json, sys; print(json.load(sys.stdin)['byState']['valid'])")
  [ "$valid" -ge "$N" ] && break
  sleep 0.5
done
acme_loaded=$(date +%s.%N)
handshakes > "$WORK/handshakes-acme.json"
acme_orders=$(curl -s http://127.0.0.1:19901/metrics | awk '/^tenant_gateway_acme_orders_total/ {s += $2} END {print s + 0}')
kill $GW; wait $GW 2>/dev/null || true
trap - EXIT

haproxy_s="n/a"
if command -v haproxy >/dev/null; then
  cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 1000
defaults
  mode http
  timeout connect 1s
  timeout client 1s
  timeout server 1s
frontend fe
  bind 127.0.0.1:28443 ssl crt $WORK/certs/haproxy-platform.pem crt $WORK/domains/
  default_backend be
backend be
  server s1 127.0.0.1:9
CFG
  cat "$WORK/certs/platform.pem" "$WORK/certs/platform.key" > "$WORK/certs/haproxy-platform.pem"
  # HAProxy reads <name>.pem and picks up <name>.pem.key; give it that layout in a copy of links.
  mkdir -p "$WORK/haproxy-domains"
  if [ "$(ls "$WORK/haproxy-domains" | wc -l)" -ne $((2 * N)) ]; then
    rm -rf "$WORK/haproxy-domains"; mkdir -p "$WORK/haproxy-domains"
    for f in "$WORK"/domains/*.pem; do b=$(basename "$f"); ln -s "$f" "$WORK/haproxy-domains/$b"; ln -s "${f%.pem}.key" "$WORK/haproxy-domains/$b.key"; done
  fi
  sed -i "s|crt $WORK/domains/|crt $WORK/haproxy-domains/|" "$WORK/haproxy.cfg"
  h0=$(date +%s.%N)
  if timeout "${HAPROXY_TIMEOUT:-900}" haproxy -c -q -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1; then
    haproxy_s=$(python3 -c "print(round($(date +%s.%N) - $h0, 2))")
  else
    haproxy_s="failed or timed out (see $WORK/haproxy.log)"
  fi
fi

python3 - "$N" "$start" "$ready" "$rss_start" "$rss_after" "$WORK/handshakes.json" "$haproxy_s" "$SAMPLE" "$WORK/handshakes-acme.json" "$acme_orders" <<'PY'
import json, sys
n, start, ready, rss0, rss1, hs, hap, sample, hs_acme, acme_orders = sys.argv[1:]
h = json.load(open(hs))
a = json.load(open(hs_acme))
startup = float(ready) - float(start)
print(f"custom-domain certificates: {n}")
print(f"gateway start-up (launch -> /readyz): {startup:.2f} s   RSS after start: {rss0} MiB   after {sample} loads: {rss1} MiB")
print(f"handshake ms (p50 / p99): configured cert {h['configured']['p50']} / {h['configured']['p99']}, "
      f"custom first use {h['first']['p50']} / {h['first']['p99']}, custom cached {h['cached']['p50']} / {h['cached']['p99']}")
print(f"same run, served from tls.acme.storage_dir (table-checked): configured {a['configured']['p50']} / {a['configured']['p99']}, "
      f"first use {a['first']['p50']} / {a['first']['p99']}, cached {a['cached']['p50']} / {a['cached']['p99']}  (orders: {acme_orders})")
print(f"cached handshake p50, ACME / directory: {a['cached']['p50'] / h['cached']['p50']:.3f}")
try:
    print(f"haproxy -c with the same directory: {float(hap):.2f} s  (gateway start-up = {startup / float(hap):.3f}x HAProxy)")
except ValueError:
    print(f"haproxy -c with the same directory: {hap}")
PY
cat "$WORK/metrics.txt"
