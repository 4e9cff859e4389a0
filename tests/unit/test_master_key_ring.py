"""The master key ring as a file (`BADGES_MASTER_KEYS_FILE`, a secret store's mount): processes
follow it as the rotation schedule rewrites it, so a new key opens everywhere at once and a
destroyed one stops opening anything. Pure: files only."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import ValidationError

import badges.db.keys as keys_module
from badges.config import Settings, parse_master_keys
from badges.db.keys import KeyUnavailableError, MasterKeys
from badges.db.master_keys import write_key_ring

OLD = ("mk-old", b"o" * 32)
NEW = ("mk-new", b"n" * 32)


def settings(**values: str) -> Settings:
    base = {"DATABASE_URL": "postgresql://x/y", "BADGES_JWT_SECRET": "s" * 32, "BADGES_IDENTITY_PEPPER": "p" * 16}
    return Settings(**base, **values)  # type: ignore[arg-type]


def test_master_keys_come_from_the_environment_or_a_file_never_both(tmp_path: Path) -> None:
    ring = tmp_path / "master-keys"
    write_key_ring(ring, [NEW, OLD])
    assert settings(BADGES_MASTER_KEYS_FILE=str(ring)).parsed_master_keys == [NEW, OLD]
    listed = f"mk-new:{base64.b64encode(NEW[1]).decode()}"
    assert settings(BADGES_MASTER_KEYS=listed).parsed_master_keys == [NEW]
    for wrong in ({}, {"BADGES_MASTER_KEYS": listed, "BADGES_MASTER_KEYS_FILE": str(ring)}):
        with pytest.raises(ValidationError, match="exactly one"):
            settings(**wrong)


def test_the_ring_file_holds_one_key_a_line_owner_only(tmp_path: Path) -> None:
    ring = tmp_path / "master-keys"
    write_key_ring(ring, [NEW, OLD])
    assert ring.stat().st_mode & 0o777 == 0o600
    assert parse_master_keys(ring.read_text()) == [NEW, OLD]
    assert not [path for path in tmp_path.iterdir() if path != ring]  # no temporary file left
    with pytest.raises(ValueError, match="twice"):
        parse_master_keys(ring.read_text() + ring.read_text())


def test_a_process_follows_the_ring_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = tmp_path / "master-keys"
    write_key_ring(ring, [OLD])
    process = MasterKeys.from_file(ring)
    under_old = process.wrap("dk-1", b"d" * 32)

    # Another process (the rotation) puts a new key first and wraps with it: this one reads the
    # file again the moment it meets a master key it does not hold.
    write_key_ring(ring, [NEW, OLD])
    rotation = MasterKeys.from_file(ring)
    under_new = rotation.wrap("dk-2", b"e" * 32)
    assert under_new[0] == "mk-new"
    assert process.unwrap(*under_new[:1], "dk-2", under_new[1]) == b"e" * 32
    assert process.active_id == "mk-new" and process.ids == ["mk-new", "mk-old"]

    # The old key destroyed (gone from the file): within RING_CHECK_SECONDS nothing opens with it.
    write_key_ring(ring, [NEW])
    assert process.unwrap("mk-old", "dk-1", under_old[1]) == b"d" * 32  # not looked at again yet
    monkeypatch.setattr(keys_module, "RING_CHECK_SECONDS", 0.0)
    with pytest.raises(KeyUnavailableError, match="mk-old"):
        process.unwrap("mk-old", "dk-1", under_old[1])


def test_keys_from_the_environment_never_change() -> None:
    fixed = MasterKeys([OLD])
    assert fixed.path is None and not fixed.reload()
    with pytest.raises(KeyUnavailableError, match="not configured"):
        fixed.unwrap("mk-new", "dk", b"x" * 40)


def test_a_ring_file_unreadable_for_a_moment_keeps_the_keys_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = tmp_path / "master-keys"
    write_key_ring(ring, [OLD])
    process = MasterKeys.from_file(ring)
    wrapped = process.wrap("dk-1", b"d" * 32)
    ring.write_text("half a key ri")  # an editor mid-save, not the rotation (which replaces it whole)
    monkeypatch.setattr(keys_module, "RING_CHECK_SECONDS", 0.0)
    assert process.unwrap(*wrapped[:1], "dk-1", wrapped[1]) == b"d" * 32
    ring.unlink()
    assert process.unwrap(*wrapped[:1], "dk-1", wrapped[1]) == b"d" * 32
    with pytest.raises(FileNotFoundError):
        process.reload()  # asked for explicitly (the rotation), it fails loudly
