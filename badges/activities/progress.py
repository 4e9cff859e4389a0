"""The member workflow's writes and reads of the world: `record_progress` writes what a batch
decided (progress, awards and outbox rows, the rewards those awards carry, the review items for
held bursts) in one transaction; `load_held_events` hands a decided review item's events back a
page at a time; `record_dead_letter` sets aside what could not be applied; `record_dropped_awards`
notes on a release's awards (`peer_awards`) those the workflow could not record.

A failure that no retry can mend (the database refuses a value, stored data does not open or
parse) is a non-retryable `ApplicationError`, so the workflow sets the work aside instead of
retrying it forever and stalling the member."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import psycopg
from cryptography.exceptions import InvalidTag
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.exceptions import ApplicationError

from badges.db.dead_letters import record_dead_letter
from badges.db.keys import KeyStore, KeyUnavailableError
from badges.db.peer_awards import drop_peer_awards
from badges.db.progress import ProgressWriter
from badges.db.reviews import HeldEvents, Resolution, held_events_page
from badges.db.rewards import RewardClaim
from badges.domain.definitions import MoneyReward
from badges.domain.events import BadgeEvent
from badges.domain.rules import Award
from badges.messages.comparisons import DroppedAwards
from badges.messages.user_badges import DeadLetter, HeldEventsPage, HeldEventsRequest, ProgressBatch

log = logging.getLogger("badges.activities.progress")

# What no retry mends: a value the database refuses (SQLSTATE classes 22 data exception, 23
# integrity constraint, 54 program limit; psycopg refuses a NUL in text itself, as DataError),
# and a value that cannot be encoded or parsed (ValueError: UnicodeEncodeError, pydantic's
# ValidationError, json's errors). A lost connection, a serialization failure or a database
# that is down is retried until it heals, as before.
PERMANENT = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded, ValueError, InvalidTag)


def refused(step: str, error: Exception) -> ApplicationError:
    """The non-retryable failure for a permanent error: its message names the step, the error's
    type and SQLSTATE and never the data (it becomes a dead letter's reason, stored plain); the
    error's own text, which may quote data, rides as a detail (sealed like every payload)."""
    sqlstate = getattr(error, "sqlstate", None)
    summary = f"{step}: {type(error).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
    return ApplicationError(summary, str(error), type="PermanentFailure", non_retryable=True)


def reward_claims(awards: list[Award], decided_at: datetime | None = None) -> list[RewardClaim]:
    claims = []
    for award in awards:
        reward = award.reward
        if reward is None:
            continue
        claims.append(
            RewardClaim(
                badge_id=award.badge_id,
                instance=award.instance,
                version=award.version,
                kind=reward.kind,
                amount=reward.amount_minor if isinstance(reward, MoneyReward) else reward.points,
                currency=reward.currency if isinstance(reward, MoneyReward) else "",
                awarded_at=decided_at or award.awarded_at,
            )
        )
    return claims


class ProgressActivities:
    def __init__(self, pool: AsyncConnectionPool, keys: KeyStore, writer: ProgressWriter | None = None) -> None:
        self._pool = pool
        self._keys = keys
        # One per worker process: batches that arrive together share a transaction.
        self._writer = writer or ProgressWriter(pool)

    @activity.defn
    async def record_progress(self, batch: ProgressBatch) -> None:
        """Apply one batch, whole or not at all. Every step is idempotent, so a retry after any
        transient failure completes it without writing anything twice: awards and rewards are
        unique per (member, badge, instance), held events per (review item, event id)."""
        owner = str(batch.user_id)
        try:
            held = [
                HeldEvents(
                    review_id=item.review_id,
                    event_type=item.event_type,
                    reason=item.reason,
                    events=[
                        (event.id, await self._keys.seal(owner, event.model_dump_json().encode()))
                        for event in item.events
                    ],
                )
                for item in batch.held
            ]
            await self._writer.write(
                batch.user_id,
                batch.batch_seq,
                batch.progress,
                batch.awards,
                reward_claims(batch.awards, batch.decided_at),
                held,
                [Resolution(d.review_id, d.approved, d.resolved_by) for d in batch.resolved],
                events=batch.events,
            )
        except PERMANENT as error:
            raise refused("record_progress", error) from error

    @activity.defn
    async def load_held_events(self, request: HeldEventsRequest) -> HeldEventsPage:
        """A bounded page of a review item's held events, in the order they were held."""
        try:
            page = await held_events_page(
                self._pool,
                self._keys,
                request.user_id,
                request.review_id,
                request.after,
                request.max_events,
                request.max_bytes,
            )
            events = [BadgeEvent.model_validate_json(text) for text in page.events]
        except PERMANENT as error:
            raise refused("load_held_events", error) from error
        return HeldEventsPage(events=events, next_after=page.next_after)

    @activity.defn
    async def record_dead_letter(self, letter: DeadLetter) -> None:
        """Set aside what the member's workflow could not apply, sealed with the member's key.
        Only a database that cannot be reached is retried; a member erased meanwhile (no key, no
        member row) leaves nothing to keep: their data is meant to be gone."""
        kind = "decision" if letter.decisions else "event" if letter.events else "reevaluation"
        event_ids = [event.id for event in letter.events] + [
            event.id for decision in letter.decisions for event in decision.events
        ]
        # ASCII JSON: whatever the payload holds (a lone surrogate), it encodes.
        payload = json.dumps(letter.model_dump(mode="json", exclude={"user_id"}), ensure_ascii=True).encode()
        try:
            sealed = await self._keys.seal(str(letter.user_id), payload)
            letter_id = await record_dead_letter(
                self._pool,
                letter.user_id,
                kind,
                letter.reason,
                event_ids,
                letter.decisions[0].review_id if letter.decisions else None,
                sealed,
            )
        except (KeyUnavailableError, psycopg.errors.ForeignKeyViolation):
            log.warning("dead letter of erased member %s not kept: %s", letter.user_id, letter.reason)
            return
        log.warning("dead letter %d for member %s (%s): %s", letter_id, letter.user_id, kind, letter.reason)

    @activity.defn
    async def record_dropped_awards(self, dropped: DroppedAwards) -> None:
        """Mark the release's awards the member's workflow could not record as dropped, with
        why, so the release's record does not show them delivered. A row gone with its member
        (erased) is nothing to mark."""
        await drop_peer_awards(
            self._pool,
            dropped.release_id,
            [(dropped.user_id, award.badge_id, award.reason) for award in dropped.dropped],
            datetime.now(UTC),
        )
