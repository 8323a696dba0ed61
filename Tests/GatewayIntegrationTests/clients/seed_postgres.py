#!/usr/bin/env python3
"""SQL inserting a snapshot's shops, domains and keys into the reference schema (PRODUCT.md §6).
usage: seed_postgres.py SNAPSHOT.json > seed.sql"""
import json, sys

d = json.load(open(sys.argv[1]))
q = lambda s: "'" + s.replace("'", "''") + "'"
arr = lambda l: ("ARRAY[" + ",".join(q(x) for x in l) + "]::text[]") if l else "'{}'::text[]"
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
