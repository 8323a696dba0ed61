#!/usr/bin/env python3
"""Verify an X-Tenant token the way a backend would, with PyJWT.

usage: verify_jwt.py TOKEN SECRET_FILE ISSUER AUDIENCE
Prints the verified claims as JSON; exits 1 (with the reason on stderr) if verification fails.
"""
import json
import sys

import jwt

token, secret_file, issuer, audience = sys.argv[1:5]
with open(secret_file, "rb") as f:
    secret = f.read().rstrip()
try:
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], issuer=issuer, audience=audience,
        options={"require": ["exp", "iat", "iss", "aud"]},
    )
except jwt.PyJWTError as e:
    print(f"verification failed: {e}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"header": header, "claims": claims}))
