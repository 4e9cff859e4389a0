"""UserBadgesWorkflow's logic on the time-skipping server, its local activities stood in for:
events become batches of progress and awards, repeats count once, a held burst counts once a
reviewer approves it, a newer catalogue is loaded when an event names it, and the history replays."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from badges.domain.definitions import BadgeDefinition, CountRule, WindowRule
from badges.domain.events import BadgeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.messages.comparisons import DroppedAwards
from badges.messages.user_badges import (
    CatalogueSnapshot,
    DeadLetter,
    HeldEventsPage,
    HeldEventsRequest,
    ProgressBatch,
    ReviewDecision,
    UserBadgesInput,
)
from badges.workers.main import sandbox_everything
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.support import eventually


class StandIns:
    """The workflow's local activities: batches kept in memory (a held event whose id starts with
    `refused` is refused for good, as the database refuses a value), held events handed back one
    per page, dead letters and dropped comparative awards kept, a catalogue handed out."""

    def __init__(self, catalogue: CatalogueSnapshot | None = None) -> None:
        self.batches: list[ProgressBatch] = []
        self.catalogue = catalogue or CatalogueSnapshot()
        self.catalogue_loads = 0
        self.refusals = 0
        self.pages: list[HeldEventsRequest] = []
        self.dead_letters: list[DeadLetter] = []
        self.dropped: list[DroppedAwards] = []

    @activity.defn(name="record_progress")
    async def record_progress(self, batch: ProgressBatch) -> None:
        if any(event.id.startswith("refused") for item in batch.held for event in item.events):
            self.refusals += 1
            raise ApplicationError("record_progress: DataError", "a NUL", type="PermanentFailure", non_retryable=True)
        self.batches.append(batch)

    @activity.defn(name="load_held_events")
    async def load_held_events(self, request: HeldEventsRequest) -> HeldEventsPage:
        self.pages.append(request)
        held = [event for batch in self.batches for item in batch.held if item.review_id == request.review_id
                for event in item.events]  # fmt: skip
        page = held[request.after : request.after + 1]
        return HeldEventsPage(events=page, next_after=request.after + 1 if request.after + 1 < len(held) else None)

    @activity.defn(name="record_dead_letter")
    async def record_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    @activity.defn(name="record_dropped_awards")
    async def record_dropped_awards(self, dropped: DroppedAwards) -> None:
        self.dropped.append(dropped)

    @activity.defn(name="load_catalogue")
    async def load_catalogue(self) -> CatalogueSnapshot:
        self.catalogue_loads += 1
        return self.catalogue

    def progress(self) -> dict[str, int]:
        """Each badge's latest value (a later batch's values win, as in the database)."""
        return {update.badge_id: update.value for batch in self.batches for update in batch.progress}

    def awards(self) -> list[tuple[str, str]]:
        return [(award.badge_id, award.instance) for batch in self.batches for award in batch.awards]


@asynccontextmanager
async def badges_worker(env: WorkflowEnvironment, stand_ins: StandIns) -> AsyncIterator[str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[UserBadgesWorkflow],
        activities=[
            stand_ins.record_progress,
            stand_ins.load_catalogue,
            stand_ins.load_held_events,
            stand_ins.record_dead_letter,
            stand_ins.record_dropped_awards,
        ],
        **sandbox_everything(),
    ):
        yield task_queue


AT = datetime(2026, 11, 25, 10, tzinfo=UTC)


def event(event_id: str, type_: str = "tool_usage", revision: int = 0) -> BadgeEvent:
    return BadgeEvent(id=event_id, type=type_, timestamp=AT, catalogue_revision=revision)  # type: ignore[arg-type]


async def send(env: WorkflowEnvironment, member: uuid.UUID, task_queue: str, *events: BadgeEvent) -> WorkflowHandle:
    """As the API hands events over: signal-with-start, one call per event."""
    handle = None
    for item in events:
        # Stamped as it happens, by the server's clock (which runs ahead of the real one once a
        # test has skipped time): back-dated events have a screen of their own.
        if item.timestamp.tzinfo is not None:  # (a naive one is a test's deliberate fault)
            item = item.model_copy(update={"timestamp": await env.get_current_time()})
        handle = await env.client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
            start_signal="record_event",
            start_signal_args=[item],
        )
    assert handle is not None
    return handle


async def test_events_become_progress_and_one_award(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send(workflow_env, member, task_queue, event("a"), event("b"), event("v", "voting"))

        async def two_and_one() -> bool:
            return stand_ins.progress() == {"calculator-explorer": 2, "active-voter": 1}

        await eventually(two_and_one)
        await send(workflow_env, member, task_queue, event("c"), event("d"))

        async def awarded() -> bool:
            return stand_ins.progress()["calculator-explorer"] == 3

        await eventually(awarded)
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
    assert stand_ins.awards() == [("calculator-explorer", "1")]
    assert all(batch.user_id == member for batch in stand_ins.batches)
    seqs = [batch.batch_seq for batch in stand_ins.batches]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert snapshot.state.badges["calculator-explorer"].count == 3 and snapshot.pending == 0
    assert stand_ins.catalogue_loads == 0  # revision 0: the built-in catalogue


async def test_a_repeated_event_id_is_counted_once(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send(workflow_env, member, task_queue, event("same"), event("same"), event("other"))

        async def counted() -> bool:
            return stand_ins.progress() == {"calculator-explorer": 2}

        await eventually(counted)
        batches = len(stand_ins.batches)
        await send(workflow_env, member, task_queue, event("same"))

        async def seen() -> bool:
            snapshot = await handle.query(UserBadgesWorkflow.snapshot)
            return snapshot.pending == 0 and snapshot.state.recent_event_ids == ["same", "other"]

        await eventually(seen)
    assert len(stand_ins.batches) == batches  # nothing new to record


async def test_a_held_burst_counts_once_a_reviewer_approves_it(workflow_env: WorkflowEnvironment) -> None:
    # Twelve check-ins to earn it; at most ten a minute count at once (the plausibility limit).
    badge = BadgeDefinition(badge_id="twelve", name="Twelve", rule=CountRule(event_type="attendance", target=12))
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        await workflow_env.client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member, catalogue=CatalogueSnapshot(revision=1, badges=[badge])),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
        )
        handle = await send(workflow_env, member, task_queue, *(event(f"in-{n}", "attendance") for n in range(12)))

        async def held() -> bool:
            return sum(len(review.events) for batch in stand_ins.batches for review in batch.held) == 2

        await eventually(held)
        reviews = [review for batch in stand_ins.batches for review in batch.held]
        assert {review.review_id for review in reviews} == {reviews[0].review_id}  # one item per burst
        assert stand_ins.progress() == {"twelve": 10} and stand_ins.awards() == []
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        assert [(item.review_id, item.count, item.events) for item in snapshot.state.held] == [
            (reviews[0].review_id, 2, [])
        ]

        decision = ReviewDecision(
            review_id=reviews[0].review_id,
            approved=True,
            resolved_by="operator",
            events=[held_event for review in reviews for held_event in review.events],
        )
        await handle.signal(UserBadgesWorkflow.resolve_review, decision)

        async def approved() -> bool:
            return stand_ins.awards() == [("twelve", "1")]

        await eventually(approved)
        # Deciding again changes nothing: the item is no longer held.
        await handle.signal(UserBadgesWorkflow.resolve_review, decision)
        batches = len(stand_ins.batches)

        async def applied() -> bool:
            return (await handle.query(UserBadgesWorkflow.snapshot)).state.held == []

        await eventually(applied)
    resolved = [decision for batch in stand_ins.batches for decision in batch.resolved]
    assert [decision.review_id for decision in resolved] == [reviews[0].review_id]
    assert stand_ins.progress() == {"twelve": 12}
    assert len(stand_ins.batches) == batches


async def test_an_event_accepted_under_a_newer_catalogue_loads_it_first(workflow_env: WorkflowEnvironment) -> None:
    badge = BadgeDefinition(badge_id="two-uses", name="Two uses", rule=CountRule(event_type="tool_usage", target=2))
    stand_ins = StandIns(CatalogueSnapshot(revision=7, badges=[badge]))
    member = uuid.uuid4()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send(workflow_env, member, task_queue, event("a", revision=7), event("b", revision=7))

        async def awarded() -> bool:
            return stand_ins.awards() == [("two-uses", "1")]

        await eventually(awarded)
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        history = await handle.fetch_history()
    assert snapshot.catalogue_revision == 7 and stand_ins.catalogue_loads == 1
    assert "calculator-explorer" not in stand_ins.progress()
    # Catalogue load, batches and awards replay deterministically (in the sandbox, as in CI).
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_burst_with_an_event_refused_for_good_sets_only_that_event_aside(
    workflow_env: WorkflowEnvironment,
) -> None:
    badges = [
        BadgeDefinition(badge_id="fifteen", name="Fifteen", rule=CountRule(event_type="attendance", target=15)),
        BadgeDefinition(badge_id="uses", name="Uses", rule=CountRule(event_type="tool_usage", target=3)),
    ]
    stand_ins = StandIns()
    member = uuid.uuid4()
    burst = [event(f"in-{n}", "attendance") for n in range(12)]
    burst.insert(11, event("refused-1", "attendance"))  # held (the eleventh), and refused
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        await workflow_env.client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member, catalogue=CatalogueSnapshot(revision=1, badges=badges)),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
        )
        handle = await send(workflow_env, member, task_queue, *burst)

        async def set_aside() -> bool:
            return len(stand_ins.dead_letters) == 1

        await eventually(set_aside)
        # The member goes on: another event after it counts.
        await send(workflow_env, member, task_queue, event("calc-1"))

        async def counted() -> bool:
            return stand_ins.progress().get("uses") == 1

        await eventually(counted)
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        history = await handle.fetch_history()
    [letter] = stand_ins.dead_letters
    assert [e.id for e in letter.events] == ["refused-1"] and letter.decisions == [] and letter.user_id == member
    assert (letter.reason, letter.detail) == ("record_progress: DataError", "a NUL")
    # Only the refused event was set aside: the rest of its burst is held, the first ten count.
    held_ids = [e.id for batch in stand_ins.batches for item in batch.held for e in item.events]
    assert held_ids == ["in-10", "in-11"]
    assert stand_ins.progress()["fifteen"] == 10
    assert "refused-1" in snapshot.state.recent_event_ids and snapshot.pending == 0
    # Tried once in its batch and once per halving (13 events: at most 4) until it stood alone,
    # then never again.
    assert 1 <= stand_ins.refusals <= 5
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_an_event_the_rules_cannot_apply_is_set_aside(workflow_env: WorkflowEnvironment) -> None:
    # A window rule compares the events' times: a timestamp without a time zone, which intake
    # never lets through, cannot be compared with the member's earlier ones (a TypeError).
    badge = BadgeDefinition(
        badge_id="window", name="Window", rule=WindowRule(event_type="tool_usage", target=5, within_days=7)
    )
    stand_ins = StandIns()
    member = uuid.uuid4()
    naive = BadgeEvent(id="naive", type="tool_usage", timestamp=AT.replace(tzinfo=None))
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        await workflow_env.client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member, catalogue=CatalogueSnapshot(revision=1, badges=[badge])),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
        )
        handle = await send(workflow_env, member, task_queue, event("a"))

        async def first() -> bool:
            return stand_ins.progress().get("window") == 1

        await eventually(first)
        await send(workflow_env, member, task_queue, naive, event("b"))

        async def second() -> bool:
            return stand_ins.progress().get("window") == 2 and len(stand_ins.dead_letters) == 1

        await eventually(second)
        history = await handle.fetch_history()
    [letter] = stand_ins.dead_letters
    assert [e.id for e in letter.events] == ["naive"] and letter.reason == "decide_batch: TypeError"
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_an_approval_names_the_item_and_the_workflow_loads_its_events_in_pages(
    workflow_env: WorkflowEnvironment,
) -> None:
    badge = BadgeDefinition(badge_id="fourteen", name="Fourteen", rule=CountRule(event_type="attendance", target=14))
    stand_ins = StandIns()
    member = uuid.uuid4()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        await workflow_env.client.start_workflow(
            UserBadgesWorkflow.run,
            UserBadgesInput(user_id=member, catalogue=CatalogueSnapshot(revision=1, badges=[badge])),
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
        )
        handle = await send(workflow_env, member, task_queue, *(event(f"in-{n}", "attendance") for n in range(14)))

        async def held() -> bool:
            return sum(len(item.events) for batch in stand_ins.batches for item in batch.held) == 4

        await eventually(held)
        [review_id] = {item.review_id for batch in stand_ins.batches for item in batch.held}
        # As the API sends it: the item's id, no events.
        await handle.signal(
            UserBadgesWorkflow.resolve_review, ReviewDecision(review_id=review_id, approved=True, resolved_by="op")
        )

        async def awarded() -> bool:
            return stand_ins.awards() == [("fourteen", "1")]

        await eventually(awarded)
        history = await handle.fetch_history()
    # One page per event here (the stand-in's pages are that small), each asked after the last.
    assert [page.after for page in stand_ins.pages] == [0, 1, 2, 3]
    assert all(page.review_id == review_id and page.user_id == member for page in stand_ins.pages)
    [resolved] = [decision for batch in stand_ins.batches for decision in batch.resolved]
    assert resolved.review_id == review_id and resolved.events == []  # closing it needs no events
    assert stand_ins.progress()["fourteen"] == 14
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def back_dated_check_ins(
    env: WorkflowEnvironment, member: uuid.UUID, task_queue: str, start: UserBadgesInput
) -> WorkflowHandle:
    """A calculator use, then five check-ins stamped days before they arrive, each handed over
    with `start` as its signal-with-start input."""
    now = await env.get_current_time()
    events = [BadgeEvent(id="t1", type="tool_usage", timestamp=now, received_at=now)]  # type: ignore[arg-type]
    events += [
        BadgeEvent(id=f"a{n}", type="attendance", timestamp=now - timedelta(days=7 - n), received_at=now)  # type: ignore[arg-type]
        for n in range(5)
    ]
    handle = None
    for item in events:
        handle = await env.client.start_workflow(
            UserBadgesWorkflow.run,
            start,
            id=user_badges_workflow_id(member),
            task_queue=task_queue,
            start_signal="record_event",
            start_signal_args=[item],
        )
    assert handle is not None
    return handle


@pytest.mark.parametrize(("screens_back_dated", "marked"), [(True, False), (False, True)])
async def test_a_run_started_as_the_api_starts_it_screens_back_dated_events_without_a_patch_marker(
    workflow_env: WorkflowEnvironment, screens_back_dated: bool, marked: bool
) -> None:
    # Asking `workflow.patched` on a run's first batch records a marker and an upsert of Temporal's
    # TemporalChangeVersion search attribute: a crowd of new members' first events queued behind
    # those. A run started by today's code says in its input that it screens, and asks nothing;
    # one started as before (the flag unset) asks, as it always did.
    start = UserBadgesInput(user_id=uuid.uuid4(), screens_back_dated=screens_back_dated)
    stand_ins = StandIns()
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await back_dated_check_ins(workflow_env, start.user_id, task_queue, start)

        def held() -> int:
            return sum(len(item.events) for batch in stand_ins.batches for item in batch.held)

        async def screened() -> bool:
            return held() == 3 and "calculator-explorer" in stand_ins.progress()

        await eventually(screened)
        history = await handle.fetch_history()
    kinds = {event.WhichOneof("attributes") for event in history.events}
    assert ("upsert_workflow_search_attributes_event_attributes" in kinds) is marked
    patch_markers = [event for event in history.events if event.HasField("marker_recorded_event_attributes")
                     and event.marker_recorded_event_attributes.marker_name == "core_patch"]  # fmt: skip
    assert bool(patch_markers) is marked
    # Screened either way: two back-dated check-ins count, three are held for review (in one item,
    # or two when the check-ins come in two workflow tasks).
    assert stand_ins.progress()["regular-attendee"] == 2 and held() == 3
