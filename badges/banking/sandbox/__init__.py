"""Local banks that speak each provider's HTTP API, for `make dev`, demos and tests; all of one shape.

Shared: the people (`personas`) and the bank histories generated for them (`history`,
`catalogue`, `records`), which each provider renders in its own shape. One sub-package per provider
(`plaid/`, `truelayer/`, `yodlee/`), each with its app factory (`app`), its routers (`routes`: the provider's
endpoints; `controls`: the sandbox's own), the dependencies that guard them (`deps`), its request
bodies (`schemas`), errors and faults. (TrueLayer still generates UK histories of its own: see README.)

`python -m badges.banking.sandbox` serves the Plaid one on 127.0.0.1:8100.
"""

from badges.banking.sandbox.plaid import SandboxSettings, create_sandbox_app

__all__ = ["SandboxSettings", "create_sandbox_app"]
