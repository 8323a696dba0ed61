#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests that start the real tenant-gateway binary on
# loopback and talk to it with curl, h2load, openssl, Python h2 and PyJWT.
# One build serves both: the integration tests run the tenant-gateway built next to them.
# Needs: swift, curl, openssl, h2load (nghttp2-client), wrk, haproxy, promtool (prometheus), node, pebble,
#        gnuplot, python3 with h2, PyJWT, websockets + sslyze: on Debian, scripts/install-deps.sh
#        installs them, and this script runs it when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing_tools() {
  missing=()
  for tool in curl openssl h2load wrk python3 haproxy promtool node gnuplot psql pebble pebble-challtestsrv; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ -x /usr/lib/postgresql/15/bin/initdb ] || command -v initdb >/dev/null || missing+=("postgresql-15 (initdb)")
  python3 -c "import h2, jwt, websockets, sslyze" 2>/dev/null || missing+=("python3 modules h2, PyJWT, websockets and sslyze")
}
missing_tools
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  # Its own set-up on a new Debian machine (what .ci/run does first).
  echo "installing: ${missing[*]} (scripts/install-deps.sh)"
  bash scripts/install-deps.sh
  missing_tools
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} — run scripts/install-deps.sh (Debian) first" >&2
  exit 2
fi

# CI builds with warnings as errors (see Package.swift).
if [ "${CI:-}" = "true" ]; then export TGW_WARNINGS_AS_ERRORS=1; fi

swift build --build-tests
if [ $# -gt 0 ]; then
  exec swift test --skip-build "$@"
fi
# Two phases: everything in parallel, then the resource-exhaustion suite alone (5 000 connections
# and their Python clients would otherwise starve the timing of the tests running beside them).
status=0
swift test --skip-build --skip ExhaustionTests || status=$?
swift test --skip-build --filter ExhaustionTests || status=$?
exit $status
