"""Rate-limit arithmetic, pure: which counting window a moment falls in, how much of the previous
window still counts (a sliding window estimated from two counters), and when a refused caller
may try again. The counters themselves are shared by every API process (`db/rate_limits.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `amount` per `period_seconds`; `label` is how people wrote it ("120 per 1 minute")."""

    amount: int
    period_seconds: int
    label: str = ""

    def __post_init__(self) -> None:
        if self.amount < 1 or self.period_seconds < 1:
            raise ValueError(f"a rate needs a positive amount and period, not {self.amount}/{self.period_seconds}s")

    def __str__(self) -> str:
        return self.label or f"{self.amount} per {self.period_seconds} s"


@dataclass(frozen=True, slots=True)
class WindowPosition:
    """Where a moment falls: the window it is in (starting at `start`, Unix seconds) and the weight
    the previous window's count still carries (1 at the window's start, falling to 0 at its end;
    always 0 for a fixed window)."""

    start: int
    previous_weight: float


def window_position(now: float, period_seconds: int, *, sliding: bool = True) -> WindowPosition:
    start = math.floor(now / period_seconds) * period_seconds
    weight = 1.0 - (now - start) / period_seconds if sliding else 0.0
    return WindowPosition(start=start, previous_weight=weight)


def allows(rate: Rate, position: WindowPosition, previous_hits: int, current_hits: int) -> bool:
    """Whether one more hit fits: the previous window's hits, weighted by how much of it is still
    in view, plus this window's, plus this one, within the amount."""
    return previous_hits * position.previous_weight + current_hits + 1 <= rate.amount


def retry_after(rate: Rate, now: float, position: WindowPosition, previous_hits: int, current_hits: int) -> int:
    """Whole seconds (at least 1) until one more hit would fit, for a hit that did not."""
    period = rate.period_seconds
    room = rate.amount - current_hits - 1
    if position.previous_weight > 0 and room >= 0 and previous_hits > 0:
        # This window has room: wait until enough of the previous one has slid out of view.
        at = position.start + period * (1.0 - room / previous_hits)
    elif position.previous_weight > 0 and current_hits > 0:
        # Not before the next window, where this window's hits become the ones sliding out.
        at = position.start + period + period * max(0.0, 1.0 - (rate.amount - 1) / current_hits)
    else:
        at = position.start + period
    return max(1, math.ceil(at - now))
