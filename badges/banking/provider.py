"""One interface for every bank data provider (the shapes it speaks in are in `domain/banking.py`).

Amounts are normalised at this edge to one convention: integer minor units, **positive for money
into the account** (income, refunds), negative for money out (spending, transfers out). Plaid
reports the opposite sign as a float; each adapter converts with `to_minor`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

from badges.domain.banking import Account, Exchanged, LinkStart, SyncPage, WebhookNotice

# How a provider failure should be handled: retried with backoff, or stopped for the member.
FailureKind = Literal[
    "rate_limited",  # 429: retry later, back off
    "unavailable",  # 5xx, timeouts: retry later, back off
    "login_required",  # the member must re-link (update mode) before anything syncs again
    "mutation_during_pagination",  # restart the batch from its first cursor
    "invalid",  # our request or credentials are wrong: retrying changes nothing
    "gone",  # the item or token no longer exists at the provider
]


class ProviderError(Exception):
    def __init__(self, kind: FailureKind, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.kind = kind
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "unavailable")


# Awaited before a webhook's verification needs an outbound call (fetching a key the adapter does
# not hold, or reading back what an unsigned notice claims): the caller's chance to limit them, by
# raising. An adapter that can tell which connection the notice claims (its item id, and the
# member it names) passes them, so a notice about no connection of ours costs no outbound call.
BeforeKeyFetch = Callable[..., Awaitable[None]]


class BankProvider(Protocol):
    name: str  # a ProviderName

    async def link(self, client_user_id: str, webhook_url: str | None, access_token: str | None = None) -> LinkStart:
        """Start linking (or, with `access_token`, re-authenticating: update mode)."""
        ...

    async def exchange(self, public_token: str, client_user_id: str | None = None) -> Exchanged:
        """The connection the member's finished link flow names. `client_user_id`: the member
        `link` was called for (Yodlee's provider account is found under their login name)."""
        ...

    async def accounts(self, access_token: str) -> list[Account]: ...

    async def sync_page(self, access_token: str, cursor: str | None, count: int) -> SyncPage:
        """One page of incremental changes after `cursor` (None: from the beginning)."""
        ...

    async def remove(self, access_token: str) -> None:
        """Revoke our access at the provider. Idempotent: an item already gone is not an error."""
        ...

    async def verify_webhook(
        self, body: bytes, headers: dict[str, str], *, before_key_fetch: BeforeKeyFetch | None = None
    ) -> WebhookNotice:
        """The webhook, if its signature is valid and fresh; ProviderError("invalid") otherwise.
        `before_key_fetch` is awaited before any outbound call verification needs."""
        ...
