"""`/docs` works without the internet: Swagger UI's page names only files of this origin, and the
API serves them."""

from __future__ import annotations

import re

import httpx

EXPECTED_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


async def test_the_docs_page_loads_only_same_origin_assets_and_they_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    references = re.findall(r"""(?:href|src|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert references, page.text
    assert not [ref for ref in references if "//" in ref], references  # no other origin, no CDN
    assets = [ref for ref in references if ref.startswith("/docs-assets/")]
    assert {ref.rsplit(".", 1)[1] for ref in assets} >= {"js", "css"}
    for ref in references:
        answer = await client.get(ref)
        assert answer.status_code == 200, ref
        suffix = "." + ref.rsplit(".", 1)[-1]
        assert EXPECTED_TYPES[suffix] in answer.headers["content-type"], (ref, answer.headers["content-type"])
    assert (await client.get("/redoc")).status_code == 404  # ReDoc would load from a CDN: not served
