"""Generated input against the signed intake (`POST /v1/integrations/{id}/events`) of the running
API: a genuine signed request changed anywhere (body, timestamp, signature, secret, header) is
refused with a 401 problem and never reaches a member; and whatever a registered event system
signs, the answer is an acknowledgement or a problem, never a 5xx. `make fuzz` runs many more."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from badges.domain.signatures import SCHEME, sign, signature
from tests.integration.test_integrations import post_signed, register

pytestmark = [pytest.mark.fuzz, pytest.mark.usefixtures("worker")]

PROBLEM_JSON = "application/problem+json"
# A few members, so generated events do not start a workflow each.
MEMBERS = [f"fuzz-signed-{number}@example.com" for number in range(3)]


@pytest.fixture(scope="module")
async def integration(api_url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        return await register(client, ["attendance", "voting", "tool_usage"])


def genuine_event(event_id: str, user_id: str = MEMBERS[0]) -> bytes:
    document = {
        "id": event_id,
        "type": "attendance",
        "userId": user_id,
        "eventData": {"eventId": "fuzz"},
        "timestamp": datetime.now(UTC).isoformat(),
    }
    return json.dumps(document).encode()


# Where and how to change a body, drawn without looking at it (the body holds the clock's time,
# and hypothesis wants the same draws whenever it replays an example).
body_changes = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("extend"), st.integers(1, 8), st.integers(0, 255)),
)


def changed(data: bytes, how: tuple[str, int, int]) -> bytes:
    kind, where, bits = how
    at = where % len(data)
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ bits]) + data[at + 1 :]
    if kind == "cut":
        return data[:at]
    return data + bytes([bits]) * where


def assert_problem(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == response.status_code


async def receipts(pool: AsyncConnectionPool, event_id: str) -> int:
    """How many times an event with this id reached intake (its receipt), for any member."""
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM event_receipts WHERE event_id = %s", (event_id,))
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


@given(data=st.data())
async def test_a_signed_request_changed_anywhere_is_refused(
    client: httpx.AsyncClient, integration: tuple[str, str], pool: AsyncConnectionPool, data: st.DataObject
) -> None:
    integration_id, secret = integration
    event_id = f"forged-{uuid.uuid4().hex}"
    body = genuine_event(event_id)
    now = int(time.time())
    genuine = signature(secret.encode(), now, body)
    change = data.draw(st.sampled_from(["body", "timestamp", "signature", "secret", "header"]))
    sent_body, header = body, f"t={now},{SCHEME}={genuine}"
    if change == "body":
        sent_body = changed(body, data.draw(body_changes))
    elif change == "timestamp":
        header = f"t={now + data.draw(st.integers(-(10**10), 10**10).filter(bool))},{SCHEME}={genuine}"
    elif change == "signature":
        at = data.draw(st.integers(0, 63))
        shift = data.draw(st.integers(1, 15))
        digit = "0123456789abcdef"[("0123456789abcdef".index(genuine[at]) + shift) % 16]
        header = f"t={now},{SCHEME}={genuine[:at]}{digit}{genuine[at + 1 :]}"
    elif change == "secret":
        other = data.draw(st.text(min_size=1, max_size=64).filter(lambda s: s != secret))
        header = sign(other.encode(), now, body)
    else:
        # What an HTTP client sends as a header value: printable ASCII, no outer spaces.
        header = data.draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)).strip()
    assume(sent_body != body or header != f"t={now},{SCHEME}={genuine}")
    response = await post_signed(client, integration_id, sent_body, header=header or None)
    assert_problem(response, 401)
    assert response.json()["type"] in ("urn:badges:problem:invalid-signature", "urn:badges:problem:stale-signature")
    assert await receipts(pool, event_id) == 0


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
texts = st.one_of(
    st.text(max_size=40),
    st.builds(
        lambda a, bad, b: a + bad + b,
        st.text(max_size=5),
        st.sampled_from(["\x00", "\ud800", "\udfff"]),
        st.text(max_size=5),
    ),
)
timestamps = st.one_of(
    st.just("now"),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.integers(-60 * 60 * 24 * 30, 60 * 60).map(
        lambda seconds: (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    ),
    json_values,
)
events = st.fixed_dictionaries(
    {
        "id": st.one_of(st.uuids().map(lambda u: f"gen-{u.hex}"), texts, json_values),
        "type": st.one_of(st.sampled_from(["attendance", "voting", "tool_usage"]), texts),
        "userId": st.one_of(st.sampled_from(MEMBERS), texts, json_values),
        "eventData": st.one_of(st.dictionaries(texts, json_values, max_size=5), json_values),
        "timestamp": timestamps,
    },
    optional={"extra": json_values},
)


def encoded(document: dict[str, Any]) -> bytes:
    if document.get("timestamp") == "now":
        document = {**document, "timestamp": datetime.now(UTC).isoformat()}
    return json.dumps(document).encode()  # escapes kept: \\u0000 and \\ud800 reach the parser


@given(
    body=st.one_of(
        events.map(encoded), json_values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=300)
    )
)
async def test_whatever_an_event_system_signs_is_answered_without_a_server_error(
    client: httpx.AsyncClient, integration: tuple[str, str], body: bytes
) -> None:
    integration_id, secret = integration
    response = await post_signed(client, integration_id, body, secret)
    if response.status_code in (200, 202):
        assert response.json()["status"] in ("accepted", "duplicate")
        return
    # 403 event type not allowed, 410 an erased member, 422 invalid, 429 rate-limited.
    assert_problem(response, 403, 409, 410, 422, 429)
