#!/usr/bin/env bash
# Installs what the tests, the demo and the benchmarks need on a Debian machine (haproxy: the real
# PROXY-protocol front of ProxyProtocolTests; prometheus: promtool checks /metrics and the alert rules;
# gnuplot: loadtest.sh --plot; postgresql-15: the PostgreSQL source's tests run a real server,
# scripts/pg-test-server.sh; pebble: Let's Encrypt's test CA and its challenge DNS server, which the
# ACME tests validate real challenges against, scripts/pebble-test-server.sh)
# (Swift itself is expected to be installed). Safe to run again.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  curl openssl ca-certificates nghttp2-client wrk python3 python3-pip haproxy prometheus gnuplot-nox \
  postgresql-15 postgresql-client-15 pebble >/dev/null
# The Debian package starts a cluster of its own; the tests start throwaway ones and need none.
command -v systemctl >/dev/null && $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
# node runs docs/examples/verify_tenant.mjs (BackendExampleTests); many images have it already.
command -v node >/dev/null || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs >/dev/null
# Python clients used by the integration tests: the h2 protocol stack, PyJWT, websockets, and sslyze
# (the TLS profile gate: Mozilla "intermediate", TLSProfileTests).
# kubernetes-validate and check-jsonschema validate docker/ (scripts/check-deploy.sh).
PIP_PACKAGES=(h2 PyJWT cryptography websockets sslyze kubernetes-validate check-jsonschema)
python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null \
  || python3 -m pip install -q --break-system-packages "${PIP_PACKAGES[@]}"
python3 -c 'import h2, jwt, websockets, sslyze; print("python clients: h2", h2.__version__, "PyJWT", jwt.__version__, "websockets", websockets.__version__, "sslyze ok")'
