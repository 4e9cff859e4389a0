"""Contacts end to end: an invitation connects two members once (and says why not otherwise),
either removes the connection, erasure and export take the member's connections and invitations,
only consenting contacts with inputs count (in at most N groups each), a member whose group is not
released is told why, and a release on the real Temporal publishes a large enough group under its
owner's key with the loss its measurements' privacy maps give."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from badges.activities.contact_stats import ContactStatsActivities
from badges.activities.peer_awards import PeerAwardActivities
from badges.activities.peer_stats import PeerStatsActivities
from badges.api.routes.contacts import group_view
from badges.config import Settings
from badges.db.consents import delete_scope_data
from badges.db.contacts import (
    ContactLimitReached,
    GroupOutcome,
    accept_invitation,
    contact_group,
    contact_rows,
    create_invitation,
    member_contacts,
    record_outcomes,
    record_suppressed_everywhere,
)
from badges.db.engine import make_engine
from badges.db.exports import export_sections, section_rows
from badges.db.keys import KeyStore, MasterKeys
from badges.db.peers import Budget, complete_release, ledger_entry, released_groups, reserve_release
from badges.db.pool import open_pool
from badges.domain.contacts import ContactsPlan
from badges.messages.peer_stats import PeerReleaseOutcome, PeerReleaseRequest
from badges.workflows.peer_stats import PeerStatsReleaseWorkflow
from tests.conftest import fresh_database, make_settings
from tests.integration.test_behaviour import consent
from tests.support import dev_token, eventually

pytestmark = pytest.mark.usefixtures("worker")
HOUR = timedelta(hours=1)


async def member(client: httpx.AsyncClient) -> tuple[dict[str, str], uuid.UUID]:
    headers = await dev_token(client, f"contact-{uuid.uuid4()}@example.com")
    user_id = (await client.get("/v1/me", headers=headers)).json()["userId"]
    return headers, uuid.UUID(user_id)


async def plain_members(pool: AsyncConnectionPool, count: int, *, consenting: bool, inputs: bool) -> list[uuid.UUID]:
    """Members written as the API and an evaluation would (no token needed): with or without
    active `peer_comparison` consent and kept inputs."""
    members = [uuid.uuid4() for _ in range(count)]
    expires = datetime.now(UTC) + timedelta(days=30)
    async with pool.connection() as db, db.transaction(), db.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO members (id, subject_digest) VALUES (%s, %s)", [(m, m.bytes * 2) for m in members]
        )
        if consenting:
            await cursor.executemany(
                "INSERT INTO consents (user_id, scope, purpose, granted_at, expires_at)"
                " VALUES (%s, 'peer_comparison', 'peers', now(), %s)",
                [(m, expires) for m in members],
            )
        if inputs:
            await cursor.executemany(
                "INSERT INTO peer_inputs (user_id, seq, computed_at, savings_rate, spending)"
                " VALUES (%s, 1, now(), %s, %s)",
                [(m, 0.10 + index / 1000, Jsonb({})) for index, m in enumerate(members)],
            )
    return members


async def connect(pool: AsyncConnectionPool, owner: uuid.UUID, others: list[uuid.UUID], limit: int = 25) -> None:
    now = datetime.now(UTC)
    for other in others:
        made = await create_invitation(pool, owner, now=now, valid_for=HOUR, limit=limit)
        await accept_invitation(pool, other, made.code, now=now, limit=limit)


async def test_an_invitation_connects_two_members_once_and_says_why_not_otherwise(
    client: httpx.AsyncClient, pool: AsyncConnectionPool
) -> None:
    (alice, alice_id), (bob, bob_id) = await member(client), await member(client)
    made = await client.post("/v1/me/contacts/invitations", headers=alice)
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    listed = (await client.get("/v1/me/contacts", headers=alice)).json()
    assert listed["contacts"] == [] and len(listed["invitations"]) == 1 and listed["most"] == 25

    own = await client.post("/v1/me/contacts", json={"code": code}, headers=alice)
    assert own.status_code == 409 and own.json()["type"] == "urn:badges:problem:own-invitation"
    unknown = await client.post("/v1/me/contacts", json={"code": "not-a-real-code"}, headers=bob)
    assert unknown.status_code == 404 and unknown.json()["type"] == "urn:badges:problem:invitation-unknown"

    accepted = await client.post("/v1/me/contacts", json={"code": code}, headers=bob)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["contactId"] == str(alice_id)
    for headers, other in ((alice, bob_id), (bob, alice_id)):
        body = (await client.get("/v1/me/contacts", headers=headers)).json()
        assert [c["contactId"] for c in body["contacts"]] == [str(other)]
        assert body["group"]["status"] == "not_released" and body["group"]["key"]
    assert (await client.get("/v1/me/contacts", headers=alice)).json()["invitations"] == []

    (carol, _) = await member(client)
    used = await client.post("/v1/me/contacts", json={"code": code}, headers=carol)
    assert used.status_code == 410 and used.json()["type"] == "urn:badges:problem:invitation-used"
    again = (await client.post("/v1/me/contacts/invitations", headers=alice)).json()["code"]
    twice = await client.post("/v1/me/contacts", json={"code": again}, headers=bob)
    assert twice.status_code == 409 and twice.json()["type"] == "urn:badges:problem:already-connected"

    late = await create_invitation(pool, alice_id, now=datetime.now(UTC) - 2 * HOUR, valid_for=HOUR, limit=25)
    expired = await client.post("/v1/me/contacts", json={"code": late.code}, headers=carol)
    assert expired.status_code == 410 and expired.json()["type"] == "urn:badges:problem:invitation-expired"

    # Either may remove the connection: it ends for both.
    assert (await client.delete(f"/v1/me/contacts/{alice_id}", headers=bob)).status_code == 204
    for headers in (alice, bob):
        assert (await client.get("/v1/me/contacts", headers=headers)).json()["contacts"] == []
    gone = await client.delete(f"/v1/me/contacts/{alice_id}", headers=bob)
    assert gone.status_code == 404


async def test_a_member_has_at_most_the_limit_of_contacts(pool: AsyncConnectionPool) -> None:
    owner, first, second = await plain_members(pool, 3, consenting=False, inputs=False)
    await connect(pool, owner, [first], limit=1)
    with pytest.raises(ContactLimitReached, match="You have 1 contacts"):
        await create_invitation(pool, owner, now=datetime.now(UTC), valid_for=HOUR, limit=1)
    # The invitee's side is held to it too.
    made = await create_invitation(pool, second, now=datetime.now(UTC), valid_for=HOUR, limit=2)
    with pytest.raises(ContactLimitReached, match="You have 1 contacts"):
        await accept_invitation(pool, first, made.code, now=datetime.now(UTC), limit=1)


async def test_only_consenting_contacts_with_inputs_count_and_each_in_at_most_n_groups(
    pool: AsyncConnectionPool,
) -> None:
    (owner,) = await plain_members(pool, 1, consenting=True, inputs=False)  # (an owner who consents)
    (counted,) = await plain_members(pool, 1, consenting=True, inputs=True)
    (no_consent,) = await plain_members(pool, 1, consenting=False, inputs=True)
    (no_inputs,) = await plain_members(pool, 1, consenting=True, inputs=False)
    await connect(pool, owner, [counted, no_consent, no_inputs])
    group = await contact_group(pool, owner)
    assert group is not None
    rows = await contact_rows(pool, max_contacts=25)
    assert group.key in rows.keys
    assert [g for g in rows.groups if g == group.key] == [group.key]  # the consenting contact only

    # A member with more connections than N (the limit was lowered since) counts in N groups only.
    owners = await plain_members(pool, 3, consenting=True, inputs=False)
    (busy,) = await plain_members(pool, 1, consenting=True, inputs=True)
    for one in owners:
        await connect(pool, one, [busy])
    keys = {(await contact_group(pool, one)).key for one in owners}  # type: ignore[union-attr]
    bounded = await contact_rows(pool, max_contacts=2)
    assert sum(1 for g in bounded.groups if g in keys) == 2


async def test_erasure_takes_the_members_connections_both_ways_and_export_holds_them(
    client: httpx.AsyncClient, pool: AsyncConnectionPool, keys: KeyStore
) -> None:
    headers, user_id = await member(client)
    friends = await plain_members(pool, 2, consenting=False, inputs=False)
    await connect(pool, user_id, friends)
    assert (await client.post("/v1/me/contacts/invitations", headers=headers)).status_code == 201

    async with pool.connection() as db:
        sections = await export_sections(db)
        assert {"member_contacts", "contact_invitations", "contact_groups"} <= set(sections)
        assert sections.count("member_contacts") == 1
        contacts = await section_rows(db, keys, user_id, "member_contacts")
        invitations = await section_rows(db, keys, user_id, "contact_invitations")
    assert sorted(row["contact_id"] for row in contacts) == sorted(str(f) for f in friends)
    assert len(invitations) == 3 and all("code_digest" not in row for row in invitations)

    assert (await client.delete("/v1/me", headers=headers)).status_code == 200

    async def erased() -> bool:
        async with pool.connection() as db:
            cursor = await db.execute(
                "SELECT (SELECT count(*) FROM member_contacts WHERE user_id = %(m)s OR contact_id = %(m)s)"
                " + (SELECT count(*) FROM contact_invitations WHERE user_id = %(m)s)"
                " + (SELECT count(*) FROM contact_groups WHERE user_id = %(m)s)",
                {"m": user_id},
            )
            row = await cursor.fetchone()
        return row is not None and row[0] == 0

    await eventually(erased, timeout=60)
    # The friends keep their own groups; the erased member is in none of them.
    async with pool.connection() as db:
        cursor = await db.execute("SELECT count(*) FROM member_contacts WHERE user_id = ANY(%s)", (friends,))
        assert (await cursor.fetchone() or (1,))[0] == 0


async def test_a_member_whose_group_cannot_be_released_is_told_why(
    client: httpx.AsyncClient, pool: AsyncConnectionPool, system_settings: Settings
) -> None:
    headers, user_id = await member(client)
    await consent(client, headers, "peer_comparison")
    few = await plain_members(pool, 2, consenting=True, inputs=True)
    await connect(pool, user_id, few)
    group = (await client.get("/v1/me/contacts", headers=headers)).json()["group"]
    assert group["status"] == "not_released"
    assert group["reason"] == "your contacts group has fewer than 10 consenting members: you have 2 contacts"

    # Enough contacts, but at the default budget no contacts group can be told from the noise:
    # the release measures nothing, spends nothing, and every owner reads why.
    await connect(pool, user_id, await plain_members(pool, 10, consenting=True, inputs=True))
    activities = ContactStatsActivities(pool, system_settings)
    release_id = uuid.uuid4()
    outcome = await activities.release_contact_stats(release_id, PeerReleaseRequest())
    assert outcome.status == "futile" and outcome.epsilon == 0.0
    assert await ledger_entry(pool, release_id) is None
    group = (await client.get("/v1/me/contacts", headers=headers)).json()["group"]
    assert group["status"] == "not_released" and group["stats"] is None
    assert group["reason"].startswith("too few for a useful comparison at this privacy budget")
    stored = await contact_group(pool, user_id)
    assert stored is not None and stored.status == "suppressed" and stored.reason == group["reason"]


@pytest.fixture
async def generous(
    admin_url: str, dev_server: WorkflowEnvironment
) -> AsyncIterator[tuple[Settings, AsyncConnectionPool]]:
    """A database of its own (its ledger spends far past the shared one's budget) with settings
    under which groups of five contacts can be published, and a worker of its own for the release."""
    target = dev_server.client.service_client.config.target_host
    with fresh_database(admin_url) as url:
        settings = make_settings(
            url,
            target,
            BADGES_CONTACTS_MAX="5",
            BADGES_CONTACTS_MIN_GROUP_SIZE="3",
            BADGES_CONTACTS_RELEASE_EPSILON="150",
            BADGES_PEER_YEARLY_EPSILON="1000",
        )
        pool = await open_pool(settings.libpq_url)
        engine = make_engine(settings.database_url)
        try:
            async with Worker(
                dev_server.client,
                task_queue=settings.batch_queue,
                workflows=[PeerStatsReleaseWorkflow],
                activities=[
                    PeerStatsActivities(pool, engine, settings).release_peer_stats,
                    ContactStatsActivities(pool, settings).release_contact_stats,
                    PeerAwardActivities(
                        pool,
                        engine,
                        dev_server.client,
                        settings,
                        KeyStore(engine, MasterKeys(settings.parsed_master_keys)),
                    ).award_comparative_badges,
                ],
            ):
                yield settings, pool
        finally:
            await pool.close()
            await engine.dispose()


async def test_a_release_publishes_a_large_enough_contacts_group_under_its_owners_key(
    generous: tuple[Settings, AsyncConnectionPool], dev_server: WorkflowEnvironment
) -> None:
    settings, pool = generous
    big_owner, small_owner = await plain_members(pool, 2, consenting=True, inputs=True)
    await connect(pool, big_owner, await plain_members(pool, 5, consenting=True, inputs=True), limit=5)
    await connect(pool, small_owner, await plain_members(pool, 1, consenting=True, inputs=True), limit=5)

    outcome = await dev_server.client.execute_workflow(
        PeerStatsReleaseWorkflow.run,
        PeerReleaseRequest(requested_by="operator"),
        id=f"peers/release-{uuid.uuid4()}",
        task_queue=settings.batch_queue,
        result_type=PeerReleaseOutcome,
    )
    assert outcome.status == "released"  # the main release (every dimension, whatever the badges)
    contacts = outcome.contacts
    assert contacts is not None and contacts.status == "released", contacts
    # Every member with a contact has a group: the six others hold one member each.
    assert contacts.groups == 1 and contacts.suppressed == 7

    entry = await ledger_entry(pool, contacts.release_id)
    assert entry is not None and entry.status == "released" and entry.requested_by == "operator"
    spent = sum(query["epsilon"] for query in entry.parameters["queries"])
    assert entry.epsilon == pytest.approx(contacts.epsilon) == pytest.approx(spent, rel=1e-9)
    assert entry.epsilon <= 150 + 1e-6 and entry.parameters["maxContacts"] == 5

    big, small = await contact_group(pool, big_owner), await contact_group(pool, small_owner)
    assert big is not None and small is not None
    published = await released_groups(pool, contacts.release_id)
    assert [(g.dimension, g.key) for g in published] == [("contacts", big.key)]
    assert big.status == "released" and big.stats is not None and big.stats["savingsRate.p50"] is not None
    plan = ContactsPlan(5, 3, 150.0)
    assert small.status == "suppressed" and small.reason == plan.too_small()
    view = group_view(small, contacts=1, consents=True, plan=plan)
    assert view.status == "not_released" and view.reason is not None and "fewer than 3" in view.reason


async def test_what_a_release_decided_is_read_only_once_the_release_is_complete(pool: AsyncConnectionPool) -> None:
    owner, friend = await plain_members(pool, 2, consenting=True, inputs=True)
    await connect(pool, owner, [friend])
    release_id = uuid.uuid4()
    # A release reserved (far from today: no other test's budget is touched) whose attempt wrote
    # its decisions and then failed before completing: the owner reads none of them.
    reserved = await reserve_release(
        pool,
        release_id,
        0.0,
        Budget(1.0, 12.0),
        requested_by="schedule",
        mechanism="test",
        parameters={"dimension": "contacts"},  # a contacts release, as they are recorded
        now=datetime(2102, 1, 1, tzinfo=UTC),
    )
    assert reserved.status == "reserved"
    key = (await contact_group(pool, owner)).key  # type: ignore[union-attr]
    await record_outcomes(pool, release_id, {key: GroupOutcome("suppressed", "too small", 1)})
    seen = await contact_group(pool, owner)
    assert seen is not None and (seen.status, seen.reason, seen.noisy_count) == (None, None, None)
    await complete_release(
        pool,
        release_id,
        epsilon=0.0,
        delta=0.0,
        population=1,
        parameters={"dimension": "contacts"},  # a contacts release, as they are recorded
        groups=[],
        now=datetime(2102, 1, 1, tzinfo=UTC),
    )
    seen = await contact_group(pool, owner)
    assert seen is not None and (seen.status, seen.reason, seen.noisy_count) == ("suppressed", "too small", 1)


async def test_ending_peer_comparison_clears_what_a_release_decided_about_the_members_group(
    pool: AsyncConnectionPool,
) -> None:
    owner, friend = await plain_members(pool, 2, consenting=True, inputs=True)
    await connect(pool, owner, [friend])
    key = (await contact_group(pool, owner)).key  # type: ignore[union-attr]
    await record_suppressed_everywhere(pool, [key], "too few")
    async with pool.connection() as db, db.transaction():
        # The inputs and the group's outcome go; the connection and the group's key stay.
        assert await delete_scope_data(db, owner, "peer_comparison") == 2
    group = await contact_group(pool, owner)
    assert group is not None and group.key == key and group.status is None and group.reason is None
    assert [c.contact_id for c in await member_contacts(pool, owner)] == [friend]


async def test_nothing_is_measured_for_an_owner_without_peer_comparison_consent(pool: AsyncConnectionPool) -> None:
    (owner,) = await plain_members(pool, 1, consenting=False, inputs=False)
    (consenting_owner,) = await plain_members(pool, 1, consenting=True, inputs=True)
    friends = await plain_members(pool, 3, consenting=True, inputs=True)
    await connect(pool, owner, friends)
    await connect(pool, consenting_owner, friends)
    found = await contact_rows(pool, 25)
    mine, theirs = await contact_group(pool, owner), await contact_group(pool, consenting_owner)
    assert mine is not None and theirs is not None
    # The friends count in the consenting owner's group, and nothing is kept for the other's.
    assert mine.key not in found.keys and mine.key not in found.groups
    assert theirs.key in found.keys and found.groups.count(theirs.key) == 3
