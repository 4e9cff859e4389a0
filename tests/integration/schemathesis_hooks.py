"""Schemathesis hooks for `test_api_fuzz.py` (loaded by the `schemathesis` command through
SCHEMATHESIS_HOOKS): who is calling, and the check that every error is a problem response.

Tokens come from the environment the test sets: a member's for member routes, a staff token
(admin, compliance and operator at once) for `/v1/admin/…` and `/codec/…`, and for
`DELETE /v1/me` a new member each time, so an erasure ends only that one member. Path parameters
are sometimes ids that exist (BADGES_FUZZ_IDS: a review, a bank connection, an integration, an
export, a badge, an award instance, an issuer key), so generated requests reach past "not found".
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st

STAFF_PATH = re.compile(r"^/(v1/admin|codec)/")
PROBLEM_JSON = "application/problem+json"


@schemathesis.auth(refresh_interval=None, retry_on=[])
class Tokens:
    """Chooses the bearer token by the operation's path; generated Authorization headers (the
    negative cases that drop or garble it) are left as they are."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        operation = context.operation
        if operation.method.upper() == "DELETE" and operation.path == "/v1/me":
            return new_member_token()
        if STAFF_PATH.match(operation.path):
            return os.environ["BADGES_FUZZ_STAFF_TOKEN"]
        return os.environ["BADGES_FUZZ_MEMBER_TOKEN"]

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def flatmap_path_parameters(context: schemathesis.HookContext, parameters: dict[str, Any] | None) -> Any:
    """The generated parameters, or the same with the ids that exist put in."""
    known = json.loads(os.environ.get("BADGES_FUZZ_IDS", "{}"))
    if not parameters or not known.keys() & parameters.keys():
        return st.just(parameters)
    real = {**parameters, **{name: value for name, value in known.items() if name in parameters}}
    return st.sampled_from([parameters, real])


def new_member_token() -> str:
    response = requests.post(
        os.environ["BADGES_FUZZ_API"] + "/v1/dev/token",
        json={"sub": f"fuzz-erased-{uuid.uuid4()}@example.com", "scopes": ["user"]},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@schemathesis.check
def errors_are_problem_details(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every 4xx and 5xx is RFC 9457 problem details: that media type, and `type`, `title`,
    `status` (the response's own) and `detail`."""
    if response.status_code < 400:
        return
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media_type != PROBLEM_JSON:
        raise AssertionError(f"a {response.status_code} answered {media_type or 'no content type'}, not {PROBLEM_JSON}")
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"a {response.status_code} problem body is not JSON") from exc
    if not isinstance(body, dict):
        raise AssertionError("a problem body is not a JSON object")
    if body.get("status") != response.status_code:
        raise AssertionError(f"problem status {body.get('status')!r} is not the response's {response.status_code}")
    for member in ("type", "title", "detail"):
        if not isinstance(body.get(member), str):
            raise AssertionError(f"problem member {member!r} is missing or not a string")
