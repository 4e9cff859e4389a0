"""Work kept in flight while a fault happens, and what must hold once it is over.

Members vote (signed, as the voting system posts votes) and use calculators (their own token),
each event retried with the same id until the API accepts it (202) or says it already has it
(200), as a client does; each member follows their SSE stream, reconnecting with `Last-Event-ID`
whenever it ends; banks add transactions and fire webhooks. Afterwards: every accepted event
counted exactly once, no award or reward twice, every stream holds each of the member's outbox
rows once, in order, and stored bank data is the bank's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from badges.domain.rules import SINGLE_INSTANCE
from tests.chaos.conftest import LONG, Linked, System
from tests.integration.test_open_banking import connection, fire, link, stored, truth
from tests.support import EventSystem, dev_token, eventually, real_time_event, sse_events

MEMBERS = 12 if LONG else 4
EVENT_GAP = 0.35  # seconds between one member's events (votes and calculator uses by turns)
# Of each type, at most this many a minute from one member: the anti-gaming screen holds more than
# 30 for review instead of counting them (badges/domain/plausibility.py).
PER_MINUTE = 28
RETRY_GAP = 0.25
BANK_GAP = 1.0  # seconds between a bank's new transactions
CONVERGE = 180 if LONG else 90  # seconds the system may take to catch up after a fault
# The badges the events feed: votes active-voter (5, once) and civic-voice (tiers at 10, 50, 100);
# calculator uses calculator-explorer (3) and calculator-collector (5 different calculators).
TIERS = {"bronze": 10, "silver": 50, "gold": 100}


@dataclass
class Member:
    sub: str
    headers: dict[str, str]
    user_id: uuid.UUID
    votes: list[str] = field(default_factory=list)  # ids of accepted events, in the order accepted
    tools: list[str] = field(default_factory=list)
    votes_at: list[float] = field(default_factory=list)  # when each was first posted (loop time)
    tools_at: list[float] = field(default_factory=list)
    received: list[int] = field(default_factory=list)  # stream ids, in the order received
    connects: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Findings:
    events: int = 0
    retries: int = 0
    slowest: float = 0.0
    stream_messages: int = 0
    reconnects: int = 0
    awards: int = 0
    rewards: int = 0
    bank_transactions: int = 0
    relinked: int = 0

    def __str__(self) -> str:
        return (
            f"{self.events} events accepted ({self.retries} retries, the slowest after {self.slowest} s), "
            "each counted once; "
            f"{self.stream_messages} stream messages over {self.reconnects} reconnects, none missing or repeated; "
            f"{self.awards} awards and {self.rewards} rewards, none twice; "
            f"bank data equal to the bank's ({self.bank_transactions} transactions, {self.relinked} re-linked)"
        )


class Load:
    def __init__(self, system: System, members: list[Member], via: httpx.AsyncClient) -> None:
        self.system = system
        self.members = members
        self.via = via  # the API process events are posted to
        self.voting = EventSystem(via, system.system.integration_id, system.system.secret)
        self.posting = asyncio.Event()
        self.retries = 0
        self.slowest = 0.0  # seconds from an event's first post to its acceptance
        self.bank_transactions: list[str] = []
        self._posters: list[asyncio.Task[None]] = []
        self._streams: list[asyncio.Task[None]] = []

    @classmethod
    async def start(cls, system: System, *, members: int = MEMBERS, via: httpx.AsyncClient | None = None) -> Load:
        """New members, their streams open (on `system.client`'s API process), then events (posted
        through `via`, by default the same process) and bank transactions flowing."""
        joined = []
        for _ in range(members):
            sub = f"chaos-{uuid.uuid4()}"
            headers = await dev_token(system.client, sub)
            me = await system.client.get("/v1/me", headers=headers)
            joined.append(Member(sub, headers, uuid.UUID(me.json()["userId"])))
        load = cls(system, joined, via or system.client)
        load._streams = [asyncio.create_task(load.follow(member)) for member in joined]
        await asyncio.wait_for(asyncio.gather(*(member.connected.wait() for member in joined)), 30)
        load.posting.set()
        load._posters = [asyncio.create_task(load.act(member)) for member in joined]
        load._posters += [asyncio.create_task(load.bank(linked)) for linked in system.banks]
        return load

    async def stop_posting(self) -> None:
        """Every event and bank change in flight finishes (an event: is accepted); no new ones start."""
        self.posting.clear()
        await asyncio.gather(*self._posters)

    async def close(self) -> None:
        for task in self._streams:
            task.cancel()
        for task in self._streams:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- in flight ----------------------------------------------------------------------------

    async def act(self, member: Member) -> None:
        """Votes (signed, from the voting system) and calculator uses (the member's own token,
        each a different calculator), by turns."""
        n = 0
        while self.posting.is_set():
            if n % 2 == 0:
                await self.plausibly(member.votes_at)
                event = real_time_event(f"vote-{n}", member.sub, "voting", propositionId=f"p{n}")
                await self.deliver(event, self.voting.post)
                member.votes.append(event["id"])
            else:
                await self.plausibly(member.tools_at)
                event = real_time_event(f"tool-{n}", member.sub, "tool_usage", calculatorId=f"calculator-{n}")
                await self.deliver(event, lambda body: self.via.post("/v1/events", json=body, headers=member.headers))
                member.tools.append(event["id"])
            n += 1
            await asyncio.sleep(EVENT_GAP)

    async def plausibly(self, sent: list[float]) -> None:
        """Wait until one more event of a type keeps it within PER_MINUTE; note when it goes."""
        now = asyncio.get_running_loop().time()
        recent = [at for at in sent if at > now - 60]
        if len(recent) >= PER_MINUTE:
            await asyncio.sleep(recent[-PER_MINUTE] + 60 - now)
        sent.append(asyncio.get_running_loop().time())

    async def deliver(self, event: dict[str, Any], post: Callable[[dict[str, Any]], Awaitable[httpx.Response]]) -> None:
        """Post until accepted (202) or known (200), whatever is down meanwhile."""
        began = asyncio.get_running_loop().time()
        while True:
            try:
                response = await post(event)
                if response.status_code in (200, 202):
                    self.slowest = max(self.slowest, asyncio.get_running_loop().time() - began)
                    return
                assert response.status_code in (429, 500, 502, 503, 504), response.text
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < began + CONVERGE, f"event {event['id']} never accepted"
            self.retries += 1
            await asyncio.sleep(RETRY_GAP)

    async def follow(self, member: Member) -> None:
        """The member's stream, resumed from the last id seen whenever it ends (as an EventSource)."""
        while True:
            last = {"Last-Event-ID": str(member.received[-1])} if member.received else {}
            try:
                async with self.system.client.stream(
                    "GET", "/v1/me/stream", headers={**member.headers, **last}, timeout=httpx.Timeout(10, read=None)
                ) as response:
                    if response.status_code == 200:
                        member.connects += 1
                        member.connected.set()
                        async for item in sse_events(response):
                            if item.id is not None:
                                member.received.append(item.id)
            except httpx.TransportError:
                pass
            await asyncio.sleep(RETRY_GAP)

    async def bank(self, linked: Linked) -> None:
        """New card transactions at the bank and the webhook that says so (lost while the API is down:
        the next one, or the final catch-up, brings them)."""
        n = 0
        while self.posting.is_set():
            created = await self.system.sandbox.custom(
                "/sandbox/transactions/pending",
                access_token=linked.token,
                transactions=[{"amount": 5 + n, "description": f"CHAOS SHOP {n}"}],
            )
            self.bank_transactions += created["transaction_ids"]
            with contextlib.suppress(AssertionError, httpx.HTTPError):
                await fire(self.system.sandbox, linked.token)
            n += 1
            await asyncio.sleep(BANK_GAP)

    # --- afterwards ---------------------------------------------------------------------------

    async def verify(self) -> Findings:
        """Wait for the system to catch up, then check every invariant; answers what was found."""
        found = Findings(sum(len(m.votes) + len(m.tools) for m in self.members), self.retries, round(self.slowest, 1))
        for member in self.members:
            try:
                await eventually(partial(self.counted, member), timeout=CONVERGE)
                rows = await self.outbox(member)
                await eventually(partial(self.streamed, member, rows[-1][0]), timeout=CONVERGE)
            except AssertionError as error:
                rows = await self.outbox(member)
                raise AssertionError(
                    f"{member.sub} ({member.user_id}) not caught up: {len(member.votes)} accepted, outbox"
                    f" {[(row[0], row[2].get('badgeId'), row[2].get('value')) for row in rows]},"
                    f" streamed {member.received}"
                ) from error
            found.stream_messages += len(member.received)
            found.reconnects += member.connects - 1
            found.awards, found.rewards = [
                a + b for a, b in zip((found.awards, found.rewards), await self.check(member, rows), strict=True)
            ]
        found.relinked = await self.converge_banks()
        found.bank_transactions = len(self.bank_transactions)
        return found

    async def outbox(self, member: Member) -> list[tuple[int, str, dict[str, Any]]]:
        async with self.system.pool.connection() as db:
            cursor = await db.execute(
                "SELECT id, kind, payload FROM outbox WHERE user_id = %s ORDER BY id", (member.user_id,)
            )
            return [(row[0], row[1], row[2]) for row in await cursor.fetchall()]

    async def counted(self, member: Member) -> bool:
        values = [
            p["value"]
            for _, kind, p in await self.outbox(member)
            if kind == "progress" and p["badgeId"] == "civic-voice"
        ]
        return bool(values) and values[-1] >= len(member.votes)

    async def streamed(self, member: Member, last_id: int) -> bool:
        return bool(member.received) and member.received[-1] >= last_id

    async def check(self, member: Member, rows: list[tuple[int, str, dict[str, Any]]]) -> tuple[int, int]:
        count, tools = len(member.votes), len(member.tools)
        assert len(set(member.votes)) == count and len(set(member.tools)) == tools
        # Counted once: civic-voice's progress only ever rises, one step per event, to the count.
        progress = [p["value"] for _, kind, p in rows if kind == "progress" and p["badgeId"] == "civic-voice"]
        assert progress == sorted(set(progress)) and progress[-1] == count, (member.sub, count, progress)
        # The stream: every outbox row of the member once, in order, across every reconnect.
        outbox = [row[0] for row in rows]
        assert member.received == outbox, f"{member.sub}'s stream {member.received} is not the outbox's {outbox}"
        # Awards: the ones the count earns, each once (in the table and as a message).
        expected = {("active-voter", SINGLE_INSTANCE)} if count >= 5 else set()
        expected |= {("civic-voice", tier) for tier, target in TIERS.items() if count >= target}
        expected |= {("calculator-explorer", SINGLE_INSTANCE)} if tools >= 3 else set()
        expected |= {("calculator-collector", SINGLE_INSTANCE)} if tools >= 5 else set()
        async with self.system.pool.connection() as db:
            cursor = await db.execute("SELECT badge_id, instance FROM awards WHERE user_id = %s", (member.user_id,))
            awards = [(row[0], row[1]) for row in await cursor.fetchall()]
            cursor = await db.execute(
                "SELECT badge_id, instance FROM reward_ledger WHERE user_id = %s", (member.user_id,)
            )
            rewards = [(row[0], row[1]) for row in await cursor.fetchall()]
        messages = Counter((p["badgeId"], p["instance"]) for _, kind, p in rows if kind == "award")
        assert sorted(awards) == sorted(expected), (member.sub, count, awards)
        assert messages == Counter(expected), (member.sub, count, messages)
        assert len(rewards) == len(set(rewards)) and set(rewards) <= set(awards), (member.sub, rewards, awards)
        return len(awards), len(rewards)

    async def converge_banks(self) -> int:
        """Faults cleared, one more webhook per bank: each connection's stored transactions become
        the bank's. A connection the bank logged out is re-linked first, as its member would."""
        await self.system.sandbox.http.delete("/sandbox/faults")
        relinked = 0
        for linked in self.system.banks:

            async def active(linked: Linked = linked) -> bool:
                nonlocal relinked
                status, again = await relink_if_logged_out(self.system, linked)
                relinked += again
                return status == "active"

            await eventually(active, timeout=CONVERGE)
            await fire(self.system.sandbox, linked.token)

            async def caught_up(linked: Linked = linked) -> bool:
                held = set(await stored(self.system.pool, linked.user_id))
                return held == await truth(self.system.sandbox, linked.token)

            await eventually(caught_up, timeout=CONVERGE)
        during, self.system.relinked = self.system.relinked, 0
        return relinked + during


async def relink_if_logged_out(system: System, linked: Linked) -> tuple[str, bool]:
    """The connection's status; one the bank logged out is linked again in update mode (answers
    True), as its member does when the app asks them to."""
    status = str((await connection(system.client, linked.headers))["status"])
    if status != "login_required":
        return status, False
    response = await link(system.client, linked.headers, system.sandbox, linked.username, linked.connection_id)
    assert response.status_code == 200, response.text
    return status, True
