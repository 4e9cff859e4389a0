"""The TrueLayer sandbox's web app: TrueLayer's endpoints (`routes`) and a few of its own (`controls`)."""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from badges.banking.sandbox.truelayer import controls, errors, faults, routes
from badges.banking.sandbox.truelayer.bank import Bank


def create_truelayer_sandbox(
    *,
    client_id: str = "sandbox-client-id",
    client_secret: str = "sandbox-secret",
    access_token_seconds: int = 3600,
    consent_days: int = 90,
    months: int = 24,
    seed: str = "truelayer-sandbox",
    today: date | None = None,
) -> FastAPI:
    """The sandbox as an ASGI app (serve it with uvicorn). `today` fixes the last day of every
    generated history (default: the day each connection is authorised)."""
    app = FastAPI(
        title="TrueLayer sandbox (Data API v1 subset)", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json"
    )
    app.state.bank = Bank(client_id, client_secret, access_token_seconds, consent_days, months, seed, today)

    @app.exception_handler(errors.TrueLayerError)
    async def truelayer_error(_: Request, error: errors.TrueLayerError) -> JSONResponse:
        return error.response()

    app.middleware("http")(faults.inject)
    app.include_router(routes.router)
    app.include_router(controls.router)
    return app
