"""Comparative badges on the time-skipping server, activities stood in for: the release workflow's
award step (after a stored release only; a history recorded before the step still replays), and a
member's badge workflow recording a release's verdicts once however often they are sent, without
disturbing the order of behaviour evaluations."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.common import RetryPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from badges.domain.catalogue import LEGACY_CATALOGUE
from badges.domain.financial import Verdict
from badges.domain.identity import user_badges_workflow_id
from badges.messages.behaviour import FinancialResults
from badges.messages.comparisons import ComparativeAwardsOutcome, ComparativeResults
from badges.messages.peer_stats import ContactsReleaseOutcome, PeerReleaseOutcome, PeerReleaseRequest
from badges.messages.user_badges import CatalogueSnapshot, UserBadgesInput
from badges.workers.main import sandbox_everything
from badges.workflows.peer_stats import PeerStatsReleaseWorkflow
from badges.workflows.user_badges import UserBadgesWorkflow
from tests.support import eventually, top_saver
from tests.workflow.test_user_badges import StandIns, badges_worker


class ReleaseStandIns:
    def __init__(self, status: str = "released") -> None:
        self.status = status
        self.awarded: list[uuid.UUID] = []

    @activity.defn(name="release_peer_stats")
    async def release_peer_stats(self, release_id: uuid.UUID, request: PeerReleaseRequest) -> PeerReleaseOutcome:
        return PeerReleaseOutcome(release_id=release_id, status=self.status, epsilon=1.0, groups=3)  # type: ignore[arg-type]

    @activity.defn(name="award_comparative_badges")
    async def award_comparative_badges(self, release_id: uuid.UUID) -> ComparativeAwardsOutcome:
        self.awarded.append(release_id)
        return ComparativeAwardsOutcome(release_id=release_id, members=1, sent=1)

    @activity.defn(name="release_contact_stats")
    async def release_contact_stats(self, release_id: uuid.UUID, request: PeerReleaseRequest) -> ContactsReleaseOutcome:
        return ContactsReleaseOutcome(release_id=release_id, status="empty")


@workflow.defn(name="PeerStatsReleaseWorkflow")
class ReleaseBeforeAwards:
    """PeerStatsReleaseWorkflow as it was before the award step (main at af29c05)."""

    @workflow.run
    async def run(self, request: PeerReleaseRequest | None = None) -> PeerReleaseOutcome:
        release_id = workflow.uuid4()
        outcome: PeerReleaseOutcome = await workflow.execute_activity(
            "release_peer_stats",
            args=[release_id, request or PeerReleaseRequest()],
            result_type=PeerReleaseOutcome,
            start_to_close_timeout=timedelta(minutes=15),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )
        return outcome


async def run_release(
    env: WorkflowEnvironment, workflow_class: type, stand_ins: ReleaseStandIns
) -> tuple[PeerReleaseOutcome, str]:
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[workflow_class],
        activities=[
            stand_ins.release_peer_stats,
            stand_ins.award_comparative_badges,
            stand_ins.release_contact_stats,
        ],
        # The old workflow lives in this test module, which the sandbox would not import cleanly.
        **(
            sandbox_everything()
            if workflow_class is PeerStatsReleaseWorkflow
            else {"workflow_runner": UnsandboxedWorkflowRunner()}
        ),
    ):
        workflow_id = f"peers/release-{uuid.uuid4()}"
        outcome = await env.client.execute_workflow(
            "PeerStatsReleaseWorkflow", PeerReleaseRequest(), id=workflow_id, task_queue=task_queue,
            result_type=PeerReleaseOutcome,
        )  # fmt: skip
    return outcome, workflow_id


async def test_a_stored_release_is_followed_by_its_award_step(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = ReleaseStandIns()
    outcome, _ = await run_release(workflow_env, PeerStatsReleaseWorkflow, stand_ins)
    assert outcome.status == "released" and stand_ins.awarded == [outcome.release_id]
    refused = ReleaseStandIns("refused")
    await run_release(workflow_env, PeerStatsReleaseWorkflow, refused)
    assert refused.awarded == []  # nothing released, nothing to award on


async def test_a_release_recorded_before_the_award_step_replays(workflow_env: WorkflowEnvironment) -> None:
    stand_ins = ReleaseStandIns()
    _, workflow_id = await run_release(workflow_env, ReleaseBeforeAwards, stand_ins)
    assert stand_ins.awarded == []
    history = await workflow_env.client.get_workflow_handle(workflow_id).fetch_history()
    await Replayer(
        workflows=[PeerStatsReleaseWorkflow], data_converter=pydantic_data_converter, **sandbox_everything()
    ).replay_workflow(history)


TOP_SAVER = top_saver()


async def send_comparative(
    env: WorkflowEnvironment, member: uuid.UUID, task_queue: str, results: ComparativeResults, **input: Any
) -> WorkflowHandle[Any, Any]:
    """As the award step hands a release's verdicts over: signal-with-start."""
    return await env.client.start_workflow(
        UserBadgesWorkflow.run,
        UserBadgesInput(user_id=member, screens_back_dated=True, **input),
        id=user_badges_workflow_id(member),
        task_queue=task_queue,
        start_signal="comparative",
        start_signal_args=[results],
    )


