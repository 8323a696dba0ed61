#!/usr/bin/env python3
"""Change sets at a steady rate for a fixed time, as a platform's control plane would send them.

usage: change_writer.py journal JOURNAL RATE SECONDS SHOPS_JSON
       change_writer.py postgres PORT RATE SECONDS SHOPS_JSON
SHOPS_JSON lists the shops to edit ({"id", "subdomain", "customDomains"}), typically shops under
load. Change n edits shop n % len(shops) and adds or removes one of its custom domains:
  journal:  a change-set line replacing the shop whole (its own domains plus the one of the
            moment), appended under JOURNAL.lock and fsynced, RATE / 100 lines every 10 ms;
  postgres: one transaction through a single psql session (autocommit), alternately
            INSERT INTO "Domain" and DELETE of the domain inserted before for that shop.
Every change leaves the shop's subdomain and listed domains as they are, so the load against them
must keep resolving to the same shop. Prints JSON: written, seconds, last_version (journal).
"""
import fcntl, json, os, subprocess, sys, time

mode, target, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
shops = json.load(open(sys.argv[5]))
per_tick = max(1, int(rate / 100))


def journal_change(n):
    shop = dict(shops[(n // 2) % len(shops)])
    # Even n adds the domain of the moment, odd n takes it away again.
    extra = [f"w{n - n % 2}.{shop['subdomain']}.soak.test"] if n % 2 == 0 else []
    shop["customDomains"] = list(shop["customDomains"]) + extra
    return json.dumps({"version": f"soak-w{n}", "shops": [shop]}) + "\n"


def sql_change(n):
    shop = shops[(n // 2) % len(shops)]
    host = f"w{n - n % 2}.{shop['subdomain']}.soak.test"
    if n % 2 == 0:
        return f"INSERT INTO \"Domain\" VALUES ('{host}', '{shop['id']}');\n"
    return f"DELETE FROM \"Domain\" WHERE hostname = '{host}';\n"


start = time.monotonic()
n = 0
psql = None
if mode == "postgres":
    psql = subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", target, "-U", "postgres", "-d", "platform",
                             "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, text=True)
while time.monotonic() - start < seconds:
    tick = start + (n // per_tick + 1) / (rate / per_tick)
    batch = range(n, n + per_tick)
    if mode == "journal":
        with open(target + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with open(target, "a") as f:
                f.write("".join(journal_change(i) for i in batch))
                f.flush()
                os.fsync(f.fileno())
    else:
        psql.stdin.write("".join(sql_change(i) for i in batch))
        psql.stdin.flush()
    n += per_tick
    delay = tick - time.monotonic()
    if delay > 0:
        time.sleep(delay)
if psql:
    psql.stdin.close()
    if psql.wait() != 0:
        print(json.dumps({"error": f"psql exited {psql.returncode}"}))
        sys.exit(1)
print(json.dumps({"written": n, "seconds": round(time.monotonic() - start, 2), "last_version": f"soak-w{n - 1}"}))
