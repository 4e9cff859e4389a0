"""The audit log's anchor: checkpoints, each signed with a key the database never holds and kept
outside it, so whoever can rewrite `audit_log` (its owner, a leaked database credential, a restored
backup) cannot remove its tail or recompute its chain over a different history unnoticed.

A checkpoint records the last record's id, the chain's hash there, how many records lead up to it,
when, and the previous checkpoint's MAC, under HMAC-SHA256 with a key of
`BADGES_AUDIT_ANCHOR_KEYS`. Checkpoints live in a directory, one file each (`000000000042.json`),
each created once and never rewritten; in production that directory is a write-once store (docs/api/audit.md:
Compliance). `write_checkpoint` signs only a chain that extends the last signed one;
`verify_audit_log` checks every checkpoint, then the chain through every point they vouch for."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from badges.db.audit import ChainAnchor, VerificationResult, verify_chain

CHECKPOINT_VERSION = 1
# Domain separation: these keys sign nothing else, and a MAC of one format is no MAC of another.
MAC_CONTEXT = b"badges.audit.checkpoint.v1\n"
GENESIS_MAC = bytes(32)
CHECKPOINT_NAME = re.compile(r"^(\d{12})\.json$")


class CheckpointError(Exception):
    """A checkpoint store that cannot be trusted as it stands; `checkpoint` names the first bad one."""

    def __init__(self, reason: str, checkpoint: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.checkpoint = checkpoint


class AuditChainBrokenError(Exception):
    """The chain no longer extends what the last checkpoint signed: nothing more is signed."""

    def __init__(self, result: VerificationResult) -> None:
        super().__init__(f"audit chain broken at record {result.first_bad_id}: {result.reason}")
        self.result = result


class AnchorKeys:
    """The anchoring keys (`Settings.parsed_audit_anchor_keys`): the first signs, every one verifies."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("no audit anchor key: set BADGES_AUDIT_ANCHOR_KEYS")
        self._keys = dict(keys)
        self.signing_id = keys[0][0]

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def mac(self, key_id: str, message: bytes) -> bytes:
        return hmac.new(self._keys[key_id], MAC_CONTEXT + message, hashlib.sha256).digest()


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # 1, 2, 3… with no gap
    key_id: str  # the anchoring key that signed it
    audit_id: int  # the last record it covers (0: the log was empty)
    chain_hash: bytes  # that record's hash
    records: int  # how many records up to and including it
    at: datetime
    prev_mac: bytes  # the previous checkpoint's MAC (GENESIS_MAC for the first)
    mac: bytes

    @property
    def file_name(self) -> str:
        return f"{self.seq:012d}.json"

    def anchor(self) -> ChainAnchor:
        return ChainAnchor(
            checkpoint=self.seq, audit_id=self.audit_id, chain_hash=self.chain_hash, records=self.records
        )

    def signed_fields(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "seq": self.seq,
            "key_id": self.key_id,
            "audit_id": self.audit_id,
            "chain_hash": self.chain_hash.hex(),
            "records": self.records,
            "at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "prev_mac": self.prev_mac.hex(),
        }

    def signed_bytes(self) -> bytes:
        return json.dumps(self.signed_fields(), sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> bytes:
        return json.dumps({**self.signed_fields(), "mac": self.mac.hex()}, sort_keys=True, indent=1).encode() + b"\n"

    def verifies(self, keys: AnchorKeys) -> bool:
        return hmac.compare_digest(keys.mac(self.key_id, self.signed_bytes()), self.mac)

    @classmethod
    def sign(
        cls,
        keys: AnchorKeys,
        *,
        seq: int,
        audit_id: int,
        chain_hash: bytes,
        records: int,
        at: datetime,
        prev_mac: bytes,
    ) -> Checkpoint:
        # `at` as it is signed (microseconds, UTC), so the value read back verifies.
        unsigned = cls(seq, keys.signing_id, audit_id, chain_hash, records, at.astimezone(UTC), prev_mac, b"")
        return replace(unsigned, mac=keys.mac(keys.signing_id, unsigned.signed_bytes()))

    @classmethod
    def from_json(cls, data: bytes, seq: int) -> Checkpoint:
        """Parse a checkpoint file (`seq`: the number its name gives, for the message)."""
        try:
            fields = json.loads(data)
            if fields.pop("version") != CHECKPOINT_VERSION:
                raise ValueError("unknown version")
            checkpoint = cls(
                seq=int(fields["seq"]),
                key_id=str(fields["key_id"]),
                audit_id=int(fields["audit_id"]),
                chain_hash=bytes.fromhex(fields["chain_hash"]),
                records=int(fields["records"]),
                at=datetime.strptime(fields["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
                prev_mac=bytes.fromhex(fields["prev_mac"]),
                mac=bytes.fromhex(fields["mac"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"checkpoint {seq} is unreadable ({error!r})", seq) from error
        if checkpoint.seq != seq:
            raise CheckpointError(f"checkpoint file {seq:012d}.json holds checkpoint {checkpoint.seq}", seq)
        return checkpoint


class CheckpointStore:
    """A directory of checkpoint files, each created once and never changed: written and synced in
    `.incoming/`, then hard-linked to its name (which fails if the name exists), so no reader ever
    sees half a file and nothing in the directory itself is ever renamed or removed (it may be
    append-only: `chattr +a`). Names starting with a dot are not checkpoints."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def files(self) -> list[tuple[int, Path]]:
        """Every checkpoint file by number; a file here that is not one is an error."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            if path.name.startswith("."):
                continue
            match = CHECKPOINT_NAME.match(path.name)
            if match is None:
                raise CheckpointError(f"{path.name!r} in the checkpoint store is not a checkpoint")
            found.append((int(match.group(1)), path))
        return sorted(found)

    def read(self, seq: int, path: Path) -> Checkpoint:
        return Checkpoint.from_json(path.read_bytes(), seq)

    def latest(self) -> Checkpoint | None:
        files = self.files()
        return self.read(*files[-1]) if files else None

    def write(self, checkpoint: Checkpoint) -> None:
        """Create the checkpoint's file; `FileExistsError` if that number is taken (another writer
        was first: nothing is ever overwritten)."""
        incoming = self.directory / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True, mode=0o750)
        aside = incoming / f"{checkpoint.file_name}.{os.getpid()}.{os.urandom(4).hex()}"
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(checkpoint.to_json())
                file.flush()
                os.fsync(file.fileno())
            os.link(aside, self.directory / checkpoint.file_name)
        finally:
            aside.unlink(missing_ok=True)
        directory = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_checkpoints(store: CheckpointStore, keys: AnchorKeys) -> list[Checkpoint]:
    """Every checkpoint, checked as a sequence: each readable, signed by a listed key and verifying
    under it, numbered 1, 2, 3… without a gap, each naming its predecessor's MAC, never going back.
    Raises `CheckpointError` at the first that is not so. (Keys may interleave: during a rolling
    restart that moves a new key first, workers not yet restarted still sign with the old one.)"""
    checkpoints: list[Checkpoint] = []
    for seq, path in store.files():
        checkpoint = store.read(seq, path)
        if checkpoint.key_id not in keys:
            raise CheckpointError(
                f"checkpoint {seq} is signed with key {checkpoint.key_id!r}, which BADGES_AUDIT_ANCHOR_KEYS does"
                " not list",
                seq,
            )
        if not checkpoint.verifies(keys):
            raise CheckpointError(f"checkpoint {seq}'s MAC does not verify: it was forged or altered", seq)
        previous = checkpoints[-1] if checkpoints else None
        expected = previous.seq + 1 if previous else 1
        if seq != expected:
            raise CheckpointError(
                f"checkpoint {expected} is missing (the store goes from {expected - 1} to {seq}): it was deleted",
                expected,
            )
        if checkpoint.prev_mac != (previous.mac if previous else GENESIS_MAC):
            raise CheckpointError(f"checkpoint {seq} does not follow checkpoint {expected - 1} (prev_mac differs)", seq)
        if previous is not None and (checkpoint.audit_id < previous.audit_id or checkpoint.records < previous.records):
            raise CheckpointError(f"checkpoint {seq} goes back behind checkpoint {previous.seq}", seq)
        checkpoints.append(checkpoint)
    return checkpoints


async def _record_hash(pool: AsyncConnectionPool, audit_id: int) -> bytes | None:
    async with pool.connection() as connection:
        cursor = await connection.execute("SELECT hash FROM audit_log WHERE id = %s", (audit_id,))
        row = await cursor.fetchone()
    return bytes(row[0]) if row else None


async def write_checkpoint(
    pool: AsyncConnectionPool, store: CheckpointStore, keys: AnchorKeys, now: datetime
) -> Checkpoint:
    """Sign the chain as it stands and add the checkpoint to the store, after checking that the
    chain still passes through the last checkpoint and that every record appended since is sound
    (so a checkpoint never vouches for a history rewritten behind the previous one). Raises
    `CheckpointError` when the newest checkpoint does not verify, `AuditChainBrokenError` when the
    chain does not extend it, `FileExistsError` when another writer took its number."""
    previous = await asyncio.to_thread(store.latest)
    if previous is not None and previous.key_id not in keys:
        raise CheckpointError(f"the newest checkpoint, {previous.seq}, is signed with an unknown key", previous.seq)
    if previous is not None and not previous.verifies(keys):
        raise CheckpointError(f"the newest checkpoint, {previous.seq}, does not verify", previous.seq)
    start = previous.anchor() if previous is not None else None
    if start is not None and start.audit_id:
        stored = await _record_hash(pool, start.audit_id)
        if stored != start.chain_hash:
            what = "is missing" if stored is None else "has another hash"
            raise AuditChainBrokenError(
                VerificationResult(
                    0,
                    start.audit_id,
                    f"record {start.audit_id}, which checkpoint {start.checkpoint} anchors, {what}",
                    start.checkpoint,
                )
            )
    chain = await verify_chain(pool, start=start)
    if not chain.ok:
        raise AuditChainBrokenError(chain)
    checkpoint = Checkpoint.sign(
        keys,
        seq=previous.seq + 1 if previous else 1,
        audit_id=chain.last_id,
        chain_hash=chain.last_hash,
        records=chain.records,
        at=now,
        prev_mac=previous.mac if previous else GENESIS_MAC,
    )
    await asyncio.to_thread(store.write, checkpoint)
    return checkpoint


@dataclass(frozen=True)
class AuditVerdict:
    """What `python -m badges.cli.audit verify` reports."""

    ok: bool
    reason: str
    records_checked: int = 0
    checkpoints_checked: int = 0
    first_bad_id: int | None = None  # the record where the log stops matching
    first_bad_checkpoint: int | None = None  # the checkpoint that is bad, or that the log fails
    anchored_through: int | None = None  # the last record the newest checkpoint vouches for
    unanchored_records: int | None = None  # records after it: only the unkeyed chain covers them
    newest_checkpoint_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            **self.__dict__,
            "newest_checkpoint_at": self.newest_checkpoint_at.isoformat() if self.newest_checkpoint_at else None,
        }


async def verify_audit_log(
    pool: AsyncConnectionPool,
    store: CheckpointStore | None,
    keys: AnchorKeys | None,
    *,
    now: datetime,
    max_age: timedelta | None = None,
) -> AuditVerdict:
    """Check every checkpoint (`read_checkpoints`), then the chain through every point they vouch
    for; with `max_age`, also that the newest checkpoint is that recent (so checkpointing that
    stopped, or newer checkpoints removed, is noticed). Without a store and keys: the chain alone."""
    checkpoints: list[Checkpoint] = []
    if store is not None and keys is not None:
        try:
            checkpoints = await asyncio.to_thread(read_checkpoints, store, keys)
        except CheckpointError as error:
            return AuditVerdict(False, error.reason, first_bad_checkpoint=error.checkpoint)
    chain = await verify_chain(pool, anchors=[checkpoint.anchor() for checkpoint in checkpoints])
    newest = checkpoints[-1] if checkpoints else None
    verdict = AuditVerdict(
        chain.ok,
        chain.reason,
        records_checked=chain.records_checked,
        checkpoints_checked=len(checkpoints) if chain.ok else chain.anchors_checked,
        first_bad_id=chain.first_bad_id,
        first_bad_checkpoint=chain.first_bad_checkpoint,
        anchored_through=newest.audit_id if newest else None,
        unanchored_records=chain.records - newest.records if newest and chain.ok else None,
        newest_checkpoint_at=newest.at if newest else None,
    )
    if verdict.ok and max_age is not None and keys is not None:
        if newest is None:
            return replace(verdict, ok=False, reason="there is no checkpoint")
        if now - newest.at > max_age:
            reason = (
                f"the newest checkpoint, {newest.seq}, is from {newest.at.isoformat()}, older than {max_age}:"
                " checkpointing stopped, or newer checkpoints were removed"
            )
            return replace(verdict, ok=False, reason=reason, first_bad_checkpoint=newest.seq)
    return verdict
