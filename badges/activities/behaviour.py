"""`evaluate_behaviour`: one evaluation of a member's financial behaviour (BehaviourWorkflow).

Reads the member's categorised bank data, their goals and what reviewers decided about patterns
found before, computes their whole picture (monthly figures in their time zone, income, recurring
payments, health score, prediction, data quality, each goal's progress), puts savings round trips
on the review queue (once each), keeps the picture sealed for the dashboard, records goals newly
reached, decides every bank-data badge, and hands the verdicts to the member's badge workflow,
which records progress and awards once. Nothing without `behaviour_tracking` consent.

And `behaviour_data_changed`: a sync's note that a member's bank data changed, passed on to their
behaviour workflow when they consent (starting it: the backfill).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.config import Settings
from badges.db.catalogue import load_catalogue
from badges.db.consents import has_consent
from badges.db.goals import GoalRecord, mark_reached, member_goals
from badges.db.insights import (
    BehaviourInputs,
    TransactionRow,
    behaviour_inputs,
    given_notices,
    publish_insights,
    store_insights,
)
from badges.db.keys import KeyStore
from badges.db.members import load_demographics
from badges.db.peers import save_peer_inputs
from badges.db.reviews import FinancialPattern, cleared_patterns, record_patterns
from badges.domain.categories import CONFIDENT, SpendingCategory, from_provider
from badges.domain.definitions import BadgeDefinition, DataScope
from badges.domain.figures import Entry, account_kind
from badges.domain.financial import Verdict, decide
from badges.domain.goals import Goal
from badges.domain.peers import peer_input
from badges.domain.quality import AccountState, Record
from badges.insights.notices import fresh, notices
from badges.insights.picture import WATCHED, Picture, member_picture
from badges.insights.round_trips import RoundTrip
from badges.messages.bank_sync import PROVIDER_PAUSED
from badges.messages.behaviour import DataChanged, EvaluationOutcome, EvaluationRequest, FinancialResults
from badges.temporal import Client, behaviour_data_changed, record_financial_results, stop_behaviour

log = logging.getLogger("badges.behaviour")
SCOPE = "behaviour_tracking"
PEERS = "peer_comparison"
# Each member's windows close this much after midnight (their own, stable, spread over 6 hours),
# so a million members' month ends are not one burst of evaluations.
JITTER_SECONDS = 6 * 3600
CATEGORIES = {category.value: category for category in SpendingCategory}  # a dict: faster than the enum's call
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BehaviourActivities:
    def __init__(
        self, pool: AsyncConnectionPool, engine: AsyncEngine, keys: KeyStore, temporal: Client, settings: Settings
    ) -> None:
        self._pool = pool
        self._engine = engine
        self._keys = keys
        self._temporal = temporal
        self._settings = settings

    @activity.defn
    async def evaluate_behaviour(self, request: EvaluationRequest) -> EvaluationOutcome:
        wall = datetime.now(UTC)
        # The moment the evaluation answers for: the workflow's clock, which decides the member's
        # "today" (so which windows have closed) and is the time-skipping server's in tests.
        as_of = request.as_of or wall
        # The consent must hold at that moment and at this one, when the data are read: an
        # evaluation retried after the consent lapsed reads nothing, nor does one answering for
        # a moment after it lapsed.
        if not await has_consent(self._pool, request.user_id, SCOPE, max(as_of, wall)):
            return EvaluationOutcome(evaluated=False)
        inputs = await behaviour_inputs(self._pool, request.user_id)
        zone = ZoneInfo(inputs.timezone)
        today = as_of.astimezone(zone).date()
        goals = [goal_of(record, zone) for record in await member_goals(self._pool, self._keys, request.user_id)]
        cleared = await cleared_patterns(self._pool, request.user_id)
        # The numbers are CPU work: off the event loop, so heartbeats and other activities go on.
        # A sync's time is stamped by the database's clock: its staleness is measured on the wall's.
        picture = await asyncio.to_thread(picture_of, inputs, today, wall, goals, cleared)
        # Once each (a retry or a later evaluation finding it again adds nothing).
        await record_patterns(self._pool, self._keys, request.user_id, [pattern_of(t) for t in picture.for_review])
        revision, catalogue = await load_catalogue(self._engine)
        verdicts = await scoped_verdicts(catalogue, picture, inputs, today, wall, goals, cleared)
        found = notices(picture, verdicts, {badge.badge_id: badge.name for badge in catalogue})
        # What the previous evaluation told the member, known by digest: nothing of it is opened.
        given = await given_notices(self._pool, self._keys, request.user_id)
        digests = await self._keys.digests(str(request.user_id), [notice["key"] for notice in found])
        document = {**picture.document(), "notices": found}
        order = evaluation_order(request)
        if await store_insights(self._pool, self._keys, request.user_id, order, as_of, document, digests):
            await self._keep_peer_inputs(request.user_id, order, as_of, document)
            news = [
                {"type": notice["kind"], **{k: v for k, v in notice.items() if k != "kind"}}
                for notice in fresh(found, digests, given)
            ]
            await publish_insights(self._pool, request.user_id, news)
        # Before the verdicts go: a goal's badge is never awarded for a goal not recorded reached.
        reached = [uuid.UUID(p.goal.goal_id) for p in picture.goals if p.newly_reached]
        await mark_reached(self._pool, request.user_id, reached, as_of)
        results = FinancialResults(seq=order, verdicts=verdicts, catalogue_revision=revision)
        await record_financial_results(self._temporal, self._settings, request.user_id, results)
        return EvaluationOutcome(
            evaluated=True, verdicts=len(verdicts), next_window_close=next_window_close(request.user_id, today, zone)
        )

    async def _keep_peer_inputs(
        self, user_id: uuid.UUID, order: int, as_of: datetime, document: dict[str, Any]
    ) -> None:
        """With `peer_comparison` consent, what the next peer-statistics release reads about the
        member: this evaluation's figures and the groups their demographics put them in."""
        if not await has_consent(self._pool, user_id, PEERS, datetime.now(UTC)):
            return
        demographics = await load_demographics(self._engine, self._keys, user_id)
        found = peer_input(document, demographics)
        await save_peer_inputs(self._pool, user_id, order, as_of, found)

    @activity.defn
    async def behaviour_data_changed(self, user_id: uuid.UUID, change: DataChanged) -> bool:
        """Pass a sync's change on to the member's behaviour workflow; False (nothing sent)
        without their consent."""
        if not await has_consent(self._pool, user_id, SCOPE, datetime.now(UTC)):
            return False
        await behaviour_data_changed(self._temporal, self._settings, user_id, change)
        return True

    @activity.defn
    async def stop_member_behaviour(self, user_id: uuid.UUID) -> bool:
        """The member's `behaviour_tracking` consent ended: their evaluation stops (the consent's
        record deletes what it derived). False when none was running."""
        return await stop_behaviour(self._temporal, user_id)


