"""The deployment files are production-shaped. There is no Docker engine here, so docker-compose.yml,
the Dockerfile and the proxy's deploy/nginx.conf are read as data: the topology (Temporal on
PostgreSQL with its Web UI on our codec endpoint, two API containers behind a proxy that streams
SSE and upgrades WebSockets, live and batch workers, the three sandbox banks), a health check on
every long-running service, no dev token, no secret written in them, nothing published but the
proxy, secrets read from files; and the log filter that keeps tokens out of logs."""

from __future__ import annotations

import json
import logging
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from badges.api.logs import RedactAccessTokens, redact
from badges.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|KEYS?$|PEPPER|TOKEN|DATABASE_URL", re.IGNORECASE)
# `${NAME}` or `${NAME:?message}`: from the environment, with no default to fall back on.
REQUIRED_FROM_ENVIRONMENT = re.compile(r"^\$\{[A-Z0-9_]+(:\?[^}]*)?\}$")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def environments() -> dict[str, dict[str, str]]:
    """Each service's environment (the YAML anchors resolved), by service."""
    found = {}
    for name, service in compose()["services"].items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        found[name] = {key: str(value) for key, value in environment.items()}
    return found


def test_no_service_runs_with_the_dev_token_open() -> None:
    for service, environment in environments().items():
        assert environment.get("BADGES_ENV", "prod") == "prod", service
    assert "BADGES_ENV" not in (ROOT / "Dockerfile").read_text()


def test_no_secret_is_written_in_the_compose_file() -> None:
    checked = 0
    for service, environment in environments().items():
        for key, value in environment.items():
            if not SECRET_NAME.search(key) or key.endswith("_FILE"):
                continue
            checked += 1
            assert REQUIRED_FROM_ENVIRONMENT.match(value), f"{service}: {key} holds a value: {value!r}"
    assert checked >= 2  # the database password, for PostgreSQL and for Temporal
    text = (ROOT / "docker-compose.yml").read_text()
    assert "mk-" not in text and "change-me" not in text and "://badges:badges@" not in text


def test_badges_secrets_come_from_secret_files_that_are_never_committed() -> None:
    document = compose()
    declared = document["secrets"]
    for service, environment in environments().items():
        mounted = set(document["services"][service].get("secrets", []))
        for key, value in environment.items():
            if key.endswith("_FILE"):
                name = value.removeprefix("/run/secrets/")
                assert value.startswith("/run/secrets/") and name in mounted, (service, key)
                assert declared[name]["file"].startswith("./secrets/"), name
    api = environments()["api-1"]
    for setting in ("DATABASE_URL", "BADGES_JWT_SECRET", "BADGES_MASTER_KEYS", "BADGES_IDENTITY_PEPPER"):
        assert f"{setting}_FILE" in api and setting not in api
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


def test_only_the_proxy_is_published() -> None:
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    for name in ("temporal", "temporal-ui"):
        assert "ports" not in services[name] and "network_mode" not in services[name], name


def image_command() -> list[str]:
    [line] = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    return json.loads(line.removeprefix("CMD "))  # type: ignore[no-any-return]


def test_the_image_runs_the_api_entry_point() -> None:
    """The entry point sets the WebSocket bound and the log filter; a bare uvicorn command would not."""
    assert image_command() == ["python", "-m", "badges.cli.api"]
    assert "uvicorn" not in shlex.join(image_command())


