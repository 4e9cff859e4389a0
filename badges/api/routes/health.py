"""`GET /healthz` (the process is up), `GET /readyz` (Temporal and PostgreSQL answer) and
`GET /metrics` (this process's Prometheus metrics)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from badges.api.deps import ServicesDep
from badges.db.engine import ping
from badges.metrics import CONTENT_TYPE, exposition

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_SECONDS = 3.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, services: ServicesDep) -> JSONResponse:
    async def database() -> None:
        await ping(services.engine)

    async def temporal() -> None:
        await services.temporal.service_client.check_health()

    checks: dict[str, str] = {}
    for name, check in (("postgres", database), ("temporal", temporal)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


# Not in the OpenAPI document: Prometheus's text format is no JSON contract, and only the
# deployment's scraper reads it (keep it off the public ingress). What it holds, and how several
# processes on one port share it: `api/metrics.py`, docs/deployment.md.
@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    await request.app.state.readings.refresh()  # the database's figures, at most every few seconds
    return Response(exposition(request.app.state.metrics), media_type=CONTENT_TYPE)
