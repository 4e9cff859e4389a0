"""What a provider outage costs in calls to the provider, with the per-connection breaker alone
(before) and with the breaker per provider on top (after).

    .venv/bin/python -m bench.provider_outage                       # JSON on stdout
    .venv/bin/python -m bench.provider_outage --connections 10000 --minutes 10 60 240

A simulation, not a run of the stack: every connection of one provider syncs on the workflow's
schedule (`BADGES_BANK_SYNC_INTERVAL_SECONDS`, 6 h ± 10 %, at random phases) and the provider
fails every call for N minutes. It replays the real policies, imported, not copied: the sync
activity's retry policy (`SYNC_RETRY`: 4 attempts, 2 s doubling), the workflow's per-connection
cool-downs (1 min doubling to 6 h), its pause while the provider's breaker is open (the wait the
breaker gives, up to 10 % more as jitter, +1 s), and `domain/provider_breaker.py` with the default policy
(5 connections, 2 min doubling to 1 h, 1 min probe lease). Each activity attempt that is
admitted costs one provider call (a sync's first call fails; a cached token is reused). On the
stack, the breaker itself costs a sync one primary-key read while it is closed (not measured here).
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
from datetime import UTC, datetime, timedelta

from badges.domain.provider_breaker import BreakerPolicy, BreakerState, admit, failed, succeeded
from badges.messages.bank_sync import DEFAULT_INTERVAL
from badges.workflows.bank_sync import (
    BASE_COOL_DOWN,
    COOL_DOWN_DOUBLINGS,
    JITTER,
    MAX_COOL_DOWN,
    PAUSE_MARGIN,
    SYNC_RETRY,
)

START = datetime(2026, 12, 7, tzinfo=UTC)


def attempt_offsets() -> list[timedelta]:
    """When each attempt of one sync activity starts, after the first (the retry policy's backoff)."""
    assert SYNC_RETRY.maximum_attempts and SYNC_RETRY.maximum_interval
    offsets, delay, at = [timedelta(0)], SYNC_RETRY.initial_interval, timedelta(0)
    for _ in range(SYNC_RETRY.maximum_attempts - 1):
        at += delay
        offsets.append(at)
        delay = min(delay * SYNC_RETRY.backoff_coefficient, SYNC_RETRY.maximum_interval)
    return offsets


def simulate(connections: int, outage: timedelta, *, provider_breaker: bool, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    policy = BreakerPolicy()
    breaker = BreakerState()
    outage_start = START + DEFAULT_INTERVAL  # a quiet first period, then the outage
    outage_end = outage_start + outage
    horizon = outage_end + DEFAULT_INTERVAL * 2  # long enough for everyone to recover
    failures = [0] * connections
    # (when, connection): a sync due. Random phases: connections linked at different times.
    due = [(START + DEFAULT_INTERVAL * rng.random(), c) for c in range(connections)]
    heapq.heapify(due)
    calls = calls_in_outage = 0
    recovered_at: datetime | None = None
    offsets = attempt_offsets()
    while due:
        now, connection = heapq.heappop(due)
        if now > horizon:
            break
        name = str(connection)
        paused_for: timedelta | None = None
        succeeded_sync = False
        for offset in offsets:  # the activity's attempts
            at = now + offset
            if provider_breaker:
                breaker, admission = admit(breaker, name, at, policy)
                if not admission.proceed:  # non-retryable ProviderPaused: no call
                    assert admission.paused_until is not None
                    paused_for = admission.paused_until - at
                    break
            calls += 1
            if outage_start <= at < outage_end:
                calls_in_outage += 1
                if provider_breaker:
                    breaker, _ = failed(breaker, name, at, policy)
                continue
            succeeded_sync = True
            if provider_breaker:
                breaker = succeeded(breaker, name)
            if at >= outage_end and recovered_at is None:
                recovered_at = at
            break
        # The workflow's wait (bank_sync._wait), as it is with and without the provider's breaker.
        if paused_for is not None:
            wait = paused_for * (1 + JITTER * rng.random()) + PAUSE_MARGIN
        elif succeeded_sync:
            failures[connection] = 0
            wait = DEFAULT_INTERVAL * (1 + JITTER * (2 * rng.random() - 1))
        else:
            failures[connection] += 1
            doublings = min(failures[connection] - 1, COOL_DOWN_DOUBLINGS)
            wait = min(BASE_COOL_DOWN * 2**doublings, MAX_COOL_DOWN)
        heapq.heappush(due, (now + wait, connection))
    return {
        "provider_calls": calls,
        "provider_calls_during_outage": calls_in_outage,
        "first_success_after_outage_s": (recovered_at - outage_end).total_seconds() if recovered_at else -1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--minutes", type=int, nargs="+", default=[10, 60, 240])
    args = parser.parse_args()
    results = []
    for minutes in args.minutes:
        outage = timedelta(minutes=minutes)
        before = simulate(args.connections, outage, provider_breaker=False)
        after = simulate(args.connections, outage, provider_breaker=True)
        results.append({"outage_minutes": minutes, "before": before, "after": after})
    print(json.dumps({"connections": args.connections, "sync_interval_h": 6, "results": results}, indent=2))


if __name__ == "__main__":
    main()
