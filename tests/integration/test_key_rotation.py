"""Master-key rotation (`python -m badges.cli.keys rotate`): afterwards the new master key alone opens
every data key (the Open Badges issuer's signing key, sealed with the service key, included); a key
under a master key nobody configured is reported, not skipped silently. And `rotate-issuer-key`."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from badges.config import Settings
from badges.db.credentials import issuer_public_keys, signing_key
from badges.db.keys import KeyStore, MasterKeys
from tests.conftest import create_member


def keys_cli(settings: Settings, master_keys: str, *command: str) -> tuple[int, list[dict[str, object]]]:
    done = subprocess.run(
        [sys.executable, "-m", "badges.cli.keys", *command],
        env={**os.environ, "DATABASE_URL": settings.database_url, "BADGES_MASTER_KEYS": master_keys},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


async def test_rotation_rewraps_every_key_under_the_new_master(
    settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> None:
    member = await create_member(engine, keys)
    sealed = await keys.seal(str(member), b"SW1A 30-45k")
    issuer = await signing_key(engine, keys, datetime.now(UTC), timedelta(days=90))
    merchant_key = await keys.digest(str(member), "tesco stores")
    original = settings.master_keys
    new = f"rot-{secrets.token_hex(4)}:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    try:
        code, lines = keys_cli(settings, f"{new},{original}", "rotate")
        assert code == 0, lines
        summary = lines[-1]
        assert summary["remaining"] == 0 and summary["rewrapped"] >= 1
        assert summary["keys_by_master"] == {new.split(":")[0]: summary["rewrapped"]}

        # The new master key alone opens the member's key now; the old one alone does not.
        only_new = KeyStore(engine, MasterKeys([(new.split(":")[0], base64.b64decode(new.split(":")[1]))]))
        assert await only_new.unseal(sealed) == b"SW1A 30-45k"
        # Digests come from the data key, not the master key: corrections still match after a rotation.
        assert await only_new.digest(str(member), "tesco stores") == merchant_key
        # The issuer's private key, sealed with the service key, opens too: the same key signs.
        assert (await signing_key(engine, only_new, datetime.now(UTC), timedelta(days=90))).kid == issuer.kid
        code, lines = keys_cli(settings, original, "rotate")
        assert code == 1 and "not configured" in str(lines[-1]["error"])
    finally:
        code, lines = keys_cli(settings, f"{original},{new}", "rotate")  # back, for the other tests
        assert code == 0 and lines[-1]["remaining"] == 0, lines
    code, [status] = keys_cli(settings, original, "status")
    assert code == 0 and set(status["keys_by_master"]) == {original.split(":")[0]}  # type: ignore[arg-type]


async def test_rotate_issuer_key_makes_a_new_signing_key_and_keeps_the_old_published(
    settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> None:
    before = await signing_key(engine, keys, datetime.now(UTC), timedelta(days=90))
    code, [printed] = keys_cli(settings, settings.master_keys, "rotate-issuer-key")
    assert code == 0 and printed["issuerKey"] != before.kid
    after = await signing_key(engine, keys, datetime.now(UTC), timedelta(days=90))
    assert after.kid == printed["issuerKey"]
    assert {before.kid, after.kid} <= {kid for kid, _ in await issuer_public_keys(engine)}