async def test_a_releases_verdict_sent_twice_is_awarded_once_and_behaviour_order_is_kept(
    workflow_env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns(CatalogueSnapshot(revision=1, badges=[*LEGACY_CATALOGUE, TOP_SAVER]))
    member = uuid.uuid4()
    release = uuid.uuid4()
    results = ComparativeResults(
        release_id=release,
        verdicts=[Verdict(badge_id="top-saver", version=1, value=97, target=95, earned=[f"p95-{release}"])],
        catalogue_revision=1,
    )
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        for _ in range(2):  # a retried award step sends it again
            handle = await send_comparative(workflow_env, member, task_queue, results)
        # A behaviour evaluation numbered 1 still counts after the release's verdicts.
        await handle.signal("financial", FinancialResults(seq=1, verdicts=[], catalogue_revision=1))

        async def recorded() -> bool:
            snapshot = await handle.query(UserBadgesWorkflow.snapshot)
            return snapshot.state.financial_seq == 1 and snapshot.pending == 0

        await eventually(recorded)
        snapshot = await handle.query(UserBadgesWorkflow.snapshot)
        assert stand_ins.awards() == [("top-saver", f"p95-{release}")]
        assert list(snapshot.state.badges["top-saver"].awarded) == [f"p95-{release}"]


async def test_a_verdict_on_a_badge_changed_since_the_release_decided_is_recorded_as_dropped(
    workflow_env: WorkflowEnvironment,
) -> None:
    """The release decided on top-saver version 1; before the member's workflow applied it, an
    admin made version 2 (and the workflow loaded it for an event). The verdict is not recorded
    under version 2, and the release's record is told it was dropped, and why."""
    stand_ins = StandIns(CatalogueSnapshot(revision=2, badges=[*LEGACY_CATALOGUE, top_saver(2)]))
    member, release = uuid.uuid4(), uuid.uuid4()
    results = ComparativeResults(
        release_id=release,
        verdicts=[Verdict(badge_id="top-saver", version=1, value=97, target=95, earned=[f"p95-{release}"])],
        catalogue_revision=1,
    )
    async with badges_worker(workflow_env, stand_ins) as task_queue:
        handle = await send_comparative(workflow_env, member, task_queue, results, catalogue=stand_ins.catalogue)

        async def dropped() -> bool:
            return bool(stand_ins.dropped)

        await eventually(dropped)
        assert (await handle.query(UserBadgesWorkflow.snapshot)).state.badges.get("top-saver") is None
    assert stand_ins.awards() == []
    [note] = stand_ins.dropped
    assert (note.user_id, note.release_id) == (member, release)
    assert [award.badge_id for award in note.dropped] == ["top-saver"]
    assert "version 1" in note.dropped[0].reason and "version 2" in note.dropped[0].reason
