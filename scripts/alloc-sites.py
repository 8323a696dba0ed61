#!/usr/bin/env python3
"""Groups sampled malloc call stacks (`perf script` output of scripts/allocs.sh TOP=1) by the
first frame outside the allocator and the standard library's allocating helpers, and prints the
sites with their share of all sampled allocations. Names are mangled; pipe through swift demangle."""
import re, sys
from collections import Counter

SKIP = re.compile(r"malloc|swift_slowAlloc|swift_allocObject|_allocateUninitialized|StringStorage|"
                  r"_allocateStringStorage|_StorageC|ContiguousArrayBuffer|ArrayBuffer|"
                  r"_copyCollectionToContiguousArray|reallocated|_makeMutableAndUnique|Array.*append|"
                  r"\$sSa|\$ss|\$sS[SsDh]|^\[unknown\]|swift_allocBox|_fromUTF8|uncheckedFromUTF8|"
                  r"ByteBufferAllocator|swift_initStackObject|operator new")
stacks, cur = [], []
for line in open(sys.argv[1], errors="replace"):
    line = line.rstrip("\n")
    if not line.strip():
        if cur: stacks.append(cur)
        cur = []
        continue
    if line.startswith((" ", "\t")):
        parts = line.split(None, 1)
        if len(parts) == 2:
            cur.append(re.sub(r"\+0x[0-9a-f]+ \(.*\)$|\s\(.*\)$", "", parts[1]).strip())
if cur: stacks.append(cur)
sites = Counter()
for s in stacks:
    site = next((f for f in s if not SKIP.search(f)), s[0] if s else "?")
    # Keep one caller for context.
    i = s.index(site) if site in s else 0
    caller = s[i + 1] if i + 1 < len(s) else ""
    sites[(site, caller)] += 1
total = sum(sites.values()) or 1
for (site, caller), n in sites.most_common(40):
    print(f"{100*n/total:5.1f}%  {site}   <- {caller}")
