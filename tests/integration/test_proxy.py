"""docker-compose.yml's proxy, `deploy/nginx.conf`, run for real in front of two API processes
(when nginx is installed; `tests/unit/test_deployment.py` reads the file either way): a member's
Server-Sent Events come through as they happen (unbuffered), a WebSocket upgrades and carries
events both ways, and the proxy's own log never holds a token sent in a query string."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from badges.config import Settings
from tests.support import collect, dev_token, eventually, free_port, real_time_event, running_api, sse_events

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
# Skipped where nginx is missing, except under CI (`CI=true`), where .ci/run installs it.
UNDER_CI = os.environ.get("CI", "").lower() in ("true", "1")
pytestmark = pytest.mark.skipif(NGINX is None and not UNDER_CI, reason="nginx is not installed")


def local_config(folder: Path, port: int, upstreams: list[int]) -> Path:
    """deploy/nginx.conf as it is, but for this machine: its upstreams, port, log and temporary
    files here (nginx runs as this user)."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"        server 127.0.0.1:{upstream};\n" for upstream in upstreams)
    text, replaced = re.subn(r"(        server api-\d+:8000;\n)+", servers, text)
    assert replaced == 1
    text = text.replace("listen 8000;", f"listen 127.0.0.1:{port};")
    text = text.replace("access_log /dev/stdout badges;", f"access_log {folder / 'access.log'} badges;")
    temporary = "".join(
        f"    {kind}_temp_path {folder / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {\n", "http {\n" + temporary, 1)
    path = folder / "nginx.conf"
    path.write_text(text)
    return path


@asynccontextmanager
async def proxy(folder: Path, upstreams: list[int]) -> AsyncIterator[str]:
    port = free_port()
    config = local_config(folder, port, upstreams)
    assert NGINX is not None, "nginx is missing under CI: .ci/run installs it (apt-get install -y nginx-light)"
    # Its workers as this user (as root, nginx would run them as `nobody`, who cannot write here).
    user = " user root;" if os.geteuid() == 0 else ""
    main = f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};{user}"
    process = subprocess.Popen([NGINX, "-c", str(config), "-g", main])
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:

            async def up() -> bool:
                try:
                    return (await http.get("/proxy-health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=20)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def test_streams_and_sockets_pass_through_the_proxy_to_two_api_processes(
    system_settings: Settings, api_url: str, worker: None, tmp_path: Path
) -> None:
    first = int(api_url.rsplit(":", 1)[1])
    async with running_api(system_settings) as other_url:
        second = int(other_url.rsplit(":", 1)[1])
        async with proxy(tmp_path, [first, second]) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.get("/metrics")).status_code == 404  # scraped inside, never through here
            sub = f"{uuid.uuid4()}@example.com"
            headers = await dev_token(http, sub)
            token = headers["Authorization"].removeprefix("Bearer ")
            async with http.stream("GET", "/v1/me/stream", headers=headers) as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                events = sse_events(stream)
                posted = await http.post("/v1/events", json=real_time_event(str(uuid.uuid4()), sub), headers=headers)
                assert posted.status_code == 202
                # One small event arrives on its own: a buffering proxy would hold it back. (The
                # response also asks nginx not to buffer, `X-Accel-Buffering: no`; the config turns
                # buffering off for any proxy: tests/unit/test_deployment.py.)
                [progress] = await collect(events, 1)
                assert progress.event in ("progress", "award")

            socket_url = url.replace("http://", "ws://", 1) + f"/v1/me/ws?access_token={token}"
            async with connect(socket_url, proxy=None) as socket:
                event_id = str(uuid.uuid4())
                await socket.send(json.dumps({"type": "event", "event": real_time_event(event_id, sub)}))
                while (answer := json.loads(await socket.recv()))["type"] != "ack":
                    pass
                assert answer == {"type": "ack", "id": event_id, "status": "accepted"}

    log = (tmp_path / "access.log").read_text()
    assert '"GET /v1/me/ws"' in log and '"GET /v1/me/stream"' in log
    assert token not in log and "access_token" not in log
