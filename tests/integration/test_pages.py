"""The pages the API serves (`GET /app`, `/pages/...`): from the package itself, with a policy
that lets them load nothing from anywhere else."""

from __future__ import annotations

import re

import httpx


async def test_the_dashboard_and_its_files_come_from_the_api_with_a_same_origin_policy(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/app")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert '<script type="module" src="/pages/app/app.js">' in page.text

    for path, kind in [
        ("/pages/common/api.js", "javascript"),
        ("/pages/common/charts.js", "javascript"),
        ("/pages/common/style.css", "text/css"),
        ("/pages/app/app.js", "javascript"),
    ]:
        asset = await client.get(path)
        assert asset.status_code == 200, path
        assert kind in asset.headers["content-type"], (path, asset.headers["content-type"])
        assert asset.headers["x-content-type-options"] == "nosniff"
    # Everything a page loads is one of ours: no address of another host in any of them.
    for path in ("/app", "/pages/common/api.js", "/pages/common/style.css", "/pages/app/app.js"):
        text = (await client.get(path)).text
        assert re.search(r"(https?:)?//[a-z]", text.replace("http://www.w3.org/2000/svg", "")) is None, path


async def test_nothing_outside_the_pages_folder_is_served(client: httpx.AsyncClient) -> None:
    for path in ("/pages/../routes/pages.py", "/pages/%2e%2e/routes/pages.py", "/pages/app/missing.js"):
        assert (await client.get(path)).status_code == 404, path
    assert "/app" not in (await client.get("/openapi.json")).json()["paths"]
