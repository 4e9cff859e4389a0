"""Contacts: members connected with each other, both consenting (one invites with a single-use
code, the other accepts it), and each member's contacts group for the contacts release.

`member_contacts` holds a connection as two rows, one each way, so a member's contacts, their
count against the limit and their export are one index read; removing the connection (either
member may) deletes both in one transaction. `contact_invitations` keeps only a digest of each
code (the code is shown once, to its maker). `contact_groups` holds the member's group key (random,
stable, read only by its owner: the release publishes statistics under it, and nothing else ties
it to anyone) and what the newest contacts release decided for the group, with the reason when it
was not published. Every row goes with either member's erasure (cascade).

Hand-written on the psycopg pool: accepting locks both members (`consents.lock_member`, in id
order) and the invitation, so two acceptances at once cannot both pass the limit or both use a code.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base
from badges.db.consents import lock_member

CONTACTS_DIMENSION = "contacts"
CODE_BYTES = 12  # 16 characters of base64url: 96 bits, past guessing within an invitation's life


class MemberContact(Base):
    __tablename__ = "member_contacts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    connected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("user_id <> contact_id", name="not_self"),)


class ContactInvitation(Base):
    __tablename__ = "contact_invitations"

    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ContactGroupRow(Base):
    __tablename__ = "contact_groups"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The newest contacts release that considered the group: `released` (its values are in
    # `peer_stats` under that release) or `suppressed` (with the reason).
    release_id: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    noisy_count: Mapped[int | None] = mapped_column(Integer)


# --- errors ------------------------------------------------------------------------------------


class ContactError(Exception):
    """A refused invitation or acceptance: `kind` is the problem's slug, the message says why."""

    kind = "contact-refused"
    status = 409


class InvitationUnknown(ContactError):
    kind = "invitation-unknown"
    status = 404


class OwnInvitation(ContactError):
    kind = "own-invitation"
    status = 409


class InvitationExpired(ContactError):
    kind = "invitation-expired"
    status = 410


class InvitationUsed(ContactError):
    kind = "invitation-used"
    status = 410


class AlreadyConnected(ContactError):
    kind = "already-connected"
    status = 409


class ContactLimitReached(ContactError):
    kind = "contact-limit-reached"
    status = 409


# --- invitations and connections ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invitation:
    code: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Contact:
    contact_id: uuid.UUID
    connected_at: datetime


def code_digest(code: str) -> bytes:
    return hashlib.sha256(code.strip().encode()).digest()


async def _contact_count(conn: AsyncConnection[Any], user_id: uuid.UUID) -> int:
    cursor = await conn.execute("SELECT count(*) FROM member_contacts WHERE user_id = %s", (user_id,))
    return int((await cursor.fetchone() or (0,))[0])


async def create_invitation(
    pool: AsyncConnectionPool, user_id: uuid.UUID, *, now: datetime, valid_for: timedelta, limit: int
) -> Invitation:
    """A new single-use code for the member to give to someone; refused when they already have
    `limit` contacts (an acceptance would be refused anyway)."""
    code = secrets.token_urlsafe(CODE_BYTES)
    async with pool.connection() as conn, conn.transaction():
        await lock_member(conn, user_id)
        if await _contact_count(conn, user_id) >= limit:
            raise ContactLimitReached(f"You have {limit} contacts, the most one member may have: remove one first.")
        await conn.execute(
            "INSERT INTO contact_invitations (code_digest, user_id, created_at, expires_at) VALUES (%s, %s, %s, %s)",
            (code_digest(code), user_id, now, now + valid_for),
        )
    return Invitation(code, now, now + valid_for)


