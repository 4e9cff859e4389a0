"""A local bank that speaks the subset of Plaid's API Badges uses, for `make dev`, demos and tests.

`create_sandbox_app()` builds it in-process; `python -m badges.banking.sandbox` serves it on
127.0.0.1:8100. The real plaid-python client talks to it (`Configuration(host=<its URL>)`).
"""

from badges.banking.sandbox.app import create_sandbox_app
from badges.banking.sandbox.config import SandboxSettings

__all__ = ["SandboxSettings", "create_sandbox_app"]
