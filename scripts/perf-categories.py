# Sorts perf samples (perf script -F comm,tid,ip,sym) into components by the frame nearest the
# leaf that names one: kernel, BoringSSL, signing, resolution, HPACK, HTTP/1 codec, NIO, ...
import sys, re, collections
stacks=[]; cur=None
for line in open(sys.argv[1], errors='replace'):
    if not line.strip():
        if cur: stacks.append(cur); cur=None
        continue
    if not line.startswith('\t') and not line.startswith(' '):
        cur=[]; continue
    parts=line.strip().split(' ',1)
    cur.append((parts[1] if len(parts)>1 else '?').replace(' (inlined)',''))
if cur: stacks.append(cur)
cats=[(c, re.compile(p)) for c,p in [
 ('kernel-syscall', r'do_syscall_64|entry_SYSCALL'),
 ('kernel-other', r'^\[k\]|_raw_spin|irq'),
 ('boringssl', r'CNIOBoringSSL|bssl'),
 ('signing', r'TenantTokenSigner|GatewaySigning'),
 ('resolve/policy', r'TenantResolver|TenantTable|RequestAdmission|RequestValidation|GatewayCore|KeyDigest|HostName'),
 ('hpack', r'NIOHPACK'),
 ('h1-codec', r'HTTPDecoder|BetterHTTPParser|HTTPRequestEncoder|HTTPResponseEncoder|NIOHTTP1|c_nio_llhttp'),
 ('header-rewrite', r'HeaderRewrite'),
 ('upstream', r'GatewayUpstream'),
 ('gw-h2', r'HTTP2ServerHandler|Exchange'),
 ('nio-http2', r'NIOHTTP2'),
 ('nio-ssl', r'NIOSSL'),
 ('nio-core', r'NIOCore|NIOPosix'),
]]
c=collections.Counter(); leafc=collections.defaultdict(collections.Counter)
for s in stacks:
    for f in s:
        hit=None
        for name,r in cats:
            if r.search(f): hit=name; break
        if hit: c[hit]+=1; leafc[hit][s[0][:60]]+=1; break
    else: c['other']+=1; leafc['other'][s[0][:60]]+=1
N=len(stacks)
for k,v in c.most_common():
    print(f"{100*v/N:6.2f}% {k}   top leaves: " + "; ".join(f"{l} {100*n/N:.1f}" for l,n in leafc[k].most_common(4)))
