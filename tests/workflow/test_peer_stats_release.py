"""PeerStatsReleaseWorkflow's contacts step: a release runs the contacts release after the main
one, with an id of its own; and a release recorded before the step existed still replays.

`histories/peer_stats_release.json` was recorded with PeerStatsReleaseWorkflow as it was at commit
af29c05 (one activity, `release_peer_stats`, stood in for), with the plain pydantic converter."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from badges.messages.comparisons import ComparativeAwardsOutcome
from badges.messages.peer_stats import ContactsReleaseOutcome, PeerReleaseOutcome, PeerReleaseRequest
from badges.workers.main import sandbox_everything
from badges.workflows.peer_stats import PeerStatsReleaseWorkflow

HISTORY = Path(__file__).parent / "histories" / "peer_stats_release.json"


async def test_a_release_recorded_before_the_contacts_step_still_replays() -> None:
    history = WorkflowHistory.from_json(HISTORY.with_suffix(".id").read_text().strip(), HISTORY.read_text())
    scheduled = [e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert [e.activity_task_scheduled_event_attributes.activity_type.name for e in scheduled] == ["release_peer_stats"]
    await Replayer(
        workflows=[PeerStatsReleaseWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


async def test_a_release_runs_the_contacts_release_after_the_main_one(workflow_env: WorkflowEnvironment) -> None:
    ran: list[tuple[str, uuid.UUID]] = []

    @activity.defn(name="release_peer_stats")
    async def release(release_id: uuid.UUID, request: PeerReleaseRequest) -> PeerReleaseOutcome:
        ran.append(("main", release_id))
        return PeerReleaseOutcome(release_id=release_id, status="released", epsilon=1.0, groups=3)

    @activity.defn(name="release_contact_stats")
    async def contacts(release_id: uuid.UUID, request: PeerReleaseRequest) -> ContactsReleaseOutcome:
        ran.append(("contacts", release_id))
        return ContactsReleaseOutcome(release_id=release_id, status="futile", reason="too few", suppressed=4)

    @activity.defn(name="award_comparative_badges")
    async def awards(release_id: uuid.UUID) -> ComparativeAwardsOutcome:
        ran.append(("awards", release_id))
        return ComparativeAwardsOutcome(release_id=release_id, members=0, sent=0)

    queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        workflow_env.client,
        task_queue=queue,
        workflows=[PeerStatsReleaseWorkflow],
        activities=[release, contacts, awards],
        **sandbox_everything(),
    ):
        outcome = await workflow_env.client.execute_workflow(
            PeerStatsReleaseWorkflow.run,
            PeerReleaseRequest(requested_by="operator"),
            id=f"peers/release-{uuid.uuid4()}",
            task_queue=queue,
            result_type=PeerReleaseOutcome,
        )
    # The main release, its awards (of that release), then the contacts release with an id of its own.
    assert [step for step, _ in ran] == ["main", "awards", "contacts"]
    assert ran[1][1] == ran[0][1] and ran[2][1] != ran[0][1]
    assert outcome.status == "released" and outcome.contacts is not None
    assert outcome.contacts.status == "futile" and outcome.contacts.release_id == ran[2][1]
