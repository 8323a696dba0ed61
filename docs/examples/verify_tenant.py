"""Verify the gateway's X-Tenant header in a Python backend (PyJWT). HS256, the default."""
import jwt  # pip install PyJWT


def load_secret(path):
    # The gateway uses the file's bytes less trailing whitespace (space, tab, CR, LF) as the key:
    # strip the same, or every signature fails on a file that ends with a newline.
    with open(path, "rb") as f:
        return f.read().rstrip(b" \t\r\n")


def verify_tenant(token, secret, method, path, issuer="tenant-gateway", audience="default"):
    """The verified claims of `token` for the request (method, path) it came with, or an exception."""
    claims = jwt.decode(
        token, secret, algorithms=["HS256"], issuer=issuer, audience=audience, leeway=5,
        options={"require": ["exp", "iat", "iss", "aud", "shop_id", "htm", "htu"]},
    )
    # htm and htu bind the token to this request: a token copied from one request is refused on
    # another method or path. htu is the path without the query.
    if claims["htm"] != method or claims["htu"] != path.split("?", 1)[0]:
        raise jwt.InvalidTokenError("X-Tenant was issued for another request")
    return claims


if __name__ == "__main__":  # python3 verify_tenant.py TOKEN SECRET_FILE METHOD PATH
    import json, sys
    try:
        print(json.dumps(verify_tenant(sys.argv[1], load_secret(sys.argv[2]), sys.argv[3], sys.argv[4])))
    except jwt.PyJWTError as e:
        sys.exit(f"refused: {e}")
