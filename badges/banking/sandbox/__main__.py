"""`python -m badges.banking.sandbox`: serve the Plaid sandbox (BADGES_SANDBOX_PORT, PLAID_CLIENT_ID, PLAID_SECRET)."""

from __future__ import annotations

import uvicorn

from badges.banking.sandbox import SandboxSettings, create_sandbox_app


def main() -> None:
    settings = SandboxSettings()
    uvicorn.run(create_sandbox_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
