"""The Plaid sandbox's web app: Plaid's endpoints (`routes`) and a few of its own (`controls`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from badges.banking.sandbox.plaid import controls, errors, routes
from badges.banking.sandbox.plaid.bank import Bank, Clock
from badges.banking.sandbox.plaid.config import SandboxSettings
from badges.banking.sandbox.plaid.deps import Sandbox, request_id
from badges.banking.sandbox.plaid.faults import Faults
from badges.banking.sandbox.plaid.webhooks import WebhookSigner


def create_sandbox_app(settings: SandboxSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The sandbox bank; `clock` fixes "today" for generated histories (default: the real UTC clock)."""
    settings = settings or SandboxSettings()
    app = FastAPI(title="Badges sandbox bank (Plaid API subset)", docs_url="/docs", redoc_url=None)
    app.state.sandbox = Sandbox(
        settings=settings,
        bank=Bank(clock or (lambda: datetime.now(UTC)), settings.history_months),
        faults=Faults(),
        signer=WebhookSigner(created_at=int(time.time())),
    )

    @app.exception_handler(errors.PlaidError)
    async def plaid_error(_: Request, error: errors.PlaidError) -> JSONResponse:
        return JSONResponse(error.body(request_id()), status_code=error.status)

    app.include_router(routes.router)
    app.include_router(controls.router)
    return app
