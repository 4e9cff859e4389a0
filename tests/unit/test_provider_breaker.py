"""The breaker per provider, as pure logic: many distinct connections open it (one connection
failing again and again does not), it pauses everyone for its cool-down, lets one probe through,
closes on a success and doubles its pause on a failed probe, up to the longest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from badges.domain.provider_breaker import Admission, BreakerPolicy, BreakerState, admit, failed, succeeded

POLICY = BreakerPolicy(connections_to_open=3, cool_down=timedelta(minutes=2), max_cool_down=timedelta(minutes=5))
T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)


def test_distinct_connections_open_it_one_connection_alone_does_not() -> None:
    state = BreakerState()
    for _ in range(10):
        state, opened = failed(state, "a", T0, POLICY)
        assert not opened
    state, opened = failed(state, "b", T0, POLICY)
    assert not opened and admit(state, "c", T0, POLICY)[1] == Admission(True)
    state, opened = failed(state, "c", T0, POLICY)
    assert opened and state.open and state.retry_at == T0 + timedelta(minutes=2)
    assert succeeded(BreakerState(failing=frozenset({"a", "b"})), "z") == BreakerState()  # a success resets the count


def test_open_it_pauses_everyone_then_one_probe_decides() -> None:
    state = BreakerState()
    for connection in "abc":
        state, _ = failed(state, connection, T0, POLICY)
    assert admit(state, "d", T0 + timedelta(minutes=1), POLICY)[1] == Admission(False, T0 + timedelta(minutes=2))
    due = T0 + timedelta(minutes=2)
    state, probe = admit(state, "d", due, POLICY)
    assert probe.proceed and state.probing == "d"
    state, other = admit(state, "e", due, POLICY)
    assert not other.proceed and other.paused_until == due + POLICY.probe_lease  # the probe's lease
    # A straggler's failure (begun before the breaker opened) changes nothing; the probe's doubles the pause.
    assert failed(state, "a", due, POLICY) == (state, False)
    state, reopened = failed(state, "d", due, POLICY)
    assert reopened and state.cool_down == timedelta(minutes=4) and state.retry_at == due + timedelta(minutes=4)
    state, _ = admit(state, "d", due + timedelta(minutes=4), POLICY)
    state, _ = failed(state, "d", due + timedelta(minutes=4), POLICY)
    assert state.cool_down == timedelta(minutes=5)  # never beyond the longest
    assert succeeded(state, "d") == BreakerState()
