"""Another service's view of taskgate: verify a fresh access token with
nothing but the JWKS URL (PyJWT's PyJWKClient), as docs/API.md describes.

usage: verify.py BASE_URL ALGORITHM ISSUER AUDIENCE
Signs up and logs in a user, verifies the access token (signature by kid,
iss, aud, exp, type = access), and checks that a token with a changed
payload and a refresh token are both refused. Exits non-zero on any failure.
"""
import base64
import json
import sys
import urllib.parse
import urllib.request
import uuid

import jwt

base, algorithm, issuer, audience = sys.argv[1:5]


def post(path, data, form=False):
    body = urllib.parse.urlencode(data).encode() if form else json.dumps(data).encode()
    kind = "application/x-www-form-urlencoded" if form else "application/json"
    req = urllib.request.Request(base + path, data=body, headers={"Content-Type": kind})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


email = f"jwks-{uuid.uuid4().hex[:12]}@example.com"
password = "a long passphrase for the jwks check 7"
post("/users/signup", {"email": email, "password": password})
pair = post("/token", {"username": email, "password": password}, form=True)
token = pair["access_token"]

# What a verifier must check (docs/API.md, "Verifying tokens elsewhere").
def verify(token):
    client = jwt.PyJWKClient(base + "/.well-known/jwks.json", cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key,
        algorithms=[algorithm],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iss", "aud", "sub"]},
    )
    if claims.get("type") != "access":
        raise jwt.InvalidTokenError(f"type {claims.get('type')!r} is not access")
    return claims

claims = verify(token)
header = jwt.get_unverified_header(token)
assert header["alg"] == algorithm, header
assert claims["sub"] == str(claims["sub"]) and claims["type"] == "access", claims
print(f"jwks: {algorithm} access token verified by kid {header['kid']}")

# A token whose payload was changed (role raised) must fail the signature.
head, payload, signature = token.split(".")
raised = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
raised["role"] = "admin"
forged_payload = base64.urlsafe_b64encode(json.dumps(raised).encode()).rstrip(b"=").decode()
for bad, why in [
    (f"{head}.{forged_payload}.{signature}", "a changed payload"),
    (pair["refresh_token"], "a refresh token"),
]:
    try:
        verify(bad)
    except jwt.PyJWTError:
        print(f"jwks: {why} is refused")
    else:
        sys.exit(f"jwks: {why} was accepted")
