"""Award webhooks against DNS rebinding: the delivery connects to the address its check resolved
and approved, never to what the host resolves to a moment later."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from badges.activities.webhooks import WebhookActivities, make_webhook_client
from badges.db.keys import KeyStore
from badges.db.webhooks import ensure_badge_webhook_secret
from badges.domain.definitions import BadgeDefinition
from badges.messages.webhook_delivery import award_webhook
from tests.conftest import create_member
from tests.support import free_port

PUBLIC = "93.184.216.34"
REBINDING_HOST = "rebind.badges-test.example"
PINNED_HOST = "hooks.badges-test.example"


def badge(badge_id: str, url: str) -> BadgeDefinition:
    return BadgeDefinition.model_validate(
        {
            "badgeId": badge_id,
            "version": 1,
            "name": "Pinned",
            "rule": {"kind": "count", "eventType": "tool_usage", "target": 1},
            "config": {"webSocket": {"eventTypes": ["tool_usage"], "webhookUrl": url}},
        }
    )


async def test_a_host_that_rebinds_to_loopback_after_the_check_is_not_called(
    engine: AsyncEngine, keys: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = await create_member(engine, keys)
    badge_id = f"rebind-{uuid.uuid4().hex[:10]}"
    assert await ensure_badge_webhook_secret(engine, keys, badge_id) is not None
    port = free_port()
    reached: list[str] = []

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(writer.get_extra_info("peername")[0])
        writer.close()

    receiver = await asyncio.start_server(on_connection, "127.0.0.1", port)

    # The attacker's DNS: a public address for the first question, loopback from then on.
    loop = asyncio.get_running_loop()
    real_getaddrinfo, real_create_connection = loop.getaddrinfo, loop.create_connection
    answers = [PUBLIC]
    connected_to: list[str] = []

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != REBINDING_HOST:  # anyio asks in bytes
            return await real_getaddrinfo(host, port, *args, **kwargs)
        address = answers.pop(0) if answers else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    async def create_connection(protocol: Any, host: Any = None, port: Any = None, *args: Any, **kwargs: Any) -> Any:
        connected_to.append(str(host))
        if host == PUBLIC:  # no Internet in tests: the public server is down
            raise ConnectionRefusedError(f"{host}:{port} refused")
        return await real_create_connection(protocol, host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(loop, "create_connection", create_connection)

    delivery = award_webhook(
        member, badge(badge_id, f"https://{REBINDING_HOST}:{port}/hook"), "1", datetime(2026, 11, 25, tzinfo=UTC)
    )
    assert delivery is not None
    try:
        async with make_webhook_client() as http:
            activities = WebhookActivities(engine, keys, http, allow_private_targets=False)
            with pytest.raises(ApplicationError) as refused:
                await ActivityEnvironment().run(activities.deliver_webhook, delivery)
    finally:
        receiver.close()
        await receiver.wait_closed()

    assert reached == []
    assert "127.0.0.1" not in connected_to and PUBLIC in connected_to
    assert refused.value.type == "WebhookUnreachable" and not refused.value.non_retryable


def certificate_authority(tmp_path: Path, names: list[str]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throw-away CA: the server's context (a certificate for `names`, signed by it) and a
    client context that trusts only it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "badges test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    chain = tmp_path / "server.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


@asynccontextmanager
async def tls_receiver(context: ssl.SSLContext, port: int) -> AsyncIterator[list[tuple[str | None, str]]]:
    """A 200 receiver on 127.0.0.1 over TLS, listing each request's (SNI, Host header)."""
    seen: list[tuple[str | None, str]] = []
    server_names: list[str | None] = []
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)  # type: ignore[assignment]

    async def handle(request: web.Request) -> web.Response:
        seen.append((server_names[-1] if server_names else None, request.headers["Host"]))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("certified", [True, False])
async def test_a_pinned_delivery_still_checks_the_certificate_against_the_urls_host(
    engine: AsyncEngine, keys: KeyStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, certified: bool
) -> None:
    member = await create_member(engine, keys)
    badge_id = f"pinned-{uuid.uuid4().hex[:10]}"
    assert await ensure_badge_webhook_secret(engine, keys, badge_id) is not None
    port = free_port()
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != PINNED_HOST:
            return await real_getaddrinfo(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    server_context, client_context = certificate_authority(
        tmp_path, [PINNED_HOST] if certified else ["someone-else.badges-test.example"]
    )
    url = f"https://{PINNED_HOST}:{port}/hook"
    delivery = award_webhook(member, badge(badge_id, url), "1", datetime(2026, 11, 25, tzinfo=UTC))
    assert delivery is not None
    async with (
        tls_receiver(server_context, port) as seen,
        httpx.AsyncClient(verify=client_context, follow_redirects=False) as http,
    ):
        activities = WebhookActivities(engine, keys, http, allow_private_targets=True)  # loopback receiver
        if certified:
            attempt = await ActivityEnvironment().run(activities.deliver_webhook, delivery)
            assert attempt.status_code == 200
            assert seen == [(PINNED_HOST, f"{PINNED_HOST}:{port}")]
        else:
            with pytest.raises(ApplicationError, match="CERTIFICATE_VERIFY_FAILED"):
                await ActivityEnvironment().run(activities.deliver_webhook, delivery)
            assert seen == []
