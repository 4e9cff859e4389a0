"""`make dev`'s local secrets file: readable by its owner only from the moment it exists."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from badges.cli.dev import local_master_keys, local_secrets
from badges.config import parse_audit_anchor_keys, parse_master_keys


@pytest.fixture
def no_umask() -> Iterator[None]:
    previous = os.umask(0)  # the worst case: nothing narrows what the file is created with
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_secrets_file_is_created_owner_only(
    tmp_path: Path, no_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("created wider and narrowed after: readable by others in between")

    # With every way to narrow a file afterwards taken away, only its creation mode is left.
    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(os, "fchmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    path = tmp_path / "secrets.env"

    made = local_secrets(path)

    assert mode_of(path) == 0o600
    # The master keys live in a file of their own: `local_master_keys`.
    assert set(made) == {"BADGES_JWT_SECRET", "BADGES_IDENTITY_PEPPER", "BADGES_AUDIT_ANCHOR_KEYS"}
    assert local_secrets(path) == made  # made once, then read


def test_an_existing_world_readable_secrets_file_is_narrowed(tmp_path: Path, no_umask: None) -> None:
    path = tmp_path / "secrets.env"
    path.write_text("BADGES_JWT_SECRET=kept\n")
    path.chmod(0o644)  # as older versions could leave it

    made = local_secrets(path)
    assert made["BADGES_JWT_SECRET"] == "kept"
    assert mode_of(path) == 0o600


def test_a_secrets_file_from_before_the_audit_anchor_gains_its_key(tmp_path: Path, no_umask: None) -> None:
    path = tmp_path / "secrets.env"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("BADGES_JWT_SECRET=kept\n")

    made = local_secrets(path)

    assert made["BADGES_JWT_SECRET"] == "kept"
    assert parse_audit_anchor_keys(made["BADGES_AUDIT_ANCHOR_KEYS"])  # a usable key, kept from now on
    assert local_secrets(path) == made
    assert mode_of(path) == 0o600


def test_the_master_key_ring_is_its_own_owner_only_file(tmp_path: Path, no_umask: None) -> None:
    secrets_file, ring = tmp_path / "secrets.env", tmp_path / "master-keys"
    local_secrets(secrets_file)

    assert local_master_keys(ring, secrets_file) == ring
    [(key_id, key)] = parse_master_keys(ring.read_text())
    assert mode_of(ring) == 0o600 and len(key) == 32
    assert "BADGES_MASTER_KEYS" not in secrets_file.read_text()
    local_master_keys(ring, secrets_file)
    assert parse_master_keys(ring.read_text()) == [(key_id, key)]  # made once, then kept


def test_a_master_key_kept_in_an_older_secrets_file_moves_into_the_ring(tmp_path: Path, no_umask: None) -> None:
    """Left in the secrets file, a copy of the key would outlive its destruction by the schedule."""
    secrets_file, ring = tmp_path / "secrets.env", tmp_path / "master-keys"
    old = "local1:" + base64.b64encode(b"k" * 32).decode()
    secrets_file.write_text(f"BADGES_JWT_SECRET=kept\nBADGES_MASTER_KEYS={old}\nBADGES_IDENTITY_PEPPER=also\n")
    secrets_file.chmod(0o600)

    local_master_keys(ring, secrets_file)

    assert parse_master_keys(ring.read_text()) == [("local1", b"k" * 32)]
    assert secrets_file.read_text() == "BADGES_JWT_SECRET=kept\nBADGES_IDENTITY_PEPPER=also\n"
    assert mode_of(secrets_file) == 0o600 and mode_of(ring) == 0o600