def evaluation_order(request: EvaluationRequest) -> int:
    """Where an evaluation's findings stand among the member's (`FinancialResults.seq`, the kept
    insights' `seq`): by the moment it answers for (the workflow's clock, in microseconds), then by
    its number in its run. A later run of the behaviour workflow (consent granted again) numbers
    its evaluations from 1 again and must not be taken for stale; a retried activity answers for
    the same moment as its first attempt, and is."""
    if request.as_of is None:
        return request.seq  # requested before evaluations carried the workflow's clock
    micros = (request.as_of - EPOCH) // timedelta(microseconds=1)
    return micros * 1000 + request.seq % 1000


def goal_of(record: GoalRecord, zone: ZoneInfo) -> Goal:
    """A stored goal in the member's own dates."""
    return Goal(
        goal_id=str(record.goal_id),
        kind=record.kind,
        name=record.name,
        created_on=record.created_at.astimezone(zone).date(),
        reached_on=record.reached_at.astimezone(zone).date() if record.reached_at else None,
        target_minor=record.target_minor,
        deadline=record.deadline,
        category=record.category,
        limit_minor=record.limit_minor,
    )


async def scoped_verdicts(
    catalogue: Sequence[BadgeDefinition],
    picture: Picture,
    inputs: BehaviourInputs,
    today: date,
    now: datetime,
    goals: Sequence[Goal],
    cleared: Collection[str],
) -> list[Verdict]:
    """Every badge decided on the data it reads: most read everything (the member's picture); a
    badge whose `openBanking` narrows providers, account types or categories is decided on a
    picture of that part alone (one per distinct scope)."""
    by_scope: dict[DataScope | None, list[BadgeDefinition]] = {}
    for badge in catalogue:
        scope = badge.config.open_banking.scope if badge.config.open_banking else None
        by_scope.setdefault(scope, []).append(badge)
    verdicts: list[Verdict] = []
    for scope, badges in by_scope.items():
        scoped = picture
        if scope is not None:
            scoped = await asyncio.to_thread(picture_of, inputs, today, now, goals, cleared, scope)
        verdicts += decide(badges, scoped.snapshot)
    order = {badge.badge_id: index for index, badge in enumerate(catalogue)}
    return sorted(verdicts, key=lambda verdict: order[verdict.badge_id])


