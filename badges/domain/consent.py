"""Consent to data use, per scope: grants with a purpose and an expiry, revocation, and what a
member's `ConsentWorkflow` must do next (expire a grant, remind of one expiring soon). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Scope = Literal["open_banking", "behaviour_tracking", "peer_comparison", "demographics"]
SCOPES: tuple[Scope, ...] = ("open_banking", "behaviour_tracking", "peer_comparison", "demographics")
Status = Literal["active", "revoked", "expired"]

MAX_DURATION: dict[str, timedelta] = {
    "open_banking": timedelta(days=90),
    "behaviour_tracking": timedelta(days=365),
    "peer_comparison": timedelta(days=365),
    "demographics": timedelta(days=365),
}
REMINDER_BEFORE = timedelta(days=7)


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ConsentGrant(_Wire):
    scope: Scope
    purpose: str = Field(min_length=1, max_length=500)
    expires_at: datetime


class ScopeConsent(_Wire):
    purpose: str
    granted_at: datetime
    expires_at: datetime
    status: Status = "active"
    reminded: bool = False


class ConsentState(_Wire):
    scopes: dict[str, ScopeConsent] = Field(default_factory=dict)


class Due(BaseModel):
    expired: list[str] = Field(default_factory=list)
    reminders: list[str] = Field(default_factory=list)


def grant(state: ConsentState, request: ConsentGrant, now: datetime) -> ConsentState:
    """A new or renewed grant; refuses an expiry in the past or beyond the scope's maximum."""
    if request.expires_at <= now:
        raise ValueError("expiresAt: must be in the future")
    if request.expires_at - now > MAX_DURATION[request.scope]:
        days = MAX_DURATION[request.scope].days
        raise ValueError(f"expiresAt: at most {days} days ahead for {request.scope}")
    scopes = dict(state.scopes)
    scopes[request.scope] = ScopeConsent(purpose=request.purpose, granted_at=now, expires_at=request.expires_at)
    return ConsentState(scopes=scopes)


def revoke(state: ConsentState, scope: str, now: datetime) -> ConsentState:
    """Revokes an active grant; anything else is left as it is."""
    current = state.scopes.get(scope)
    if current is None or current.status != "active":
        return state
    scopes = dict(state.scopes)
    scopes[scope] = current.model_copy(update={"status": "revoked", "expires_at": min(current.expires_at, now)})
    return ConsentState(scopes=scopes)


def _reminder_at(consent: ScopeConsent) -> datetime:
    # A grant shorter than the reminder period is reminded of at once.
    return max(consent.expires_at - REMINDER_BEFORE, consent.granted_at)


def due(state: ConsentState, now: datetime) -> Due:
    """Active grants that expire now, and those whose reminder is due (not yet sent)."""
    result = Due()
    for scope, consent in sorted(state.scopes.items()):
        if consent.status != "active":
            continue
        if consent.expires_at <= now:
            result.expired.append(scope)
        elif not consent.reminded and _reminder_at(consent) <= now:
            result.reminders.append(scope)
    return result


def apply_due(state: ConsentState, result: Due) -> ConsentState:
    scopes = dict(state.scopes)
    for scope in result.expired:
        scopes[scope] = scopes[scope].model_copy(update={"status": "expired"})
    for scope in result.reminders:
        scopes[scope] = scopes[scope].model_copy(update={"reminded": True})
    return ConsentState(scopes=scopes)


def next_deadline(state: ConsentState, now: datetime) -> datetime | None:
    """The earliest pending reminder or expiry (never before `now`), or None."""
    deadlines: list[datetime] = []
    for consent in state.scopes.values():
        if consent.status != "active":
            continue
        deadlines.append(consent.expires_at)
        if not consent.reminded:
            deadlines.append(_reminder_at(consent))
    return max(min(deadlines), now) if deadlines else None
