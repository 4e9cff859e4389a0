from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from badges.domain.consent import ConsentGrant, ConsentState, apply_due, due, grant, next_deadline, revoke

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _grant(scope: str = "open_banking", days: float = 30) -> ConsentGrant:
    return ConsentGrant.model_validate(
        {"scope": scope, "purpose": "budgeting", "expiresAt": NOW + timedelta(days=days)}
    )


def test_wire_model_validates() -> None:
    with pytest.raises(ValidationError):
        ConsentGrant.model_validate({"scope": "open_banking", "purpose": "", "expiresAt": NOW})
    with pytest.raises(ValidationError):
        ConsentGrant.model_validate({"scope": "nope", "purpose": "x", "expiresAt": NOW})
    with pytest.raises(ValidationError):
        ConsentGrant.model_validate({"scope": "open_banking", "purpose": "x", "expiresAt": NOW, "extra": 1})


def test_grant_refuses_past_and_too_long() -> None:
    with pytest.raises(ValueError, match="expiresAt"):
        grant(ConsentState(), _grant(days=-1), NOW)
    with pytest.raises(ValueError, match="expiresAt"):
        grant(ConsentState(), _grant(days=91), NOW)
    grant(ConsentState(), _grant(days=90), NOW)
    grant(ConsentState(), _grant("demographics", days=365), NOW)


def test_reminder_then_expiry() -> None:
    state = grant(ConsentState(), _grant(days=30), NOW)
    assert next_deadline(state, NOW) == NOW + timedelta(days=23)
    assert due(state, NOW + timedelta(days=22)).reminders == []
    reminded = due(state, NOW + timedelta(days=23))
    assert reminded.reminders == ["open_banking"]
    state = apply_due(state, reminded)
    assert next_deadline(state, NOW) == NOW + timedelta(days=30)
    expired = due(state, NOW + timedelta(days=30))
    assert expired.expired == ["open_banking"]
    state = apply_due(state, expired)
    assert state.scopes["open_banking"].status == "expired"
    assert next_deadline(state, NOW) is None


def test_short_grant_reminded_at_once() -> None:
    state = grant(ConsentState(), _grant(days=3), NOW)
    assert due(state, NOW).reminders == ["open_banking"]


def test_revoke_and_renewal() -> None:
    state = grant(ConsentState(), _grant(days=30), NOW)
    revoked = revoke(state, "open_banking", NOW + timedelta(days=1))
    assert revoked.scopes["open_banking"].status == "revoked"
    assert next_deadline(revoked, NOW) is None
    renewed = grant(state, _grant(days=60), NOW)
    assert due(renewed, NOW + timedelta(days=30)).expired == []
