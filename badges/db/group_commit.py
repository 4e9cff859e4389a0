"""Group commit: writes that each hold one lock to their commit (the outbox's, the audit chain's)
are taken together when they arrive while another is under way, and written in one transaction
when it ends, so the ones that queued share one lock and one commit instead of each waiting for
the disk in turn.

A group that fails is written again item by item, so each caller gets its own item's outcome:
one item the database refuses fails that caller alone. A caller that stops waiting before its
item is taken leaves it unwritten.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(frozen=True, slots=True)
class GroupCommitStats:
    """What a writer has done since it started: items written, the transactions that wrote them,
    and the seconds the items took from reaching the writer to their commit (waiting for the lock
    included), summed."""

    items: int
    transactions: int
    write_seconds: float


class GroupCommit(Generic[Item, Outcome]):
    """`write(connection, items)` writes the items in one transaction of its own making (on the
    pool's autocommit connection: one script is one round trip) and returns each item's outcome,
    in order; at most `max_group` items a transaction."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        write: Callable[[AsyncConnection[Any], Sequence[Item]], Awaitable[Sequence[Outcome]]],
        *,
        max_group: int,
        name: str,
    ) -> None:
        self._pool = pool
        self._write = write
        self._max_group = max_group
        self._name = name
        self._waiting: deque[tuple[Item, asyncio.Future[Outcome]]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._items = 0
        self._transactions = 0
        self._write_seconds = 0.0

    def stats(self) -> GroupCommitStats:
        """Read only (a metrics thread may call it)."""
        return GroupCommitStats(self._items, self._transactions, self._write_seconds)

    async def submit(self, item: Item) -> Outcome:
        """The item written (with whatever else is waiting), and its outcome."""
        written: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting(), name=self._name)
        arrived = time.monotonic()
        outcome = await written
        self._items += 1
        self._write_seconds += time.monotonic() - arrived
        return outcome

    async def _write_waiting(self) -> None:
        while self._waiting:
            group: list[tuple[Item, asyncio.Future[Outcome]]] = []
            while self._waiting and len(group) < self._max_group:
                item, written = self._waiting.popleft()
                if not written.done():  # else its caller stopped waiting
                    group.append((item, written))
            try:
                await self._write_group(group)
            except BaseException:
                for _, written in [*group, *self._waiting]:
                    written.cancel()
                self._waiting.clear()
                raise

    async def _write_group(self, group: list[tuple[Item, asyncio.Future[Outcome]]]) -> None:
        if not group:
            return
        try:
            outcomes = await self._execute([item for item, _ in group])
        except Exception as error:
            if len(group) == 1:
                _settle(group[0][1], error=error)
                return
            for item, written in group:
                try:
                    (outcome,) = await self._execute([item])
                except Exception as alone:
                    _settle(written, error=alone)
                else:
                    _settle(written, outcome)
            return
        for (_, written), outcome in zip(group, outcomes, strict=True):
            _settle(written, outcome)

    async def _execute(self, items: Sequence[Item]) -> Sequence[Outcome]:
        async with self._pool.connection() as connection:
            outcomes = await self._write(connection, items)
        self._transactions += 1
        return outcomes


def _settle(written: asyncio.Future[Outcome], outcome: Any = None, *, error: Exception | None = None) -> None:
    """Tell a waiting caller how its item went (unless it stopped waiting)."""
    if written.done():
        return
    if error is None:
        written.set_result(outcome)
    else:
        written.set_exception(error)
