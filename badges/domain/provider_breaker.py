"""The breaker per provider, on top of each connection's: when syncs of many distinct connections
fail against one provider (an outage or its rate limit, not one member's broken link), that
provider's syncs pause for a cool-down instead of each connection finding out on its own; when it
is over, one sync probes (the others stay paused), and the probe's success closes the breaker for
everyone, its failure doubles the cool-down (up to `max_cool_down`). Pure: the state is held (and
locked) by `db/provider_breakers.py`; the clock is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True)
class BreakerPolicy:
    connections_to_open: int = 5  # distinct connections failing since the provider's last success
    cool_down: timedelta = timedelta(minutes=2)  # the first pause
    max_cool_down: timedelta = timedelta(hours=1)
    # How long a probe may take before another connection may probe instead (a probing worker died).
    probe_lease: timedelta = timedelta(minutes=1)


@dataclass(frozen=True)
class BreakerState:
    open: bool = False
    failing: frozenset[str] = frozenset()  # connections whose last sync failed, since the last success
    cool_down: timedelta | None = None  # the current pause's length, while open
    retry_at: datetime | None = None  # while open: when the next probe may go
    probing: str | None = None  # the connection probing now
    opened_at: datetime | None = None


@dataclass(frozen=True)
class Admission:
    """Whether a connection's sync may call the provider now; if not, until when it waits."""

    proceed: bool
    paused_until: datetime | None = None


def admit(state: BreakerState, connection: str, now: datetime, policy: BreakerPolicy) -> tuple[BreakerState, Admission]:
    """Closed: every sync goes. Open and cooling down: none does. Open and due: the first to ask
    becomes the probe (for `probe_lease`), the rest wait for it."""
    if not state.open:
        return state, Admission(True)
    assert state.retry_at is not None
    if now < state.retry_at:
        return state, Admission(False, state.retry_at)
    probing = replace(state, probing=connection, retry_at=now + policy.probe_lease)
    return probing, Admission(True)


def failed(state: BreakerState, connection: str, now: datetime, policy: BreakerPolicy) -> tuple[BreakerState, bool]:
    """A sync of `connection` failed with a provider outage or rate limit. Answers the new state
    and whether this failure opened the breaker (or reopened it after a failed probe)."""
    if state.open:
        if state.probing != connection:  # a sync that began before the breaker opened
            return state, False
        cool_down = min((state.cool_down or policy.cool_down) * 2, policy.max_cool_down)
        return replace(state, cool_down=cool_down, retry_at=now + cool_down, probing=None), True
    failing = state.failing | {connection}
    if len(failing) < policy.connections_to_open:
        return replace(state, failing=failing), False
    opened = BreakerState(
        open=True, failing=failing, cool_down=policy.cool_down, retry_at=now + policy.cool_down, opened_at=now
    )
    return opened, True


def succeeded(state: BreakerState, connection: str) -> BreakerState:
    """A sync went through: the provider answers, so the breaker closes and the count starts again.
    (While open, only the probe can succeed; a straggler that began before it opened proves the
    same.)"""
    del connection
    return BreakerState()