def test_settings_read_secrets_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "jwt_secret"
    secret.write_text("s" * 40 + "\n")
    pepper = tmp_path / "pepper"
    pepper.write_text("p" * 20)
    monkeypatch.setenv("BADGES_JWT_SECRET_FILE", str(secret))
    monkeypatch.setenv("BADGES_IDENTITY_PEPPER_FILE", str(pepper))
    monkeypatch.delenv("BADGES_JWT_SECRET", raising=False)
    monkeypatch.delenv("BADGES_IDENTITY_PEPPER", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/badges")
    monkeypatch.setenv("BADGES_MASTER_KEYS", "k1:" + "A" * 43 + "=")
    settings = Settings()  # type: ignore[call-arg]
    assert settings.jwt_secret == "s" * 40  # the file's trailing newline is not part of it
    assert settings.identity_pepper == "p" * 20
    monkeypatch.setenv("BADGES_JWT_SECRET", "t" * 40)
    with pytest.raises(ValueError, match="both set"):
        Settings()  # type: ignore[call-arg]


def test_the_master_key_ring_file_is_a_setting_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BADGES_MASTER_KEYS_FILE names the key ring the processes follow (rotation rewrites it), not a
    secret file holding BADGES_MASTER_KEYS: set alone, it is not also read as the other."""
    ring = tmp_path / "master-keys"
    ring.write_text("k1:" + "A" * 43 + "=\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/badges")
    monkeypatch.setenv("BADGES_JWT_SECRET", "s" * 40)
    monkeypatch.setenv("BADGES_IDENTITY_PEPPER", "p" * 20)
    monkeypatch.delenv("BADGES_MASTER_KEYS", raising=False)
    monkeypatch.setenv("BADGES_MASTER_KEYS_FILE", str(ring))
    settings = Settings()  # type: ignore[call-arg]
    assert settings.master_keys == "" and settings.master_keys_file == str(ring)
    assert [key_id for key_id, _ in settings.parsed_master_keys] == ["k1"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/v1/me/ws?access_token=eyJhbGciOi.x.y", "/v1/me/ws?access_token=[redacted]"),
        ("/v1/me/ws?lastEventId=4&access_token=abc&x=1", "/v1/me/ws?lastEventId=4&access_token=[redacted]&x=1"),
        ("/v1/me/ws?ACCESS_TOKEN=abc", "/v1/me/ws?ACCESS_TOKEN=[redacted]"),
        ("/v1/me/ws?access%5Ftoken=abc", "/v1/me/ws?access%5Ftoken=[redacted]"),
        ("/v1/me/ws?not_access_token=abc", "/v1/me/ws?not_access_token=abc"),
        ("/v1/me/stream?lastEventId=5", "/v1/me/stream?lastEventId=5"),
    ],
)
def test_access_token_values_are_redacted(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_the_filter_redacts_uvicorn_records() -> None:
    """uvicorn's access log passes the target as an argument; its WebSocket lines too."""
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/v1/me/ws?access_token=secret-token", "1.1", 101),
        None,
    )
    handshake = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '"WebSocket /v1/me/ws?access_token=secret-token" [accepted]',
        (),
        None,
    )
    for record in (access, handshake):
        assert RedactAccessTokens().filter(record)
        assert "secret-token" not in record.getMessage() and "access_token=[redacted]" in record.getMessage()


# --- the topology ---------------------------------------------------------------------------

LONG_RUNNING_EXCEPT = {"migrate"}  # runs the migrations once and exits


def command(service: dict[str, Any]) -> list[str]:
    return service.get("command") or image_command()  # type: ignore[no-any-return]


def api_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if command(service) == image_command() and "build" in service
    }


def test_the_topology_has_every_part_of_a_deployment() -> None:
    services = compose()["services"]
    assert services["temporal"]["environment"]["DB"] == "postgres12"  # Temporal persists in PostgreSQL
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec}")
    assert services["postgres"]["image"].startswith("postgres:")
    assert len(api_services()) >= 2, "at least two API containers"
    assert services["proxy"]["image"].startswith("nginx:")
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["proxy"]["volumes"]
    queues = {name: environments()[name].get("BADGES_WORKER_QUEUES") for name in ("worker", "batch-worker")}
    assert queues == {"worker": "live", "batch-worker": "batch"}
    for name in ("worker", "batch-worker"):
        assert command(services[name]) == ["python", "-m", "badges.workers.main"]


def test_the_sandbox_banks_run_as_make_dev_runs_them() -> None:
    """The same modules as `start_sandbox_banks` in badges/cli/dev.py, only with --profile sandbox."""
    services = compose()["services"]
    dev = (ROOT / "badges" / "cli" / "dev.py").read_text()
    assert command(services["bank"]) == ["python", "-m", "badges.banking.sandbox"]
    for name, factory, port in (
        ("truelayer-bank", "badges.banking.sandbox.truelayer:create_truelayer_sandbox", "8101"),
        ("yodlee-bank", "badges.banking.sandbox.yodlee:create_yodlee_sandbox", "8102"),
    ):
        assert factory in dev
        argv = command(services[name])
        assert argv[:5] == ["python", "-m", "uvicorn", "--factory", factory], name
        assert argv[argv.index("--port") + 1] == port and argv[argv.index("--host") + 1] == "0.0.0.0"
    for name in ("bank", "truelayer-bank", "yodlee-bank"):
        assert services[name]["profiles"] == ["sandbox"], name


def test_every_long_running_service_has_a_health_check() -> None:
    for name, service in compose()["services"].items():
        if name in LONG_RUNNING_EXCEPT:
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_workers_serve_their_metrics_and_are_checked_on_that_port() -> None:
    services = compose()["services"]
    for name in ("worker", "batch-worker"):
        environment = environments()[name]
        port = environment["BADGES_WORKER_METRICS_PORT"]
        assert environment["BADGES_WORKER_SDK_METRICS_PORT"] not in ("", "0", port)
        assert f"127.0.0.1:{port}/metrics" in " ".join(services[name]["healthcheck"]["test"])
        assert {port, environment["BADGES_WORKER_SDK_METRICS_PORT"]} <= set(services[name]["expose"])


