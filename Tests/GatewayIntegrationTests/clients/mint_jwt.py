#!/usr/bin/env python3
"""Mint a session or customer token with PyJWT, as the platform's auth service would.

usage: mint_jwt.py ALG KEY_FILE KID ISSUER SUB SHOP_ID EXP_OFFSET_S [NBF_OFFSET_S]
ALG is HS256 (KEY_FILE: the shared secret), ES256 or EdDSA (KEY_FILE: a PEM private key).
Prints the compact token.
"""
import sys
import time

import jwt

alg, key_file, kid, iss, sub, shop, exp_offset = sys.argv[1:8]
with open(key_file, "rb") as f:
    key = f.read()
if alg == "HS256":
    key = key.rstrip()
now = int(time.time())
claims = {"iss": iss, "sub": sub, "shop_id": shop, "iat": now, "exp": now + int(exp_offset)}
if len(sys.argv) > 8:
    claims["nbf"] = now + int(sys.argv[8])
print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))
