"""Workflow-id ownership and settings parsing: pure."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from badges.config import Settings, parse_audit_anchor_keys, parse_master_keys
from badges.domain.events import RealTimeEvent
from badges.domain.identity import SERVICE_OWNER, key_owner_for_workflow, user_badges_workflow_id
from badges.workers.main import worker_pool_size


def test_member_workflows_belong_to_the_member_and_others_to_the_service() -> None:
    member = uuid.uuid4()
    assert key_owner_for_workflow(user_badges_workflow_id(member)) == str(member)
    assert key_owner_for_workflow(f"user/{member}/consent") == str(member)
    assert key_owner_for_workflow("user/not-a-uuid/badges") == SERVICE_OWNER
    assert key_owner_for_workflow("peer-stats/2026-11") == SERVICE_OWNER
    assert key_owner_for_workflow(None) == SERVICE_OWNER


def test_master_keys_parse_in_order_and_refuse_bad_input() -> None:
    key = base64.b64encode(b"k" * 32).decode()
    assert parse_master_keys(f"new:{key}, old:{key}") == [("new", b"k" * 32), ("old", b"k" * 32)]
    with pytest.raises(ValueError, match="32 bytes"):
        parse_master_keys("short:" + base64.b64encode(b"k" * 16).decode())
    with pytest.raises(ValueError, match="id:base64key"):
        parse_master_keys(key)


def test_audit_anchor_keys_parse_in_order_and_refuse_bad_input() -> None:
    a, b = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()
    assert parse_audit_anchor_keys("") == []  # not configured
    assert parse_audit_anchor_keys(f"new:{b},old:{a}") == [("new", b"b" * 32), ("old", b"a" * 32)]
    for bad in (f"same:{a},same:{b}", "short:" + base64.b64encode(b"x" * 16).decode(), a):
        with pytest.raises(ValueError):
            parse_audit_anchor_keys(bad)


def test_real_time_event_is_strict() -> None:
    good = {"id": "e-1", "type": "voting", "userId": "alice", "eventData": {}, "timestamp": "2026-11-25T10:00:00Z"}
    assert RealTimeEvent.model_validate(good).user_id == "alice"
    for field, value in [("type", "dancing"), ("timestamp", "2026-11-25T10:00:00"), ("id", "")]:
        with pytest.raises(ValidationError) as error:
            RealTimeEvent.model_validate({**good, field: value})
        assert error.value.errors()[0]["loc"][0] == field
    with pytest.raises(ValidationError):
        RealTimeEvent.model_validate({**good, "surprise": 1})


def test_temporals_frontend_is_reached_over_mutual_tls_or_with_an_api_key_when_configured(tmp_path: Path) -> None:
    from temporalio.service import TLSConfig

    from badges.temporal.client import tls_config
    from tests.conftest import make_settings

    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(name.encode())
    mutual = tls_config(
        make_settings(
            "postgresql://db/badges",
            TEMPORAL_TLS_CERT=str(tmp_path / "client.pem"),
            TEMPORAL_TLS_KEY=str(tmp_path / "client.key"),
            TEMPORAL_TLS_CA=str(tmp_path / "ca.pem"),
        )
    )
    assert isinstance(mutual, TLSConfig)
    assert (mutual.client_cert, mutual.client_private_key, mutual.server_root_ca_cert) == (
        b"client.pem",
        b"client.key",
        b"ca.pem",
    )
    # An API key alone: TLS with the system's roots (Temporal Cloud); nothing: the dev server's plain gRPC.
    assert tls_config(make_settings("postgresql://db/badges", TEMPORAL_API_KEY="key")) is True
    assert tls_config(make_settings("postgresql://db/badges")) is False


def test_batch_work_has_a_task_queue_of_its_own() -> None:
    from tests.conftest import make_settings

    derived = make_settings("postgresql://db/badges", BADGES_TASK_QUEUE="programme")
    assert (derived.task_queue, derived.batch_queue) == ("programme", "programme-batch")
    named = make_settings("postgresql://db/badges", BADGES_TASK_QUEUE="live", BADGES_BATCH_TASK_QUEUE="backfills")
    assert named.batch_queue == "backfills"
    assert (named.batch_max_concurrent_activities, named.batch_max_concurrent_workflow_tasks) == (8, 8)
    with pytest.raises(ValidationError, match="BADGES_BATCH_TASK_QUEUE"):
        make_settings("postgresql://db/badges", BADGES_TASK_QUEUE="same", BADGES_BATCH_TASK_QUEUE="same")
    with pytest.raises(ValidationError):
        make_settings("postgresql://db/badges", BADGES_BATCH_MAX_ACTIVITIES="0")


def test_a_worker_pool_holds_its_batch_activities_and_live_writes_beside_them() -> None:
    required = {
        "DATABASE_URL": "postgresql://x/y",
        "BADGES_JWT_SECRET": "s" * 32,
        "BADGES_IDENTITY_PEPPER": "p" * 16,
        "BADGES_MASTER_KEYS": "mk-1:" + base64.b64encode(b"k" * 32).decode(),
    }
    base = Settings(**required, BADGES_DB_POOL_SIZE="8", BADGES_BATCH_MAX_ACTIVITIES="8")  # type: ignore[arg-type]
    sizes = {q: worker_pool_size(base.model_copy(update={"worker_queues": q})) for q in ("live", "batch", "both")}
    assert sizes == {"live": 8, "batch": 8, "both": 12}
    larger = base.model_copy(update={"db_pool_size": 20, "worker_queues": "both"})
    assert worker_pool_size(larger) == 20
