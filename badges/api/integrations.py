"""Event systems (scanners, voting platforms, calculators) that sign their requests: registering
them, rotating and disabling their secrets, and accepting their signed events."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from psycopg_pool import AsyncConnectionPool
from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncEngine

from badges.api.intake import EventIntake, Outcome
from badges.api.members import MemberDirectory
from badges.api.problems import Problem
from badges.api.schemas import WireModel
from badges.db.integrations import (
    active_integration,
    claim_signature,
    disable_integration,
    insert_integration,
    list_integrations,
    prune_signatures,
    release_signature,
    replace_integration_secret,
)
from badges.db.keys import KeyStore
from badges.db.webhooks import new_secret, seal_secret, unseal_secret
from badges.domain.events import EventType, RealTimeEvent
from badges.domain.signatures import DEFAULT_TOLERANCE_S, SignatureError, verify

# Another API process sees a rotated or disabled secret within this time; this one at once.
SECRET_CACHE_SECONDS = 5.0
CACHE_LIMIT = 10_000
# A signature stays usable while its timestamp is within the tolerance either side of the
# clock: up to twice the tolerance after it is first seen. Receipts are kept a minute longer.
RECEIPT_RETENTION = timedelta(seconds=2 * DEFAULT_TOLERANCE_S + 60)
PRUNE_EVERY_REQUESTS = 256


# --- wire models -----------------------------------------------------------------------------


class IntegrationRequest(WireModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    integration_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$", examples=["hall-scanner"])
    event_types: list[EventType] = Field(min_length=1)

    @field_validator("event_types")
    @classmethod
    def _distinct(cls, value: list[EventType]) -> list[EventType]:
        if len(set(value)) != len(value):
            raise ValueError("eventTypes must not repeat a type")
        return value


class IntegrationView(WireModel):
    integration_id: str
    event_types: list[str]
    created_by: str
    created_at: datetime
    disabled_at: datetime | None = None


class IntegrationList(WireModel):
    integrations: list[IntegrationView]


class IntegrationSecret(WireModel):
    """An integration's signing secret: answered when it is made, never again."""

    integration_id: str
    event_types: list[str]
    secret: str
    created_at: datetime


class WebhookDeliveryView(WireModel):
    delivery_id: str
    member_id: uuid.UUID
    badge_id: str
    url: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class WebhookDeliveryList(WireModel):
    deliveries: list[WebhookDeliveryView]


# --- the service -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveIntegration:
    event_types: frozenset[str]
    secret: bytes


