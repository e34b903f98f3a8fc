"""Schemathesis hooks for scripts/fuzz.

The run is authenticated as an admin. The fuzzer may log that admin out,
revoke its sessions, or (once it has created a second admin) demote,
disable or delete it: whenever the token stops working or no longer
belongs to an enabled admin, a fresh admin is made with `taskgate
create-user` and logged in, so the rest of the run keeps its coverage."""
import itertools
import os
import re
import subprocess
import uuid

import requests
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]
PASSWORD = "fuzzing admin passphrase"
_serial = itertools.count(1)


def _create_admin() -> str:
    email = f"fuzz-admin-{os.getpid()}-{next(_serial)}@example.com"
    subprocess.run(
        [os.environ["FUZZ_BIN"], "create-user", "--email", email, "--role", "admin"],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return email


_email = None


@schemathesis.auth(refresh_interval=10)
class AdminToken:
    def get(self, case, ctx):
        global _email
        for _ in range(3):
            if _email is None:
                _email = _create_admin()
            response = requests.post(
                f"{BASE_URL}/token", data={"username": _email, "password": PASSWORD}, timeout=10
            )
            if response.status_code == 200:
                token = response.json()["access_token"]
                me = requests.get(f"{BASE_URL}/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
                if me.status_code == 200 and me.json().get("role") == "admin":
                    return token
            _email = None
        raise RuntimeError("could not obtain an admin token")

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# What Rust's `str::trim` strips (Unicode White_Space).
_TRIMMED = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
# The fields the server measures after trimming, and their limits.
_TRIMMED_LIMITS = {"title": 200, "full_name": 200}


@schemathesis.hook
def filter_body(ctx, body):
    """`maxLength` counts a title or name as sent; the server measures it
    trimmed (docs/API.md), so a text too long only by its padding is one it
    rightly takes. Such a body is not drawn: "invalid input is rejected"
    would count it against the server."""
    if not isinstance(body, dict):
        return True
    for field, limit in _TRIMMED_LIMITS.items():
        value = body.get(field)
        if isinstance(value, str) and len(value) > limit and len(value.strip(_TRIMMED)) <= limit:
            return False
    return True


# A well-formed Idempotency-Key (docs/API.md): 1 to 255 visible ASCII characters.
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]([\x20-\x7e]{0,253}[\x21-\x7e])?")


@schemathesis.hook
def map_headers(ctx, headers):
    """A well-formed Idempotency-Key is made unique per request: the fuzzer
    draws the same few keys for different bodies, which the server rightly
    refuses (422), and "valid input is accepted" would count that against it.
    Malformed keys are sent as drawn."""
    if headers and isinstance(headers.get("Idempotency-Key"), str):
        if _IDEMPOTENCY_KEY.fullmatch(headers["Idempotency-Key"]):
            headers["Idempotency-Key"] = uuid.uuid4().hex
    return headers