def test_the_api_trusts_forwarded_headers_from_the_proxy_alone() -> None:
    services = compose()["services"]
    proxy_address = services["proxy"]["networks"]["default"]["ipv4_address"]
    for name in api_services():
        assert environments()[name]["FORWARDED_ALLOW_IPS"] == proxy_address, name
        assert "ports" not in services[name], name


def nginx() -> str:
    return (ROOT / "deploy" / "nginx.conf").read_text()


def location(path: str) -> str:
    """The body of `location = path { ... }` (no nested blocks in ours)."""
    found = re.search(r"location\s*=\s*" + re.escape(path) + r"\s*\{([^}]*)\}", nginx())
    assert found, f"no location for {path}"
    return found.group(1)


def directives(block: str) -> list[list[str]]:
    code = "\n".join(line.split("#", 1)[0] for line in block.splitlines())
    return [statement.split() for statement in code.split(";") if statement.strip()]


def test_the_proxy_balances_over_every_api_container() -> None:
    upstream = re.search(r"upstream api \{([^}]*)\}", nginx())
    assert upstream
    servers = {words[1] for words in directives(upstream.group(1)) if words[0] == "server"}
    assert servers == {f"{name}:8000" for name in api_services()}


def test_the_proxy_streams_server_sent_events_unbuffered_and_keeps_them_open() -> None:
    stream = directives(location("/v1/me/stream"))
    assert ["proxy_pass", "http://api"] in stream
    assert ["proxy_buffering", "off"] in stream
    timeouts = {words[0]: words[1] for words in stream if words[0].endswith("_timeout")}
    assert int(timeouts["proxy_read_timeout"].removesuffix("s")) >= 3600


def test_the_proxy_upgrades_websockets_and_still_forwards_the_clients_address() -> None:
    socket = directives(location("/v1/me/ws"))
    assert ["proxy_pass", "http://api"] in socket
    assert ["proxy_set_header", "Upgrade", "$http_upgrade"] in socket
    assert ["proxy_set_header", "Connection", "$connection_upgrade"] in socket
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{[^}]*default upgrade", nginx())
    # A location that sets headers inherits none of the server's: it must set these itself.
    assert ["proxy_set_header", "X-Forwarded-For", "$remote_addr"] in socket
    assert ["proxy_set_header", "Host", "$host"] in socket
    assert int(next(words[1] for words in socket if words[0] == "proxy_read_timeout").removesuffix("s")) >= 3600
    assert ["proxy_http_version", "1.1"] in directives(nginx().split("location", 1)[0].split("server {", 1)[1])


def test_the_proxy_logs_no_query_string_and_keeps_metrics_private() -> None:
    """A WebSocket may carry its token as `?access_token=`: the proxy's log never holds the query."""
    [log_format] = re.findall(r"log_format\s+(\w+)\s+([^;]*);", nginx())
    assert not re.search(r"\$(request|request_uri|args|query_string|arg_\w+)\b", log_format[1])
    assert re.search(rf"access_log\s+\S+\s+{log_format[0]}\s*;", nginx())
    assert ["return", "404"] in directives(location("/metrics"))


def test_the_entry_point_stops_gracefully_and_outlasts_clients_keep_alive(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`python -m badges.cli.api` hands uvicorn the restart settings: requests in flight get
    `BADGES_API_SHUTDOWN_SECONDS` after the drain, a new worker process up to a minute to start,
    and an idle connection stays open longer than clients keep theirs (uvicorn's own 5 s races
    httpx's 5 s: a request sent just as the server closes the connection fails)."""
    import uvicorn

    from badges.cli import api

    monkeypatch.setenv("DATABASE_URL", "postgresql://db/badges")
    monkeypatch.setenv("BADGES_JWT_SECRET", "t" * 40)
    monkeypatch.setenv("BADGES_IDENTITY_PEPPER", "p" * 20)
    monkeypatch.setenv("BADGES_MASTER_KEYS", "k1:" + "A" * 43 + "=")
    monkeypatch.setenv("BADGES_API_SHUTDOWN_SECONDS", "7")
    # main() points the processes at a metrics folder through the environment: one that is unset
    # again after this test (a folder left in it would put every later app into multiprocess mode).
    monkeypatch.setenv(api.MULTIPROCESS_DIR, str(tmp_path))
    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    api.main(["--workers", "2"])
    assert ran["workers"] == 2 and ran["timeout_graceful_shutdown"] == 7
    assert ran["timeout_worker_healthcheck"] >= 30 and ran["timeout_keep_alive"] > 60
