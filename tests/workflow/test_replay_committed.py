"""Replays histories recorded by earlier versions of UserBadgesWorkflow and ConsentWorkflow and
committed here.

`user_badges_review.json` was recorded with UserBadgesWorkflow as it was at commit f3b2812, before
review items were bounded, approvals paged and unappliable work set aside: a burst held for review
and approved with its events in the signal; `user_badges_refused.json`, with the same code, a
write refused for good, which then failed the workflow.

`user_badges_screened.json` was recorded with UserBadgesWorkflow as it was at commit dd29e78,
which asked `workflow.patched("screen-back-dated-events")` on every run's first batch (a patch
marker, and Temporal's `TemporalChangeVersion` search attribute upserted): a calculator use, then
five check-ins stamped days before they arrived, three of them held by the back-dated screen.

`consent.json` was recorded with ConsentWorkflow as it was before the `change` update existed
(commit 86c71be: grants and revocations by signal, a reminder, an expiry that disconnects the
member's banks first), its activities stood in for: members' consent workflows live for years,
so those that started then must go on under the code of today.

A change to the workflow that would break members' running workflows fails this test. After a
deliberate, versioned change, record a new history with `BADGES_RECORD_HISTORY=1 pytest -k record`.
Recorded with the plain pydantic converter (no encryption), so it needs no keys to read, and with
the activities stood in for (their results are not part of this history's commands).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from badges.domain.catalogue import LEGACY_CATALOGUE
from badges.domain.events import BadgeEvent
from badges.domain.financial import Verdict
from badges.domain.identity import user_badges_workflow_id
from badges.messages.comparisons import ComparativeResults
from badges.messages.user_badges import CatalogueSnapshot
from badges.workers.main import sandbox_everything
from badges.workflows.consent import ConsentWorkflow
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.support import eventually, top_saver
from tests.workflow.test_comparative_awards import send_comparative
from tests.workflow.test_user_badges import StandIns, badges_worker, send

HISTORY = Path(__file__).parent / "histories" / "user_badges.json"
WORKFLOW_ID_FILE = HISTORY.with_suffix(".id")


async def test_the_committed_history_still_replays() -> None:
    history = WorkflowHistory.from_json(WORKFLOW_ID_FILE.read_text().strip(), HISTORY.read_text())
    assert len(history.events) > 10
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_review_history_from_before_bounded_items_and_paged_approvals_still_replays() -> None:
    # Recorded with the workflow of commit f3b2812: fourteen check-ins, four held for review in one
    # item, approved with every held event in the signal, then a calculator use. Today's workflow
    # bounds review items, loads an approval's events in pages and sets aside work it cannot
    # apply; each of those changes is gated (`workflow.patched`), so this member goes on as it ran.
    review = HISTORY.with_name("user_badges_review.json")
    history = WorkflowHistory.from_json(review.with_suffix(".id").read_text().strip(), review.read_text())
    signals = [event for event in history.events if event.HasField("workflow_execution_signaled_event_attributes")]
    assert [event.workflow_execution_signaled_event_attributes.signal_name for event in signals].count(
        "resolve_review"
    ) == 1
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_history_where_a_write_failed_for_good_before_dead_letters_still_replays() -> None:
    # Recorded with the workflow of commit f3b2812 and a `record_progress` stand-in that refused
    # a held burst for good (non-retryable): that workflow failed. Today's sets such work aside
    # instead; the gate (`workflow.patched("dead-letters")`) keeps the old run failing on replay.
    refused = HISTORY.with_name("user_badges_refused.json")
    history = WorkflowHistory.from_json(refused.with_suffix(".id").read_text().strip(), refused.read_text())
    assert history.events[-1].HasField("workflow_execution_failed_event_attributes")
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_history_that_asked_for_the_back_dated_screen_by_patch_still_replays() -> None:
    # Runs started since record whether they screen back-dated events in their input, and ask no
    # patch; the runs started before asked on their first batch, and go on asking.
    screened = HISTORY.with_name("user_badges_screened.json")
    history = WorkflowHistory.from_json(screened.with_suffix(".id").read_text().strip(), screened.read_text())
    kinds = [event.WhichOneof("attributes") for event in history.events]
    assert "marker_recorded_event_attributes" in kinds and "upsert_workflow_search_attributes_event_attributes" in kinds
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_consent_history_from_before_the_update_still_replays() -> None:
    consent = HISTORY.with_name("consent.json")
    history = WorkflowHistory.from_json(consent.with_suffix(".id").read_text().strip(), consent.read_text())
    assert len(history.events) > 30
    await Replayer(
        workflows=[ConsentWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


@pytest.mark.skipif(not os.environ.get("BADGES_RECORD_HISTORY"), reason="set BADGES_RECORD_HISTORY=1 to re-record")
async def test_record_history(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    member = uuid.uuid4()
    start = datetime(2026, 11, 25, 9, tzinfo=UTC)
    events = [("a1", "attendance"), ("v1", "voting"), ("a1", "attendance"), ("a2", "attendance"), ("a3", "attendance")]
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send(
            workflow_env,
            member,
            task_queue,
            *(
                BadgeEvent(id=event_id, type=type_, timestamp=start + timedelta(minutes=n))  # type: ignore[arg-type]
                for n, (event_id, type_) in enumerate(events)
            ),
        )

        async def done() -> bool:
            return stand_ins.progress() == {"regular-attendee": 3, "active-voter": 1}

        await eventually(done)
        history = await handle.fetch_history()
    HISTORY.write_text(history.to_json())
    WORKFLOW_ID_FILE.write_text(user_badges_workflow_id(member) + "\n")


COMPARATIVE = HISTORY.with_name("user_badges_comparative.json")


async def test_a_comparative_history_from_before_dropped_verdicts_were_recorded_still_replays() -> None:
    # Recorded with the workflow of commit 155e8c4: a release's verdict on top-saver version 1
    # awarded; an event under a catalogue where top-saver is at version 2; then another release's
    # verdict on version 1, which that workflow dropped without a word. Today's records the drop
    # (a local activity, gated by `workflow.patched`), so this member goes on as it ran.
    history = WorkflowHistory.from_json(COMPARATIVE.with_suffix(".id").read_text().strip(), COMPARATIVE.read_text())
    signals = [event for event in history.events if event.HasField("workflow_execution_signaled_event_attributes")]
    assert [event.workflow_execution_signaled_event_attributes.signal_name for event in signals].count(
        "comparative"
    ) == 2
    await Replayer(
        workflows=[UserBadgesWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


@pytest.mark.skipif(not os.environ.get("BADGES_RECORD_HISTORY"), reason="set BADGES_RECORD_HISTORY=1 to re-record")
async def test_record_comparative_history(workflow_env: WorkflowEnvironment) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    stand_ins = StandIns(CatalogueSnapshot(revision=1, badges=[*LEGACY_CATALOGUE, top_saver(1)]))
    member = uuid.uuid4()

    def verdicts(release: uuid.UUID) -> ComparativeResults:
        earned = [f"p95-{release}"]
        return ComparativeResults(
            release_id=release,
            verdicts=[Verdict(badge_id="top-saver", version=1, value=97, target=95, earned=earned)],
            catalogue_revision=1,
        )

    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send_comparative(workflow_env, member, task_queue, verdicts(first))
        await eventually(lambda: _has(stand_ins, 1))
        stand_ins.catalogue = CatalogueSnapshot(revision=2, badges=[*LEGACY_CATALOGUE, top_saver(2)])
        at = datetime(2026, 11, 25, 9, tzinfo=UTC)
        await send(
            workflow_env, member, task_queue, BadgeEvent(id="t1", type="tool_usage", timestamp=at, catalogue_revision=2)
        )
        await eventually(lambda: _has(stand_ins, 2))
        await handle.signal("comparative", verdicts(second))

        async def applied() -> bool:
            events = [event async for event in handle.fetch_history_events()]
            last_signal = max(
                i for i, e in enumerate(events) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
            )
            return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in events[last_signal:])

        await eventually(applied)
        history = await handle.fetch_history()
    assert stand_ins.awards() == [("top-saver", f"p95-{first}")]
    COMPARATIVE.write_text(history.to_json())
    COMPARATIVE.with_suffix(".id").write_text(user_badges_workflow_id(member) + "\n")


async def _has(stand_ins: StandIns, batches: int) -> bool:
    return len(stand_ins.batches) >= batches