class IntegrationService:
    def __init__(
        self,
        engine: AsyncEngine,
        pool: AsyncConnectionPool,
        keys: KeyStore,
        members: MemberDirectory,
        intake: EventIntake,
        *,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
    ) -> None:
        self._engine = engine
        self._pool = pool
        self._keys = keys
        self._members = members
        self._intake = intake
        self._tolerance_s = tolerance_s
        self._cache: dict[str, tuple[ActiveIntegration | None, float]] = {}
        # Unknown ids are checked against this, so they cost and answer what a wrong secret does.
        self._decoy_secret = secrets.token_bytes(32)
        self._requests = 0

    # --- administration --------------------------------------------------------------------

    async def register(self, request: IntegrationRequest, author: str) -> IntegrationSecret:
        secret = new_secret()
        sealed, key_id = await seal_secret(self._keys, secret)
        event_types = list(request.event_types)
        created_at = await insert_integration(self._engine, request.integration_id, event_types, sealed, key_id, author)
        if created_at is None:
            raise Problem(
                409, "integration-exists", f"An integration {request.integration_id!r} exists already (or did)."
            )
        self._forget(request.integration_id)
        return IntegrationSecret(
            integration_id=request.integration_id, event_types=event_types, secret=secret, created_at=created_at
        )

    async def integrations(self) -> IntegrationList:
        rows = await list_integrations(self._engine)
        return IntegrationList(
            integrations=[
                IntegrationView(
                    integration_id=row.integration_id,
                    event_types=list(row.event_types),
                    created_by=row.created_by,
                    created_at=row.created_at,
                    disabled_at=row.disabled_at,
                )
                for row in rows
            ]
        )

    async def rotate(self, integration_id: str) -> IntegrationSecret:
        """A new secret; the old one stops working at once."""
        secret = new_secret()
        sealed, key_id = await seal_secret(self._keys, secret)
        row = await replace_integration_secret(self._engine, integration_id, sealed, key_id)
        if row is None:
            raise self._not_found(integration_id)
        self._forget(integration_id)
        return IntegrationSecret(
            integration_id=integration_id, event_types=list(row.event_types), secret=secret, created_at=row.created_at
        )

    async def disable(self, integration_id: str) -> None:
        if not await disable_integration(self._engine, integration_id):
            raise self._not_found(integration_id)
        self._forget(integration_id)

    # --- signed events ---------------------------------------------------------------------

    async def receive(self, integration_id: str, signature_header: str, body: bytes) -> tuple[Outcome, RealTimeEvent]:
        """Authenticate a signed request, then accept its event as `POST /v1/events` does."""
        integration, signature = await self._authenticate(integration_id, signature_header, body)
        await self._intake.check_integration_rate(integration_id)
        event = event_from_signed_body(body)
        if event.type not in integration.event_types:
            raise Problem(
                403,
                "event-type-not-allowed",
                f"This integration may send only {', '.join(sorted(integration.event_types))} events.",
            )
        await self._prune_now_and_then()
        if not await claim_signature(self._pool, integration_id, signature):
            raise Problem(
                409,
                "replayed-request",
                "This signed request was received before. To retry, sign it again with the current time.",
            )
        try:
            member_id = await self._members.resolve(event.user_id)
            outcome = await self._intake.accept(member_id, event, source="integration", channel="webhook")
        except BaseException:
            # Not acted on (Temporal down, rate limited, too old): the sender may send it again.
            await release_signature(self._pool, integration_id, signature)
            raise
        return outcome, event

    async def _authenticate(self, integration_id: str, header: str, body: bytes) -> tuple[ActiveIntegration, str]:
        """The integration and the signature it sent; unknown and disabled ids get the answers a
        wrong secret gets, so the answers do not say which ids exist."""
        integration = await self._active(integration_id)
        secret = integration.secret if integration is not None else self._decoy_secret
        try:
            signature = verify(secret, header, body, now=int(time.time()), tolerance_s=self._tolerance_s)
        except SignatureError as error:
            if error.reason == "stale":
                raise Problem(401, "stale-signature", error.detail) from error
            raise Problem(401, "invalid-signature", error.detail) from error
        if integration is None:  # the decoy matched: never happens, and is never accepted either
            raise Problem(401, "invalid-signature", "The signature does not match the body and secret.")
        return integration, signature

    async def _active(self, integration_id: str) -> ActiveIntegration | None:
        cached = self._cache.get(integration_id)
        if cached is not None and time.monotonic() - cached[1] < SECRET_CACHE_SECONDS:
            return cached[0]
        row = await active_integration(self._engine, integration_id)
        active = None
        if row is not None:
            secret = await unseal_secret(self._keys, row.sealed_secret, row.key_id)
            active = ActiveIntegration(event_types=frozenset(row.event_types), secret=secret.encode())
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[integration_id] = (active, time.monotonic())
        return active

    def _forget(self, integration_id: str) -> None:
        self._cache.pop(integration_id, None)

    async def _prune_now_and_then(self) -> None:
        self._requests += 1
        if self._requests % PRUNE_EVERY_REQUESTS == 1:
            await prune_signatures(self._pool, RECEIPT_RETENTION)

    @staticmethod
    def _not_found(integration_id: str) -> Problem:
        return Problem(404, "integration-not-found", f"No active integration {integration_id!r}.")


def event_from_signed_body(body: bytes) -> RealTimeEvent:
    """The body as a `RealTimeEvent`; invalid input is answered like any request body (422,
    each field named `body.<field>`)."""
    try:
        return RealTimeEvent.model_validate_json(body)
    except ValidationError as error:
        errors: list[dict[str, Any]] = [
            {**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False, include_context=False)
        ]
        raise RequestValidationError(errors) from error
