"""The web pages the API serves itself: `GET /app` (the member dashboard), `GET /ops` (the operator
pages), and their static files under `/pages/` (package data in `badges/api/pages/`: `common/`
shared by every page, one folder per page); `GET /docs`, Swagger UI over the OpenAPI document, its
files from the `swagger-ui-bundle` package under `/docs-assets/`. Nothing is fetched from anywhere else: the pages'
policy allows only this origin."""

from __future__ import annotations

import os
from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

router = APIRouter(tags=["pages"], include_in_schema=False)

PAGES = Path(__file__).resolve().parent.parent / "pages"
STATIC_PREFIX = "/pages"
DOCS_ASSETS_PREFIX = "/docs-assets"
# Scripts, styles, images and connections (fetch, WebSocket) only from this origin; no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def page(folder: str) -> FileResponse:
    """A page's `index.html`, with the headers every page is served with."""
    return FileResponse(PAGES / folder / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/app")
async def member_dashboard() -> FileResponse:
    return page("app")


@router.get("/ops")
async def operator_pages() -> FileResponse:
    """Staff only in what it shows: the page asks the staff routes, which refuse other tokens."""
    return page("ops")


class PageFiles(StaticFiles):
    """The pages' scripts and styles: revalidated on each load (`no-cache`), never sniffed."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update({"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})
        return response


def static_files() -> StaticFiles:
    """Mounted at `STATIC_PREFIX`: `/pages/common/api.js`, `/pages/app/app.js`, ..."""
    return PageFiles(directory=PAGES)


@router.get("/docs")
async def api_docs() -> HTMLResponse:
    """Swagger UI, every file from this origin (it runs one inline script, so no page policy here)."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Badges v2 - API",
        swagger_js_url=f"{DOCS_ASSETS_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_PREFIX}/favicon-32x32.png",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )


@router.get("/docs/oauth2-redirect")
async def api_docs_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


def docs_assets() -> StaticFiles:
    """Mounted at `DOCS_ASSETS_PREFIX`: Swagger UI's script, style and icons, from its package."""
    return PageFiles(directory=swagger_ui_bundle.swagger_ui_path)
