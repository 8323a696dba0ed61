#!/usr/bin/env bash
# Starts the demo on a fresh clone: builds tenant-gateway, runs the demo upstream
# (tenant-gateway demo-upstream, on 127.0.0.1:9000) and the gateway with the shipped gateway.conf
# (TLS on 127.0.0.1:8443, a development certificate generated on first start), sends one request
# that shows the verified X-Tenant claims arriving at the upstream, then keeps serving until Ctrl-C.
#   CONFIG=path/to/gateway.conf scripts/demo.sh   to use another configuration
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG="${CONFIG:-gateway.conf}"
swift build --product tenant-gateway
BIN="$(swift build --show-bin-path)/tenant-gateway"

"$BIN" demo-upstream --config "$CONFIG" &
UP=$!
"$BIN" serve --config "$CONFIG" &
GW=$!
# One signal each on the way out (a second SIGTERM would make the gateway skip its drain).
trap 'kill $UP $GW 2>/dev/null; wait 2>/dev/null' EXIT
trap 'exit 130' INT TERM

for _ in $(seq 100); do
  curl -fs http://127.0.0.1:9901/readyz >/dev/null 2>&1 && break
  sleep 0.1
done

echo
echo "\$ curl -sk --resolve api.platform.localhost:8443:127.0.0.1 -H 'Authorization: Bearer sk_live_acme_demo_0000000000000001' https://api.platform.localhost:8443/v1/admin/products"
curl -sk --resolve api.platform.localhost:8443:127.0.0.1 \
  -H 'Authorization: Bearer sk_live_acme_demo_0000000000000001' \
  https://api.platform.localhost:8443/v1/admin/products | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print("upstream verified X-Tenant:", doc["verified"])
print(json.dumps(doc.get("claims"), indent=2, sort_keys=True))'
echo
echo "Gateway on https://127.0.0.1:8443 (admin http://127.0.0.1:9901). Demo keys are in README.md. Ctrl-C stops."
wait $GW
