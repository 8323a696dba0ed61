#!/usr/bin/env python3
"""The benchmarks' platform-scale snapshot: gen-snapshot.py N DIR writes DIR/snapshot-N.json
(N shops, each with a subdomain, a custom domain and 3 keys: N*5 entries) and the same hosts and
keys as HAProxy maps (DIR/hosts-N.map, DIR/keys-N.map)."""
import hashlib, sys, uuid, random
n = int(sys.argv[1]); work = sys.argv[2]; random.seed(7)
with open(f"{work}/snapshot-{n}.json", "w") as f, open(f"{work}/hosts-{n}.map", "w") as hm, open(f"{work}/keys-{n}.map", "w") as km:
    f.write('{"version":"bench-%d","shops":[' % n)
    for i in range(n):
        sid = str(uuid.UUID(int=random.getrandbits(128), version=4))
        if i: f.write(",")
        f.write('{"id":"%s","subdomain":"shop%d","customDomains":["shop%d.merchant.test"],"headlessMode":true,'
                '"allowedOrigins":["https://shop%d.merchant.test"],"status":"active"}' % (sid, i, i, i))
        hm.write(f"shop{i}.platform.test {sid}\nshop{i}.merchant.test {sid}\n")
    f.write('],"apiKeys":[')
    random.seed(7)
    for i in range(n):
        sid = str(uuid.UUID(int=random.getrandbits(128), version=4))
        for j, (kind, mode) in enumerate([("secret", "live"), ("secret", "test"), ("publishable", "live")]):
            digest = hashlib.sha256(f"k_{i}_{j}_abcdefghijklmnop".encode()).hexdigest()
            if i or j: f.write(",")
            f.write('{"id":"key_%08d_%d","shopId":"%s","sha256":"%s","kind":"%s","mode":"%s","revoked":false}' % (i, j, sid, digest, kind, mode))
            km.write(f"{digest} {sid}\n")
    f.write("]}\n")
