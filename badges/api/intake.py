"""Event intake: de-duplicate an event by id, then hand it to the member's workflow.

Shared by every surface events arrive on, so each answers duplicates the same way.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool
from temporalio.service import RPCError

from badges.api.catalogue import CatalogueService
from badges.api.members import MemberDirectory
from badges.api.metrics import ApiMetrics, Channel
from badges.api.problems import Problem
from badges.api.throttle import Throttle, parse_rate, rate_limited
from badges.config import Settings
from badges.db.receipts import SignalledMarks
from badges.domain.events import BadgeEvent, RealTimeEvent
from badges.temporal import Client, record_event, start_member_workflow

Outcome = Literal["accepted", "duplicate"]
# Who vouches for an event: the member's own token (REST, WebSocket) or a signed integration.
EventSource = Literal["member", "integration"]
# How far before its arrival a member's own report may be stamped (an app offline for a while).
MEMBER_BACKDATING = timedelta(hours=1)
STARTED_CACHE_LIMIT = 100_000
log = logging.getLogger("badges.intake")
TEMPORAL_UNREACHABLE = (RPCError, RuntimeError)


def temporal_unreachable(error: Exception) -> bool:
    """An RPC that failed, or a lazy client that could not connect (the SDK raises a RuntimeError)."""
    return isinstance(error, RPCError) or str(error).startswith("Failed client connect")


@contextlib.contextmanager
def temporal_or_503(detail: str) -> Iterator[None]:
    """Answer 503 (`detail` says what to do) when Temporal cannot be reached inside the block."""
    try:
        yield
    except TEMPORAL_UNREACHABLE as error:
        if not temporal_unreachable(error):
            raise
        raise Problem(503, "temporal-unavailable", detail) from error


class EventIntake:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        temporal: Client,
        settings: Settings,
        catalogue: CatalogueService,
        members: MemberDirectory,
        throttle: Throttle,
        metrics: ApiMetrics,
    ) -> None:
        self._temporal = temporal
        self._accepted = metrics.accepted
        self._duplicates = metrics.duplicates
        self._settings = settings
        self._catalogue = catalogue
        self._members = members
        self._max_future = timedelta(seconds=settings.event_max_future_seconds)
        self._max_age = timedelta(hours=settings.event_max_age_hours)
        # Shared by every API process (counted in the receipt's claim, one statement per event on
        # the pool): N replicas still give a member this rate, not N times it. A sliding window of
        # two counters per key, weighing the previous window by how much of it is still in view
        # (`domain/rate_windows.py`).
        self._throttle = throttle
        self._member_rate = parse_rate(settings.member_event_rate)
        self._integration_rate = parse_rate(settings.integration_event_rate)
        self._started: set[uuid.UUID] = set()
        self.signalled = SignalledMarks(pool)

    async def accept(
        self, member_id: uuid.UUID, event: RealTimeEvent, *, source: EventSource, channel: Channel
    ) -> Outcome:
        """`channel`: where it came in (REST, WebSocket, a signed webhook), for the metrics."""
        self._check_source(event, source)
        self._check_timestamp(event)
        now = time.time()
        hit = Throttle.take("member-events", self._member_rate, str(member_id), now)
        # The member's rate limit and the receipt's claim are one statement: one round trip.
        claim = await self.signalled.claim(member_id, event.id, hit)
        if claim.count is not None and not claim.count.allowed:
            decision = Throttle.decide(self._member_rate, now, claim.count)
            raise rate_limited(self._member_rate, "events per member", decision.retry_after)
        if not claim.new and claim.already_signalled:
            self._duplicates[channel].inc()
            return "duplicate"
        received = datetime.now(UTC)
        stamped = event.timestamp
        if source == "member" and stamped < received - MEMBER_BACKDATING:
            # A member's own report may not back-date (only a signed integration back-fills): it
            # counts on the day it arrived, so it cannot complete an earlier day of a streak or window.
            stamped = received
        badge_event = BadgeEvent(
            id=event.id,
            type=event.type,
            event_data=event.event_data,
            timestamp=stamped,
            local_date=stamped.astimezone(ZoneInfo(await self._members.timezone(member_id))).date(),
            catalogue_revision=await self._catalogue.revision(),
            received_at=received,
        )
        # A receipt not yet marked as signalled means an earlier attempt never reached Temporal
        # (or never recorded that it did): hand it over again; the workflow drops repeats by id.
        await self.signal(member_id, badge_event)
        self.signalled.add(member_id, event.id)
        self._accepted[channel].inc()
        return "accepted"

    async def check_integration_rate(self, integration_id: str) -> None:
        await self._throttle.enforce(
            "integration-events", self._integration_rate, integration_id, "events per integration"
        )

    def _check_source(self, event: RealTimeEvent, source: EventSource) -> None:
        """A member's token may report only what happens in the member's own app (calculator use,
        by default); attendance and votes are facts the event system attests by signing them."""
        reported = self._settings.member_reported_event_types
        if source == "member" and event.type not in reported:
            allowed = ", ".join(sorted(reported)) or "no event types"
            raise Problem(
                403,
                "needs-attestation",
                f"{event.type} events are reported by the event system through a signed integration; "
                f"a member's token may report {allowed}.",
            )

    def _check_timestamp(self, event: RealTimeEvent) -> None:
        now = datetime.now(UTC)
        if event.timestamp > now + self._max_future:
            raise Problem(
                422,
                "event-from-the-future",
                f"timestamp {event.timestamp.isoformat()} is more than {self._max_future.seconds} s ahead of "
                "the server's clock.",
            )
        if event.timestamp < now - self._max_age:
            raise Problem(
                422,
                "event-too-old",
                f"timestamp {event.timestamp.isoformat()} is older than {self._max_age.total_seconds() / 3600:g} "
                "hours; events must be reported as they happen.",
            )

    async def start_ahead(self, member_id: uuid.UUID) -> None:
        """Start the member's workflow before their first event (when they open a stream, say),
        so that first event does not also pay for starting it. Best effort: signal-with-start
        still starts it on the first event if this fails."""
        if member_id in self._started:
            return
        try:
            await start_member_workflow(self._temporal, self._settings, member_id, await self._catalogue.snapshot())
        except TEMPORAL_UNREACHABLE as error:
            if not temporal_unreachable(error):
                raise
            log.warning("could not start a member workflow ahead of events", exc_info=True)
            return
        if len(self._started) >= STARTED_CACHE_LIMIT:
            self._started.clear()
        self._started.add(member_id)

    async def signal(self, member_id: uuid.UUID, event: BadgeEvent) -> None:
        # On 503 the receipt stays unmarked, so the client's retry of the same id is handed over.
        with temporal_or_503("Events cannot be accepted right now; retry the same request shortly."):
            await self._start_with_signal(member_id, event)

    async def _start_with_signal(self, member_id: uuid.UUID, event: BadgeEvent) -> None:
        await record_event(self._temporal, self._settings, member_id, event)
