"""Drives a live taskgate through the client openapi-python-client generated
from its /openapi.json (package `taskgate_client`, on PYTHONPATH): signup,
the password grant on /token, /users/me, a task created and listed, and a
422 whose `fields` name the field. Usage: flow.py BASE_URL. Exits non-zero
on the first step that does not answer as docs/API.md says."""
import sys
import uuid

from taskgate_client import AuthenticatedClient, Client
from taskgate_client.api.auth import token
from taskgate_client.api.tasks import create_task, list_tasks
from taskgate_client.api.users import me, signup
from taskgate_client.models import (
    ErrorBody,
    ErrorCode,
    PasswordGrantForm,
    SignupBody,
    TaskBody,
    Task,
    TokenPair,
    User,
)


def check(what: str, ok: bool, got: object) -> None:
    if not ok:
        sys.exit(f"python client: {what}: got {got!r}")


def main(base_url: str) -> None:
    email = f"py-{uuid.uuid4().hex[:12]}@example.com"
    password = "generated clients work"
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

    created = signup.sync_detailed(
        client=anonymous, body=SignupBody(email=email, password=password, full_name="  Ada  ")
    )
    check("signup is 201 with the user", created.status_code == 201 and isinstance(created.parsed, User), created)
    check("the name is trimmed", created.parsed.full_name == "Ada", created.parsed)

    pair = token.sync(client=anonymous, body=PasswordGrantForm(username=email, password=password))
    check("/token answers a bearer pair", isinstance(pair, TokenPair) and pair.token_type == "bearer", pair)

    user = AuthenticatedClient(base_url=base_url, token=pair.access_token, raise_on_unexpected_status=True)
    who = me.sync(client=user)
    check("/users/me is the user", isinstance(who, User) and who.email == email, who)

    made = create_task.sync_detailed(client=user, body=TaskBody(title="Buy milk", due_date="2026-12-24"))
    check("a task is created", made.status_code == 201 and isinstance(made.parsed, Task), made)
    check("Location names it", made.headers.get("location") == f"/tasks/{made.parsed.id}", made.headers)

    listed = list_tasks.sync_detailed(client=user, limit=10)
    check("the list holds it", [t.title for t in listed.parsed] == ["Buy milk"], listed.parsed)
    check("X-Total-Count counts it", listed.headers.get("x-total-count") == "1", listed.headers)

    # A common password: a rule the document states in words only, so the
    # client sends it and the server answers 422 naming the field.
    refused = signup.sync_detailed(
        client=anonymous, body=SignupBody(email=f"x-{email}", password="password123")
    )
    check("a common password is 422", refused.status_code == 422 and isinstance(refused.parsed, ErrorBody), refused)
    check("the error code is typed", refused.parsed.error == ErrorCode.VALIDATION_ERROR, refused.parsed)
    check("fields name the password", "password" in refused.parsed.fields.to_dict(), refused.parsed)
    print("python client: flow passed")


if __name__ == "__main__":
    main(sys.argv[1])
