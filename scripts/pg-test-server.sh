#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on loopback for tests and benchmarks (Debian's postgresql-15).
#   scripts/pg-test-server.sh start DIR PORT    initdb into DIR (as the postgres user when run as root),
#                                               start on 127.0.0.1:PORT, create database "platform"
#                                               with the reference schema and sql/tenant-gateway.sql
#   scripts/pg-test-server.sh restart DIR PORT  start it again after a stop
#   scripts/pg-test-server.sh stop DIR          stop it (the tests always do, even on failure)
#   scripts/pg-test-server.sh psql PORT SQL     run SQL as the superuser
# Trust authentication on loopback only: the cluster lives as long as one test run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || dirname "$(command -v pg_ctl)")}"
export PGOPTIONS="-c client_min_messages=warning"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# The server must not inherit any of this script's descriptors (stdout, stderr, or a pipe a caller
# leaked to it): a caller reading its pipes to EOF would wait for as long as PostgreSQL runs.
start_server() (
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  as_pg "$BIN/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $2 -k $1 -c fsync=off -c max_connections=200" start </dev/null >/dev/null 2>&1 \
    || { cat "$1/server.log" >&2; exit 1; }
)
case "${1:-}" in
  start)
    DIR="$2"; PORT="$3"
    mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    start_server "$DIR" "$PORT"
    psql -h 127.0.0.1 -p "$PORT" -U postgres -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE platform" >/dev/null
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d platform -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE "Shop"   (id uuid PRIMARY KEY, subdomain text UNIQUE NOT NULL, "headlessMode" boolean NOT NULL DEFAULT false,
                       "allowedOrigins" text[] NOT NULL DEFAULT '{}', status text NOT NULL DEFAULT 'active',
                       "rateLimitRps" integer, "rateLimitBurst" integer);
CREATE TABLE "Domain" (hostname text PRIMARY KEY, "shopId" uuid NOT NULL REFERENCES "Shop"(id) ON DELETE CASCADE);
CREATE TABLE "ApiKey" (id text PRIMARY KEY, "shopId" uuid NOT NULL REFERENCES "Shop"(id) ON DELETE CASCADE,
                       "hashedKey" text UNIQUE NOT NULL, kind text NOT NULL, mode text NOT NULL, "revokedAt" timestamptz);
SQL
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d platform -q -v ON_ERROR_STOP=1 -f sql/tenant-gateway.sql >/dev/null
    ;;
  restart)
    start_server "$2" "$3"
    ;;
  stop)
    DIR="$2"
    [ -d "$DIR/data" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  psql)
    PORT="$2"; shift 2
    psql -h 127.0.0.1 -p "$PORT" -U postgres -d platform -q -v ON_ERROR_STOP=1 -At -c "$*"
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR | psql PORT SQL" >&2; exit 64 ;;
esac
