"""The sandbox bank that speaks the subset of Plaid's API Badges uses; the real plaid-python client talks to it.

`create_sandbox_app()` builds it in-process; `python -m badges.banking.sandbox` serves it on 127.0.0.1:8100.
"""

from badges.banking.sandbox.plaid.app import create_sandbox_app
from badges.banking.sandbox.plaid.config import SandboxSettings

__all__ = ["SandboxSettings", "create_sandbox_app"]
