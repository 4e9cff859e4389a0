"""Reads of released peer statistics: the latest (or a named) release, a group's released values,
a group's series over releases, and what a member's own comparison needs (their consent, their
own `peer_inputs` row and the latest release, in one statement).

A comparison reads the member's own row and the precomputed release (`peer_stats`) only, never
another member's row. Hand-written on the psycopg pool: `GET /v1/me/comparisons` is on a
member's screen, so it takes two statements (the member and the release; the member's groups).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from badges.db.peers import SCOPE, ReleasedGroup
from badges.domain.peers import PeerInput

_INPUT_FIELDS = {f.name for f in dataclasses.fields(PeerInput)}
# Columns of `peer_inputs` that are bookkeeping, not a figure or a group key.
_BOOKKEEPING = {"user_id", "seq", "computed_at"}


@dataclass(frozen=True, slots=True)
class ReleaseSummary:
    """A released release as the ledger records it."""

    release_id: uuid.UUID
    released_at: datetime
    epsilon: float
    delta: float
    population: int | None
    groups_released: int | None
    # The dimensions it was planned for (None: the ledger does not say; read them from its groups).
    dimensions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MemberInputs:
    """A member's own row of `peer_inputs`: their figures, and every column this code does not
    know by name (another dimension's group key, say), by column name."""

    computed_at: datetime
    figures: PeerInput
    other: dict[str, Any]


@dataclass(frozen=True)
class MemberComparisonInputs:
    consented: bool
    inputs: MemberInputs | None
    release: ReleaseSummary | None
    # The member's own newest evaluation, sealed with their key (`member_insights`); None: none.
    sealed_insights: bytes | None = None


_RELEASE_COLUMNS = (
    "l.id, l.completed_at, l.epsilon, l.delta, l.population, l.groups_released, l.parameters->'dimensions'"
)
# The releases of peer groups; a contacts release (its own ledger entry, `"dimension": "contacts"`
# in its parameters) is read through the member's contacts group instead (db/contacts.py).
_GROUP_RELEASES = "status = 'released' AND parameters->>'dimension' IS DISTINCT FROM 'contacts'"
_LATEST = (
    "SELECT id, completed_at, epsilon, delta, population, groups_released, parameters FROM privacy_ledger"
    f" WHERE {_GROUP_RELEASES} ORDER BY completed_at DESC, id DESC LIMIT 1"
)


def _summary(row: Sequence[Any]) -> ReleaseSummary | None:
    if row[0] is None:
        return None
    dimensions = row[6]
    return ReleaseSummary(
        release_id=row[0],
        released_at=row[1],
        epsilon=float(row[2]),
        delta=float(row[3]),
        population=row[4],
        groups_released=row[5],
        dimensions=tuple(str(d) for d in dimensions) if isinstance(dimensions, list) else None,
    )


def _member_inputs(row: dict[str, Any] | None) -> MemberInputs | None:
    """The row (as `to_jsonb` gives it) as the member's figures and other columns."""
    if row is None:
        return None
    known = {name: value for name, value in row.items() if name in _INPUT_FIELDS}
    if known.get("month"):
        known["month"] = date.fromisoformat(str(known["month"]))
    known["spending"] = {str(k): int(v) for k, v in (known.get("spending") or {}).items()}
    other = {name: value for name, value in row.items() if name not in _INPUT_FIELDS | _BOOKKEEPING}
    return MemberInputs(datetime.fromisoformat(str(row["computed_at"])), PeerInput(**known), other)


async def member_comparison_inputs(pool: AsyncConnectionPool, user_id: uuid.UUID) -> MemberComparisonInputs:
    """Whether the member's `peer_comparison` consent is active, their own inputs (None: none
    kept yet), their own newest evaluation (sealed) and the latest release (None: none yet), in
    one statement. Only the member's own rows of `peer_inputs` and `member_insights` are read (by
    their primary keys)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT EXISTS (SELECT 1 FROM consents WHERE user_id = %(user)s AND scope = %(scope)s"
            "   AND revoked_at IS NULL AND expires_at > now()),"
            " (SELECT to_jsonb(p) FROM peer_inputs p WHERE p.user_id = %(user)s),"
            " (SELECT i.sealed FROM member_insights i WHERE i.user_id = %(user)s), "
            + _RELEASE_COLUMNS
            + " FROM (SELECT 1) AS one LEFT JOIN LATERAL ("
            + _LATEST
            + ") AS l ON true",
            {"user": user_id, "scope": SCOPE},
        )
        row = await cursor.fetchone()
    assert row is not None
    sealed = None if row[2] is None else bytes(row[2])
    return MemberComparisonInputs(bool(row[0]), _member_inputs(row[1]), _summary(row[3:]), sealed)


async def release_summary(pool: AsyncConnectionPool, release_id: uuid.UUID | None = None) -> ReleaseSummary | None:
    """The named release (None: the latest) if it was released."""
    query = (
        f"SELECT {_RELEASE_COLUMNS} FROM ({_LATEST}) AS l"
        if release_id is None
        else f"SELECT {_RELEASE_COLUMNS} FROM privacy_ledger l WHERE l.id = %s AND l.status = 'released'"
        " AND l.parameters->>'dimension' IS DISTINCT FROM 'contacts'"
    )
    async with pool.connection() as conn:
        cursor = await conn.execute(query, () if release_id is None else (release_id,))
        row = await cursor.fetchone()
    return None if row is None else _summary(row)


async def published_groups(
    pool: AsyncConnectionPool, release_id: uuid.UUID, candidates: Sequence[tuple[str, str, str]]
) -> list[ReleasedGroup]:
    """Of the (dimension, level, key) groups asked for, those the release published (by the
    primary key: one index probe each)."""
    if not candidates:
        return []
    dimensions, levels, keys = (list(column) for column in zip(*candidates, strict=True))
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT s.dimension, s.level, s.group_key, s.noisy_count, s.stats FROM peer_stats s"
            " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS c(dimension, level, group_key)"
            " ON s.dimension = c.dimension AND s.level = c.level AND s.group_key = c.group_key"
            " WHERE s.release_id = %s",
            (dimensions, levels, keys, release_id),
        )
        return [ReleasedGroup(*row) for row in await cursor.fetchall()]


# Releases never change once released: the dimensions each has groups in are kept here.
_DIMENSIONS: dict[uuid.UUID, tuple[str, ...]] = {}


async def release_dimensions(pool: AsyncConnectionPool, release: ReleaseSummary) -> tuple[str, ...]:
    """The dimensions a release covers: those it was planned for and any it published a group in."""
    found = _DIMENSIONS.get(release.release_id)
    if found is None:
        async with pool.connection() as conn:
            # A skip scan over the primary key: one probe per dimension, not one per group.
            cursor = await conn.execute(
                "WITH RECURSIVE d(dimension) AS ("
                " (SELECT dimension FROM peer_stats WHERE release_id = %(r)s ORDER BY dimension LIMIT 1)"
                " UNION ALL SELECT (SELECT s.dimension FROM peer_stats s WHERE s.release_id = %(r)s"
                "   AND s.dimension > d.dimension ORDER BY s.dimension LIMIT 1) FROM d WHERE d.dimension IS NOT NULL)"
                " SELECT dimension FROM d WHERE dimension IS NOT NULL",
                {"r": release.release_id},
            )
            published = [row[0] for row in await cursor.fetchall()]
        found = tuple(dict.fromkeys([*(release.dimensions or ()), *published]))
        if len(_DIMENSIONS) > 1_000:
            _DIMENSIONS.clear()
        _DIMENSIONS[release.release_id] = found
    return found


@dataclass(frozen=True, slots=True)
class GroupInRelease:
    release: ReleaseSummary
    group: ReleasedGroup | None  # None: not published in that release


async def group_series(
    pool: AsyncConnectionPool, dimension: str, level: str, key: str, releases: int
) -> list[GroupInRelease]:
    """The group in each of the last `releases` releases, oldest first (None where it was not
    published)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {_RELEASE_COLUMNS}, s.noisy_count, s.stats FROM (SELECT * FROM privacy_ledger"
            f" WHERE {_GROUP_RELEASES} ORDER BY completed_at DESC, id DESC LIMIT %s) AS l"
            " LEFT JOIN peer_stats s ON s.release_id = l.id AND s.dimension = %s AND s.level = %s AND s.group_key = %s"
            " ORDER BY l.completed_at, l.id",
            (releases, dimension, level, key),
        )
        rows = await cursor.fetchall()
    series = []
    for row in rows:
        summary = _summary(row[:7])
        assert summary is not None
        group = None if row[7] is None else ReleasedGroup(dimension, level, key, row[7], row[8])
        series.append(GroupInRelease(summary, group))
    return series


# --- the comparative badges' candidates (the release workflow, not a member's read) -----------


@dataclass(frozen=True)
class Candidate:
    user_id: uuid.UUID
    inputs: MemberInputs


async def award_candidates(
    pool: AsyncConnectionPool, min_savings_rate: float, after: uuid.UUID | None = None, limit: int = 50_000
) -> list[Candidate]:
    """Consenting members whose savings rate is at least `min_savings_rate` (the lowest threshold
    any group released): the only ones a comparative badge on the savings rate can go to. A page
    of at most `limit`, by member id after `after`."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT p.user_id, to_jsonb(p) FROM peer_inputs p JOIN consents c ON c.user_id = p.user_id"
            " AND c.scope = %s AND c.revoked_at IS NULL AND c.expires_at > now()"
            " WHERE p.savings_rate >= %s AND p.user_id > %s ORDER BY p.user_id LIMIT %s",
            (SCOPE, min_savings_rate, after or uuid.UUID(int=0), limit),
        )
        rows = await cursor.fetchall()
    found = []
    for user_id, row in rows:
        inputs = _member_inputs(row)
        assert inputs is not None
        found.append(Candidate(user_id, inputs))
    return found
