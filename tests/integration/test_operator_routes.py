"""What the operator pages read that no other route gave: every badge (inactive ones too) for
staff, and a member's workflows linked into the Temporal Web UI by internal id. Members are refused."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support import dev_token

pytestmark = pytest.mark.usefixtures("worker")


async def test_staff_see_every_badge_with_whether_it_is_active(client: httpx.AsyncClient) -> None:
    admin = await dev_token(client, f"admin-{uuid.uuid4()}", ["admin"])
    badge_id = f"retired-{uuid.uuid4().hex[:8]}"
    spec = {"name": "Retired", "rule": {"kind": "count", "eventType": "voting", "target": 3}, "active": False}
    assert (await client.put(f"/v1/admin/badges/{badge_id}", json=spec, headers=admin)).status_code == 201
    member = await dev_token(client, f"member-{uuid.uuid4()}")
    assert badge_id not in {b["badgeId"] for b in (await client.get("/v1/badges", headers=member)).json()["badges"]}
    assert (await client.get("/v1/admin/badges", headers=member)).status_code == 403

    operator = await dev_token(client, "operator-1", ["operator"])
    listed = await client.get("/v1/admin/badges", headers=operator)
    assert listed.status_code == 200
    found = {badge["badgeId"]: badge for badge in listed.json()["badges"]}
    assert found[badge_id]["active"] is False and found[badge_id]["kind"] == "count" and found[badge_id]["target"] == 3
    assert any(badge["active"] for badge in found.values())  # the shipped catalogue's


async def test_a_members_workflows_are_linked_into_the_web_ui_by_internal_id(client: httpx.AsyncClient) -> None:
    member = await dev_token(client, f"member-{uuid.uuid4()}")
    member_id = (await client.get("/v1/me", headers=member)).json()["userId"]
    assert (await client.get(f"/v1/admin/members/{member_id}/workflows", headers=member)).status_code == 403

    compliance = await dev_token(client, "compliance-1", ["compliance"])
    response = await client.get(f"/v1/admin/members/{member_id}/workflows", headers=compliance)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["temporalUiUrl"] == "http://localhost:8233" and body["namespace"] == "default"
    links = {link["kind"]: link for link in body["workflows"]}
    assert links["badges"]["workflowId"] == f"user/{member_id}/badges"
    assert set(links) == {"badges", "behaviour", "consent", "export", "erasure"}  # no bank linked
    url = urlsplit(links["badges"]["url"])
    assert url.path == "/namespaces/default/workflows"
    assert parse_qs(url.query)["query"] == [f'WorkflowId="user/{member_id}/badges"']
    assert parse_qs(urlsplit(body["allWorkflowsUrl"]).query)["query"] == [f'WorkflowId STARTS_WITH "user/{member_id}/"']

    unknown = await client.get(f"/v1/admin/members/{uuid.uuid4()}/workflows", headers=compliance)
    assert unknown.status_code == 404


async def test_the_operator_pages_come_from_the_api_with_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    page = await client.get("/ops")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/pages/ops/ops.js">' in page.text
    for path in ("/pages/ops/ops.js", "/pages/ops/ops.css"):
        asset = await client.get(path)
        assert asset.status_code == 200, path
        assert re.search(r"(https?:)?//[a-z]", asset.text) is None, path
