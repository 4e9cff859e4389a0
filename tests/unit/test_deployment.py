"""The deployment files are production-shaped. There is no Docker engine here, so docker-compose.yml
and the Dockerfile are read as data: no dev token, no secret written in them, Temporal and its Web
UI not published, secrets read from files; and the log filter that keeps tokens out of logs."""

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
    api = environments()["api"]
    for setting in ("DATABASE_URL", "BADGES_JWT_SECRET", "BADGES_MASTER_KEYS", "BADGES_IDENTITY_PEPPER"):
        assert f"{setting}_FILE" in api and setting not in api
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()


def test_only_the_api_is_published() -> None:
    services = compose()["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"api"}
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


def test_the_entry_point_stops_gracefully_and_outlasts_clients_keep_alive(monkeypatch: pytest.MonkeyPatch) -> None:
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
    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: ran.update(options))
    api.main(["--workers", "2"])
    assert ran["workers"] == 2 and ran["timeout_graceful_shutdown"] == 7
    assert ran["timeout_worker_healthcheck"] >= 30 and ran["timeout_keep_alive"] > 60
