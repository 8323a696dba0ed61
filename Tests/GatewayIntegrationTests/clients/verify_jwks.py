#!/usr/bin/env python3
"""Verify an X-Tenant token the way a backend would with EdDSA keys: fetch the gateway's JWKS, pick
the key by `kid`, verify with PyJWT. This is the Python example of docs/signing.md, run by the tests.

usage: verify_jwks.py TOKEN JWKS_URL ISSUER AUDIENCE
Prints the verified header and claims as JSON; exits 1 (reason on stderr) if verification fails.
"""
import json
import sys
import urllib.request

import jwt

token, jwks_url, issuer, audience = sys.argv[1:5]
with urllib.request.urlopen(jwks_url, timeout=5) as r:
    jwks = json.load(r)
header = jwt.get_unverified_header(token)
keys = {k["kid"]: jwt.PyJWK(k) for k in jwks["keys"]}
try:
    key = keys[header["kid"]]
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, audience=audience,
                        options={"require": ["exp", "iat", "iss", "aud"]})
except (KeyError, jwt.PyJWTError) as e:
    print(f"verification failed: {e!r}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": header, "claims": claims}))