async def accept_invitation(
    pool: AsyncConnectionPool, user_id: uuid.UUID, code: str, *, now: datetime, limit: int
) -> Contact:
    """Connect the member with whoever made `code` (both ways), using the code up; refused with
    the reason (unknown, the member's own, expired, used, already connected, a limit reached)."""
    digest = code_digest(code)
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute("SELECT user_id FROM contact_invitations WHERE code_digest = %s", (digest,))
        found = await cursor.fetchone()
        if found is None:
            raise InvitationUnknown("No invitation has this code: check it, or ask for a new one.")
        inviter: uuid.UUID = found[0]
        if inviter == user_id:
            raise OwnInvitation("This is your own invitation: give it to the person you want to connect with.")
        for member in sorted((inviter, user_id)):  # one order everywhere: no deadlock between two acceptances
            await lock_member(conn, member)
        cursor = await conn.execute(
            "SELECT expires_at, used_at FROM contact_invitations WHERE code_digest = %s FOR UPDATE", (digest,)
        )
        state = await cursor.fetchone()
        if state is None:  # the inviter was erased meanwhile
            raise InvitationUnknown("No invitation has this code: check it, or ask for a new one.")
        expires_at, used_at = state
        if used_at is not None:
            raise InvitationUsed("This invitation has been used already: each code connects once. Ask for a new one.")
        if expires_at <= now:
            raise InvitationExpired(f"This invitation expired at {expires_at.isoformat()}: ask for a new one.")
        cursor = await conn.execute(
            "SELECT 1 FROM member_contacts WHERE user_id = %s AND contact_id = %s", (user_id, inviter)
        )
        if await cursor.fetchone() is not None:
            raise AlreadyConnected("You are connected with this member already.")
        if await _contact_count(conn, user_id) >= limit:
            raise ContactLimitReached(f"You have {limit} contacts, the most one member may have: remove one first.")
        if await _contact_count(conn, inviter) >= limit:
            raise ContactLimitReached(
                f"The member who invited you has {limit} contacts already, the most one may have."
            )
        async with conn.cursor() as batch:
            await batch.executemany(
                "INSERT INTO member_contacts (user_id, contact_id, connected_at) VALUES (%s, %s, %s)",
                [(user_id, inviter, now), (inviter, user_id, now)],
            )
            await batch.executemany(
                "INSERT INTO contact_groups (user_id, group_key, created_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (user_id) DO NOTHING",
                [(member, new_group_key(), now) for member in (user_id, inviter)],
            )
        await conn.execute("UPDATE contact_invitations SET used_at = %s WHERE code_digest = %s", (now, digest))
    return Contact(inviter, now)


def new_group_key() -> str:
    """A contacts group's key: random (so nobody but its owner can tell whose group it is)."""
    return secrets.token_urlsafe(16)


async def remove_contact(pool: AsyncConnectionPool, user_id: uuid.UUID, contact_id: uuid.UUID) -> bool:
    """End the connection, both ways; False when there was none."""
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(
            "DELETE FROM member_contacts WHERE (user_id = %s AND contact_id = %s)"
            " OR (user_id = %s AND contact_id = %s)",
            (user_id, contact_id, contact_id, user_id),
        )
        return cursor.rowcount > 0


async def member_contacts(pool: AsyncConnectionPool, user_id: uuid.UUID) -> list[Contact]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT contact_id, connected_at FROM member_contacts WHERE user_id = %s ORDER BY connected_at, contact_id",
            (user_id,),
        )
        return [Contact(*row) for row in await cursor.fetchall()]


async def pending_invitations(pool: AsyncConnectionPool, user_id: uuid.UUID, now: datetime) -> list[PendingInvitation]:
    """The member's invitations not yet used nor expired (their codes are not kept)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT created_at, expires_at FROM contact_invitations WHERE user_id = %s AND used_at IS NULL"
            " AND expires_at > %s ORDER BY created_at",
            (user_id, now),
        )
        return [PendingInvitation(*row) for row in await cursor.fetchall()]


# --- the contacts group and its release ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactGroup:
    """The member's contacts group as the newest contacts release left it; `stats`: its released
    values (None unless released)."""

    key: str
    release_id: uuid.UUID | None
    status: str | None
    reason: str | None
    noisy_count: int | None
    stats: dict[str, Any] | None


async def contact_group(pool: AsyncConnectionPool, user_id: uuid.UUID) -> ContactGroup | None:
    """The member's group; what a release decided only once that release is complete (an attempt
    that failed before completing leaves nothing the owner can read: its retry decides afresh)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT g.group_key, g.release_id, g.status, g.reason, g.noisy_count, s.stats, l.status"
            " FROM contact_groups g LEFT JOIN privacy_ledger l ON l.id = g.release_id"
            " LEFT JOIN peer_stats s ON s.release_id = g.release_id AND s.dimension = %s AND s.group_key = g.group_key"
            " WHERE g.user_id = %s",
            (CONTACTS_DIMENSION, user_id),
        )
        row = await cursor.fetchone()
    if row is None:
        return None
    if row[1] is not None and row[6] != "released":
        return ContactGroup(row[0], None, None, None, None, None)
    return ContactGroup(*row[:6])


