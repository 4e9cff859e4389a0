"""The Yodlee sandbox's web app: Yodlee's endpoints and the FastLink page (`routes`), and a few
of its own (`controls`)."""

from __future__ import annotations

from datetime import date

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from badges.banking.sandbox.yodlee import controls, errors, faults, routes
from badges.banking.sandbox.yodlee.bank import Bank


def create_yodlee_sandbox(
    *,
    client_id: str = "sandbox-client-id",
    client_secret: str = "sandbox-secret",
    admin_login_name: str = "sandbox-admin",
    token_seconds: int = 1800,
    months: int = 24,
    seed: str = "yodlee-sandbox",
    today: date | None = None,
) -> FastAPI:
    """The sandbox as an ASGI app (serve it with uvicorn). `today` fixes the last day of every
    generated history (default: the day each provider account is linked)."""
    app = FastAPI(
        title="Yodlee sandbox (API v1.1 subset)", docs_url="/_sandbox/docs", openapi_url="/_sandbox/openapi.json"
    )
    app.state.bank = Bank(client_id, client_secret, admin_login_name, token_seconds, months, seed, today)

    @app.exception_handler(errors.YodleeError)
    async def yodlee_error(_: Request, error: errors.YodleeError) -> JSONResponse:
        return error.response()

    app.middleware("http")(faults.inject)
    app.include_router(routes.router)
    app.include_router(routes.fastlink)
    app.include_router(controls.router)
    return app
