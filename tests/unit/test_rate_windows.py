"""Rate-limit arithmetic (`domain/rate_windows.py`) and whom an unauthenticated request counts
against (`api/throttle.py`): pure, no servers."""

from __future__ import annotations

import pytest

from badges.api.throttle import address_key, parse_rate
from badges.domain.rate_windows import Rate, allows, retry_after, window_position

MINUTE = Rate(amount=3, period_seconds=60)


def test_windows_start_on_whole_periods_and_the_previous_one_slides_out() -> None:
    position = window_position(645.0, 60)
    assert position.start == 600 and position.previous_weight == pytest.approx(0.25)
    assert window_position(645.0, 60, sliding=False).previous_weight == 0.0


def test_a_hit_fits_while_the_weighted_count_stays_within_the_amount() -> None:
    position = window_position(30.0, 60)  # half the previous window in view
    assert allows(MINUTE, position, previous_hits=2, current_hits=1)  # 1 + 1 + 1 = 3
    assert not allows(MINUTE, position, previous_hits=4, current_hits=1)  # 2 + 1 + 1 = 4


def test_retry_after_is_when_one_more_hit_would_fit() -> None:
    # The window is full: not before the next one, and then only once a third of it slid out.
    now = 10.0
    position = window_position(now, 60)
    wait = retry_after(MINUTE, now, position, previous_hits=0, current_hits=3)
    assert wait == 70
    later = now + wait
    assert allows(MINUTE, window_position(later, 60), previous_hits=3, current_hits=0)
    assert not allows(MINUTE, window_position(later - 1, 60), previous_hits=3, current_hits=0)
    # Room in this window, but the previous one still weighs too much.
    position = window_position(6.0, 60)
    wait = retry_after(MINUTE, 6.0, position, previous_hits=6, current_hits=0)
    assert allows(MINUTE, window_position(6.0 + wait, 60), previous_hits=6, current_hits=0)
    # A fixed window: its end.
    assert retry_after(MINUTE, 10.0, window_position(10.0, 60, sliding=False), 0, 3) == 50


def test_rates_parse_from_the_settings_notation() -> None:
    assert parse_rate("3/day") == Rate(3, 86_400, "3 per 1 day")
    assert parse_rate("120/minute").amount == 120
    with pytest.raises(ValueError):
        Rate(0, 60)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        # One subscriber usually holds a /64: every address in it is one source.
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("", "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_source_addresses_are_keyed_by_host_and_ipv6_by_its_64(host: str, key: str) -> None:
    assert address_key(host) == key