def picture_of(
    inputs: BehaviourInputs,
    today: date,
    now: datetime,
    goals: Sequence[Goal] = (),
    cleared: Collection[str] = (),
    scope: DataScope | None = None,
) -> Picture:
    """The member's picture from their stored data; with `scope`, of only the transactions a badge
    reads (its providers, account types and categories: `OpenBankingConfig`)."""
    kinds = {account.account_id: account_kind(account.type, account.subtype) for account in inputs.accounts}
    providers = {account.account_id: account.provider for account in inputs.accounts}
    entries = []
    records = []
    # Harmful spending the provider is sure of, which the member re-labelled: avoidance badges
    # still see it (a correction may fix a category, never wash a bet).
    harm_days: dict[str, list[date]] = {}
    # Positional arguments: a member's whole history goes through this loop at every evaluation.
    for row in inputs.transactions:
        category = CATEGORIES[row.category] if row.category else None
        confidence = row.confidence if row.confidence is not None else 0.0
        records.append(
            Record(row.transaction_id, row.account_id, row.day, row.amount_minor, "", category, confidence, row.pending)
        )
        if category is None or row.pending or row.day > today:
            continue
        kind = kinds.get(row.account_id, "current")
        if scope is not None and not scope.admits(providers.get(row.account_id, ""), kind, category.value):
            continue
        if row.source == "member" and (harm := confident_harm(row)) is not None and harm != category:
            harm_days.setdefault(harm, []).append(row.day)
        merchant = row.merchant_key.hex() if row.merchant_key else ""
        entries.append(Entry(row.day, row.amount_minor, category, kind, merchant, row.account_id, row.transaction_id))
    accounts = [
        AccountState(account_id=a.account_id, kind=kinds[a.account_id], balance_minor=a.balance_minor)
        for a in inputs.accounts
    ]
    synced = [c.last_synced_at for c in inputs.connections if c.last_synced_at is not None]
    # Data are as fresh as the stalest connection that is meant to be syncing.
    last_synced = min(synced) if synced else None
    # A connection paused by its provider's breaker: what is missing may yet arrive, so nothing is decided on it.
    delayed = any(c.status == "degraded" and c.last_error == PROVIDER_PAUSED for c in inputs.connections)
    return member_picture(entries, records, accounts, last_synced, today, now, goals, harm_days, cleared, delayed)


def pattern_of(trip: RoundTrip) -> FinancialPattern:
    """A savings round trip as the review queue holds it."""
    return FinancialPattern(
        pattern="savings_round_trip",
        key=trip.key,
        reason=trip.summary(),
        detail=trip.detail(),
        transactions=len(trip.deposits) + 1,
    )


def next_window_close(user_id: uuid.UUID, today: date, zone: ZoneInfo) -> datetime:
    """The start of the member's next month (the shortest tracking window), in their time zone,
    plus their own jitter."""
    first = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    jitter = int.from_bytes(hashlib.sha256(user_id.bytes).digest()[:4], "big") % JITTER_SECONDS
    return datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC) + timedelta(seconds=jitter)


def confident_harm(row: TransactionRow) -> str | None:
    """The harm avoidance badges watch (gambling, fast food) that the provider is sure this
    transaction is, whatever the member says; None when it is not one."""
    found = from_provider(row.provider_detailed, row.provider_primary, row.provider_level, row.mcc)
    if found is not None and found.category.value in WATCHED and found.confidence >= CONFIDENT:
        return found.category.value
    return None
