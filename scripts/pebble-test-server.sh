#!/usr/bin/env bash
# Let's Encrypt's test CA on loopback for the ACME tests (Debian's pebble and pebble-challtestsrv).
#   scripts/pebble-test-server.sh start DIR ACME_PORT DNS_PORT TLS_PORT HTTP_PORT [MGMT_PORT DNS_MGMT_PORT]
#       makes a CA and a certificate for pebble's own HTTPS (DIR/ca.pem is what tls.acme.ca_file
#       trusts), starts pebble-challtestsrv as DNS only (every name is 127.0.0.1, no AAAA) and
#       pebble on 127.0.0.1:ACME_PORT, validating tls-alpn-01 on TLS_PORT and http-01 on HTTP_PORT
#       (the gateway's listeners); the directory is https://127.0.0.1:ACME_PORT/dir, pebble's
#       management API (its issuing root: /roots/0) on MGMT_PORT (default ACME_PORT + 1)
#   scripts/pebble-test-server.sh stop DIR    stop both (the tests always do, even on failure)
# PEBBLE_VA_NOSLEEP: no random validation delay. Pebble still rejects 5 % of nonces (badNonce)
# and reuses authorizations at random, which the client must handle.
set -euo pipefail
cd "$(dirname "$0")/.."
# The servers must not inherit this script's descriptors (see pg-test-server.sh).
#   detach PIDFILE LOG COMMAND...
detach() (
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  pidfile="$1"; log="$2"; shift 2
  "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$pidfile"
)
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}
case "${1:-}" in
  start)
    DIR="$2"; ACME_PORT="$3"; DNS_PORT="$4"; TLS_PORT="$5"; HTTP_PORT="$6"
    MGMT_PORT="${7:-$((ACME_PORT + 1))}"; DNS_MGMT_PORT="${8:-$((DNS_PORT + 1))}"
    mkdir -p "$DIR"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pebble test root" \
      -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$DIR/pebble.key" -out "$DIR/pebble.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$DIR/san.ext"
    openssl x509 -req -in "$DIR/pebble.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial -days 2 \
      -extfile "$DIR/san.ext" -out "$DIR/pebble.pem" 2>/dev/null
    cat > "$DIR/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$ACME_PORT", "managementListenAddress": "127.0.0.1:$MGMT_PORT",
  "certificate": "$DIR/pebble.pem", "privateKey": "$DIR/pebble.key",
  "httpPort": $HTTP_PORT, "tlsPort": $TLS_PORT, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
    detach "$DIR/challtestsrv.pid" "$DIR/challtestsrv.log" pebble-challtestsrv -dns01 "127.0.0.1:$DNS_PORT" -http01 "" -https01 "" -tlsalpn01 "" \
      -management "127.0.0.1:$DNS_MGMT_PORT" -defaultIPv4 127.0.0.1 -defaultIPv6 ""
    PEBBLE_VA_NOSLEEP=1 detach "$DIR/pebble.pid" "$DIR/pebble.log" \
      pebble -config "$DIR/pebble.json" -dnsserver "127.0.0.1:$DNS_PORT"
    wait_port "$ACME_PORT" || { cat "$DIR/pebble.log" >&2; exit 1; }
    ;;
  stop)
    DIR="$2"
    for p in pebble challtestsrv; do
      [ -f "$DIR/$p.pid" ] && kill "$(cat "$DIR/$p.pid")" 2>/dev/null || true
    done
    ;;
  *) echo "usage: $0 start DIR ACME_PORT DNS_PORT TLS_PORT HTTP_PORT | stop DIR" >&2; exit 2 ;;
esac
