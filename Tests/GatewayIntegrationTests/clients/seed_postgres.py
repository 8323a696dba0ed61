#!/usr/bin/env python3
"""SQL inserting a snapshot's shops, domains and keys into the reference schema (PRODUCT.md §6).
usage: seed_postgres.py SNAPSHOT.json [--copy] > seed.sql
--copy: COPY blocks instead of INSERTs, with the triggers off for the session (a database that
        existed before sql/tenant-gateway.sql was installed: nothing in the outbox). For the
        benchmarks' million shops, where 5 000 000 INSERTs would take minutes."""
import json, sys

d = json.load(open(sys.argv[1]))
copy = "--copy" in sys.argv[2:]
q = lambda s: "'" + s.replace("'", "''") + "'"
arr = lambda l: ("ARRAY[" + ",".join(q(x) for x in l) + "]::text[]") if l else "'{}'::text[]"
out = sys.stdout
if copy:
    # COPY text format: tab-separated, \N for NULL; the generator's values have no tabs, quotes,
    # backslashes, commas, braces or spaces, which is checked rather than escaped.
    def plain(v):
        assert not any(c in v for c in '\t\n\\",{} '), v
        return v
    field = lambda v: "\\N" if v is None else plain(str(v))
    array = lambda l: "{" + ",".join(plain(x) for x in l) + "}"
    row = lambda *vs: "\t".join(v if isinstance(v, Array) else field(v) for v in vs) + "\n"
    class Array(str):
        pass
    out.write("BEGIN;\nSET LOCAL session_replication_role = replica;\n")
    out.write('COPY "Shop" (id, subdomain, "headlessMode", "allowedOrigins", status, "rateLimitRps", "rateLimitBurst") FROM stdin;\n')
    for s in d["shops"]:
        rl = s.get("rateLimit") or {}
        out.write(row(s["id"], s["subdomain"], "t" if s.get("headlessMode") else "f",
                      Array(array(s.get("allowedOrigins", []))), s.get("status", "active"), rl.get("rps"), rl.get("burst")))
    out.write("\\.\n")
    out.write('COPY "Domain" (hostname, "shopId") FROM stdin;\n')
    for s in d["shops"]:
        for h in s.get("customDomains", []):
            out.write(row(h, s["id"]))
    out.write("\\.\n")
    out.write('COPY "ApiKey" (id, "shopId", "hashedKey", kind, mode, "revokedAt") FROM stdin;\n')
    for k in d["apiKeys"]:
        out.write(row(k["id"], k["shopId"], k["sha256"], k["kind"], k["mode"], "2026-01-01T00:00:00Z" if k.get("revoked") else None))
    # Statistics now, as autovacuum would gather them on a live database: a planner without them
    # misjudges the re-read of one changed shop as big enough to JIT-compile (~90 ms a commit).
    out.write("\\.\nCOMMIT;\nANALYZE;\n")
    sys.exit(0)
print("BEGIN;")
for s in d["shops"]:
    rl = s.get("rateLimit") or {}
    print('INSERT INTO "Shop" (id, subdomain, "headlessMode", "allowedOrigins", status, "rateLimitRps", "rateLimitBurst") VALUES '
          f'({q(s["id"])}, {q(s["subdomain"])}, {str(s.get("headlessMode", False)).lower()}, {arr(s.get("allowedOrigins", []))}, '
          f'{q(s.get("status", "active"))}, {rl.get("rps", "NULL")}, {rl.get("burst", "NULL")});')
    for h in s.get("customDomains", []):
        print(f'INSERT INTO "Domain" VALUES ({q(h)}, {q(s["id"])});')
for k in d["apiKeys"]:
    revoked = "now()" if k.get("revoked") else "NULL"
    print(f'INSERT INTO "ApiKey" VALUES ({q(k["id"])}, {q(k["shopId"])}, {q(k["sha256"])}, {q(k["kind"])}, {q(k["mode"])}, {revoked});')
print("COMMIT;")
