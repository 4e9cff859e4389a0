"""Faults injected on request, so tests can watch clients cope with a misbehaving Plaid.

Not part of Plaid's API: armed by `POST /sandbox/faults`, cleared by `DELETE /sandbox/faults`.
A fault hits the next `count` calls to its endpoint (all calls while `count` is null), optionally
only those for one access token or item.
"""

from __future__ import annotations

import threading
from typing import Literal

from pydantic import BaseModel, Field

from badges.banking.sandbox.plaid import errors

FaultKind = Literal["rate_limit", "server_error", "slow", "item_login_required"]

# Plaid's per-endpoint rate-limit codes; other endpoints answer the generic RATE_LIMIT.
_RATE_LIMIT_CODES = {
    "/transactions/sync": "TRANSACTIONS_SYNC_LIMIT",
    "/accounts/get": "ACCOUNTS_LIMIT",
    "/item/get": "ITEM_GET_LIMIT",
    "/institutions/get_by_id": "INSTITUTIONS_GET_BY_ID_LIMIT",
}


class Fault(BaseModel):
    endpoint: str = Field(description='A path such as "/transactions/sync"; "*": all but /sandbox/faults.')
    kind: FaultKind
    count: int | None = Field(1, ge=1, description="How many matching calls fail; null: until cleared.")
    delay_ms: int = Field(1000, ge=0, le=60_000, description="For `slow`: the delay before answering normally.")
    error_code: str | None = Field(None, description="For `rate_limit`: overrides Plaid's code for the endpoint.")
    access_token: str | None = None
    item_id: str | None = None

    def matches(self, endpoint: str, access_token: str | None, item_id: str | None) -> bool:
        return (
            self.endpoint in ("*", endpoint)
            and self.access_token in (None, access_token)
            and self.item_id in (None, item_id)
        )

    def error(self, endpoint: str) -> errors.PlaidError | None:
        """The error to answer with; None for `slow`, which delays and then answers normally."""
        if self.kind == "rate_limit":
            return errors.rate_limit(self.error_code or _RATE_LIMIT_CODES.get(endpoint, "RATE_LIMIT"))
        if self.kind == "server_error":
            return errors.internal_server_error()
        if self.kind == "item_login_required":
            return errors.item_login_required()
        return None


class Faults:
    """The armed faults, oldest first; the first that matches a call is the one that fires."""

    def __init__(self) -> None:
        self._armed: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(fault)

    def armed(self) -> list[Fault]:
        with self._lock:
            return list(self._armed)

    def clear(self) -> int:
        with self._lock:
            cleared, self._armed = len(self._armed), []
        return cleared

    def take(self, endpoint: str, access_token: str | None, item_id: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._armed):
                if fault.matches(endpoint, access_token, item_id):
                    if fault.count is not None:
                        remaining = fault.count - 1
                        if remaining:
                            self._armed[index] = fault.model_copy(update={"count": remaining})
                        else:
                            del self._armed[index]
                    return fault
        return None
