"""The API as the image runs it: the Dockerfile's CMD, started here as a process (no Docker engine
needed), with its secrets as files and BADGES_ENV unset. Its logs name no token, its WebSocket
refuses an oversize message at the server, and the dev token is not served."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from badges.api.auth import issue_token
from badges.config import Settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def image_command(host: str, port: int) -> list[str]:
    """The Dockerfile's CMD, run with this interpreter, listening where the test says."""
    [line] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    command: list[str] = json.loads(line.removeprefix("CMD "))
    if command[0] == "python":
        command[0] = sys.executable
    elif command[0] == "uvicorn":
        command[:1] = [sys.executable, "-m", "uvicorn"]
    for flag, value in (("--host", host), ("--port", str(port))):
        if flag in command:
            command[command.index(flag) + 1] = value
    return command


def secret_files(settings: Settings, folder: Path) -> Iterator[tuple[str, str]]:
    """Each secret as a file (as Docker secrets are mounted), named by its `<NAME>_FILE` variable."""
    folder.mkdir(mode=0o700)
    for name, value in (
        ("DATABASE_URL", settings.libpq_url),
        ("BADGES_JWT_SECRET", settings.jwt_secret),
        ("BADGES_MASTER_KEYS", settings.master_keys),
        ("BADGES_IDENTITY_PEPPER", settings.identity_pepper),
    ):
        path = folder / name.lower()
        path.write_text(value + "\n")
        yield f"{name}_FILE", str(path)


@pytest.fixture
async def served(system_settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """The image's command serving the API; yields its base URL and the file its output goes to."""
    port = free_port()
    log = tmp_path / "api.log"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BADGES_", "DATABASE_URL", "TEMPORAL_", "PLAID_", "TRUELAYER_", "YODLEE_"))
    }
    environment |= dict(secret_files(system_settings, tmp_path / "secrets"))
    environment |= {
        "BADGES_API_HOST": "127.0.0.1",
        "BADGES_API_PORT": str(port),
        "TEMPORAL_ADDRESS": system_settings.temporal_address,
        "BADGES_TASK_QUEUE": system_settings.task_queue,
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            image_command("127.0.0.1", port), env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(600):
                assert process.poll() is None, log.read_text()
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield url, log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_the_image_serves_no_dev_token_and_logs_no_access_token(
    served: tuple[str, Path], system_settings: Settings
) -> None:
    url, log = served
    token = issue_token(system_settings, f"m-{uuid.uuid4()}", ["user"])
    async with httpx.AsyncClient(base_url=url) as client:
        dev = await client.post("/v1/dev/token", json={"sub": "anyone", "scopes": ["admin"]})
        assert dev.status_code == 404
        # A token in the query of a plain request, as some clients will send one.
        assert (await client.get("/v1/badges", params={"access_token": token})).status_code == 401
    async with connect(url.replace("http", "ws") + f"/v1/me/ws?access_token={token}") as socket:
        await socket.send(json.dumps({"type": "ping"}))
        while json.loads(await socket.recv()).get("type") != "pong":
            pass
    await asyncio.sleep(0.5)  # the access log line is written as the response completes

    written = log.read_text()
    assert "WebSocket /v1/me/ws?access_token=[redacted]" in written
    assert "/v1/badges?access_token=[redacted]" in written
    assert token not in written and token.split(".")[2] not in written


async def test_the_image_bounds_a_websocket_message_at_the_server(
    served: tuple[str, Path], system_settings: Settings
) -> None:
    url, _ = served
    token = issue_token(system_settings, f"m-{uuid.uuid4()}", ["user"])
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url.replace("http", "ws") + "/v1/me/ws", additional_headers=headers) as socket:
        await socket.send("x" * (1024 * 1024))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await socket.recv()
    frame = closed.value.rcvd
    assert frame is not None and frame.code == 1009
    # Closed by the server's own bound, before the app buffered the message (the app's check,
    # which would close with "message over 65536 bytes", never saw it).
    assert "message over" not in frame.reason
