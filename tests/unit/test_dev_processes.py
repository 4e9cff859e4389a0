"""The processes `make dev` starts: one API process and one live and one batch worker by default,
more with one setting each; the API through its entry point (`badges.cli.api`), as the image runs it;
and a metrics port of its own for each worker process."""

from __future__ import annotations

import pytest

from badges.cli.dev import api_command, worker_environments


def test_by_default_one_live_and_one_batch_worker_and_one_api_process() -> None:
    workers = worker_environments({})
    assert [env["BADGES_WORKER_QUEUES"] for env in workers] == ["live", "batch"]
    command = api_command({})
    assert command[1:3] == ["-m", "badges.cli.api"] and "uvicorn" not in command
    assert command[command.index("--workers") + 1] == "1"


def test_one_setting_each_asks_for_more_processes() -> None:
    env = {"BADGES_LIVE_WORKERS": "3", "BADGES_BATCH_WORKERS": "2", "BADGES_API_WORKERS": "4"}
    assert [worker["BADGES_WORKER_QUEUES"] for worker in worker_environments(env)] == ["live"] * 3 + ["batch"] * 2
    command = api_command(env)
    assert command[command.index("--workers") + 1] == "4"


def test_each_worker_process_serves_its_metrics_on_ports_of_its_own() -> None:
    env = {"BADGES_LIVE_WORKERS": "2", "BADGES_WORKER_METRICS_PORT": "9100", "BADGES_WORKER_SDK_METRICS_PORT": "9200"}
    workers = worker_environments(env)
    assert [worker["BADGES_WORKER_METRICS_PORT"] for worker in workers] == ["9100", "9101", "9102"]
    assert [worker["BADGES_WORKER_SDK_METRICS_PORT"] for worker in workers] == ["9200", "9201", "9202"]
    assert all("BADGES_WORKER_SDK_METRICS_PORT" not in worker for worker in worker_environments({}))


def test_no_fewer_than_one_of_each() -> None:
    with pytest.raises(SystemExit, match="BADGES_BATCH_WORKERS"):
        worker_environments({"BADGES_BATCH_WORKERS": "0"})
