"""Schemathesis hooks for scripts/fuzz.

The run is authenticated as an admin. The fuzzer may log that admin out,
revoke its sessions, or (once it has created a second admin) demote,
disable or delete it: whenever the token stops working or no longer
belongs to an enabled admin, a fresh admin is made with `taskgate
create-user` and logged in, so the rest of the run keeps its coverage."""
import itertools
import os
import subprocess

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