@dataclass(frozen=True, slots=True)
class ContactRows:
    """What a contacts release reads: every group's key (its owner has had a contact), and one row
    per (group, consenting contact with inputs): the contact's savings rate (None: none)."""

    keys: list[str]
    groups: list[str]
    savings_rates: list[float | None]


_CONSENTING = (
    "SELECT user_id FROM consents WHERE scope = 'peer_comparison' AND revoked_at IS NULL AND expires_at > now()"
)


async def contact_rows(pool: AsyncConnectionPool, max_contacts: int) -> ContactRows:
    """One query for the rows, one for the keys (the groups of owners with active
    `peer_comparison` consent). A member counts in the groups of the contacts they are connected
    with while their `peer_comparison` consent is active and their inputs are
    kept, in at most `max_contacts` groups (their oldest connections), whatever the limit was
    when they connected: the privacy unit's bound holds by construction."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT group_key, savings_rate FROM ("
            " SELECT g.group_key, p.savings_rate, row_number() OVER"
            "  (PARTITION BY c.contact_id ORDER BY c.connected_at, c.user_id) AS n"
            " FROM member_contacts c JOIN contact_groups g ON g.user_id = c.user_id"
            f" JOIN ({_CONSENTING}) o ON o.user_id = g.user_id"
            " JOIN peer_inputs p ON p.user_id = c.contact_id"
            " JOIN consents s ON s.user_id = c.contact_id AND s.scope = 'peer_comparison'"
            "  AND s.revoked_at IS NULL AND s.expires_at > now()"
            ") counted WHERE n <= %s",
            (max_contacts,),
        )
        rows = await cursor.fetchall()
        # Only the groups of owners who consent now: nothing is measured for anyone else.
        cursor = await conn.execute(
            f"SELECT g.group_key FROM contact_groups g JOIN ({_CONSENTING}) o ON o.user_id = g.user_id"
            " ORDER BY g.group_key"
        )
        keys = [row[0] for row in await cursor.fetchall()]
    return ContactRows(keys, [row[0] for row in rows], [row[1] for row in rows])


@dataclass(frozen=True, slots=True)
class GroupOutcome:
    status: str  # `released` or `suppressed`
    reason: str | None
    noisy_count: int | None


async def record_outcomes(
    pool: AsyncConnectionPool, release_id: uuid.UUID, outcomes: Mapping[str, GroupOutcome]
) -> None:
    """What a contacts release decided for each group, for its owner to read once the release is
    complete (`contact_group`): written before the release's values, so a completed release
    always has them. Only while the release is still reserved: holding its ledger row (as
    `complete_release` does), so an attempt that outlived its retry cannot overwrite what the
    completed release published with another draw of the noise."""
    async with pool.connection() as conn, conn.transaction(), conn.cursor() as batch:
        await batch.execute("SELECT status FROM privacy_ledger WHERE id = %s FOR UPDATE", (release_id,))
        row = await batch.fetchone()
        if row is None or row[0] != "reserved":
            raise ValueError(f"contacts release {release_id} is not reserved: its outcomes are not written")
        await batch.executemany(
            "UPDATE contact_groups SET release_id = %s, status = %s, reason = %s, noisy_count = %s"
            " WHERE group_key = %s",
            [(release_id, o.status, o.reason, o.noisy_count, key) for key, o in outcomes.items()],
        )


async def record_suppressed_everywhere(pool: AsyncConnectionPool, keys: Sequence[str], reason: str) -> None:
    """A contacts release that could not publish any group (decided before any measurement):
    every group's owner is told why, and no release is named."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE contact_groups SET release_id = NULL, status = 'suppressed', reason = %s, noisy_count = NULL"
            " WHERE group_key = ANY(%s)",
            (reason, list(keys)),
        )
