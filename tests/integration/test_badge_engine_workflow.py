"""The badge engine inside UserBadgesWorkflow on the time-skipping server: a catalogue loaded from
the database, a 30-day streak lived through in seconds, its award's signed webhook delivered by
a child workflow, and a history that replays."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

from psycopg_pool import AsyncConnectionPool
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from badges.activities.webhooks import make_webhook_client
from badges.config import Settings
from badges.db.catalogue import load_catalogue, save_definition
from badges.db.keys import KeyStore
from badges.db.progress import AwardRow
from badges.db.webhooks import ensure_badge_webhook_secret
from badges.domain.definitions import BadgeSpec
from badges.domain.events import BadgeEvent
from badges.domain.identity import user_badges_workflow_id
from badges.messages.user_badges import UserBadgesInput
from badges.workers.main import build_workers, sandbox_everything
from badges.workflows.user_badges import UserBadgesWorkflow
from badges.workflows.webhook_delivery import WebhookDeliveryWorkflow
from tests.conftest import create_member
from tests.integration.test_webhook_delivery_workflow import receiver
from tests.support import eventually

STREAK_DAYS = 30


async def test_a_30_day_streak_is_lived_through_in_seconds_and_its_award_leaves_by_webhook(
    time_skipping: WorkflowEnvironment,
    settings: Settings,
    engine: AsyncEngine,
    keys: KeyStore,
    pool: AsyncConnectionPool,
    data_converter: DataConverter,
) -> None:
    campaign = uuid.uuid4().hex
    badge_id = f"streak-{campaign[:12]}"
    secret = await ensure_badge_webhook_secret(engine, keys, badge_id)
    assert secret is not None
    member = await create_member(engine, keys)
    task_queue = f"tq-{uuid.uuid4()}"

    async with receiver(secret, [200]) as hooks, make_webhook_client() as http:
        spec = BadgeSpec.model_validate(
            {
                "name": "Thirty days",
                "rule": {"kind": "streak", "eventType": "attendance", "length": STREAK_DAYS,
                         "eventDataMatch": {"campaign": campaign}},
                "config": {"webSocket": {"eventTypes": ["attendance"], "webhookUrl": hooks.url}},
                "reward": {"kind": "points", "points": 30},
            }
        )  # fmt: skip
        await save_definition(engine, badge_id, spec, "test")
        revision, _ = await load_catalogue(engine)
        worker_settings = settings.model_copy(update={"task_queue": task_queue})
        async with build_workers(
            time_skipping.client, worker_settings, pool, engine=engine, keys=keys, http=http, sandboxed=True
        ):
            first_day = date(2026, 1, 1)
            handle = None
            for day in range(STREAK_DAYS):
                local = first_day + timedelta(days=day)
                event = BadgeEvent(
                    id=f"{campaign[:8]}-{day}",
                    type="attendance",
                    event_data={"campaign": campaign},
                    timestamp=datetime(local.year, local.month, local.day, 18, tzinfo=UTC),
                    local_date=local,
                    catalogue_revision=revision,
                )
                handle = await time_skipping.client.start_workflow(
                    UserBadgesWorkflow.run,
                    UserBadgesInput(user_id=member),
                    id=user_badges_workflow_id(member),
                    task_queue=task_queue,
                    start_signal="record_event",
                    start_signal_args=[event],
                )
                await time_skipping.sleep(timedelta(days=1))
            assert handle is not None

            async def awarded() -> bool:
                async with engine.connect() as connection:
                    rows = await connection.execute(
                        select(AwardRow.instance, AwardRow.version).where(
                            AwardRow.user_id == member, AwardRow.badge_id == badge_id
                        )
                    )
                    return rows.all() == [("1", 1)]

            await eventually(awarded, timeout=30.0)
            snapshot = await handle.query(UserBadgesWorkflow.snapshot)
            streak = snapshot.state.badges[badge_id].streak
            assert (streak.current, streak.best) == (STREAK_DAYS, STREAK_DAYS)
            assert snapshot.catalogue_revision == revision

            async def delivered() -> bool:
                return len(hooks.requests) == 1

            await eventually(delivered, timeout=30.0)
            [request] = hooks.requests
            assert request.signature_ok
            body = json.loads(request.body)
            assert (body["type"], body["badgeId"], body["memberId"]) == ("award", badge_id, str(member))
            assert body["reward"] == {"kind": "points", "points": 30}
            child = time_skipping.client.get_workflow_handle_for(
                WebhookDeliveryWorkflow.run, f"user/{member}/webhook/{badge_id}/1"
            )
            assert (await child.result()).status == "delivered"

            history = await handle.fetch_history()
    # The whole month, catalogue load, awards and child start included, replays deterministically.
    await Replayer(
        workflows=[UserBadgesWorkflow, WebhookDeliveryWorkflow], data_converter=data_converter, **sandbox_everything()
    ).replay_workflow(history)
