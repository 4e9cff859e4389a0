"""One item's transactions as they change, and `/transactions/sync` over them, paginated as Plaid does.

Every change (a transaction added, modified or removed) appends its id to a log. A cursor is a
position in that log: a sync from cursor `s` returns the net difference between the state at `s`
and the state now, in pages. A page cursor also remembers where the batch ended; if the log has
grown since, the batch is stale and the next page fails with
`TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION` (the caller restarts from the batch's first cursor).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Literal

from badges.banking.sandbox.history import History, IdSource
from badges.banking.sandbox.plaid import errors, wire
from badges.banking.sandbox.records import Account, Transaction

ChangeKind = Literal["added", "modified", "removed"]


@dataclass(frozen=True)
class SyncPage:
    added: list[Transaction]
    modified: list[Transaction]
    removed: list[tuple[str, str]]  # (transaction_id, account_id)
    next_cursor: str
    has_more: bool


@dataclass(frozen=True)
class _Cursor:
    start: int  # log position the batch is the difference from
    end: int  # log length when the batch began (== start for a cursor between batches)
    offset: int  # changes of the batch already returned

    def encode(self) -> str:
        text = str(self.start) if self.start == self.end else f"{self.start}:{self.end}:{self.offset}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> _Cursor:
        if not cursor:
            return cls(0, 0, 0)
        try:
            parts = [int(part) for part in base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).split(b":")]
        except (ValueError, binascii.Error):
            raise errors.invalid_field("cursor is not valid") from None
        if len(parts) == 1:
            return cls(parts[0], parts[0], 0)
        if len(parts) == 3 and 0 <= parts[0] < parts[1] and parts[2] > 0:
            return cls(*parts)
        raise errors.invalid_field("cursor is not valid")


class Ledger:
    """Not thread-safe by itself: the bank serialises calls."""

    def __init__(self, history: History, ids: IdSource) -> None:
        self.accounts: tuple[Account, ...] = history.accounts
        self._ids = ids
        self._current: dict[str, Transaction] = {}
        self._log: list[str] = []
        self._added_at: dict[str, int] = {}
        self._removed_from: dict[str, str] = {}  # transaction id → account id, for `removed`
        self._diff: tuple[int, int, list[tuple[ChangeKind, str]]] | None = None
        for transaction in history.transactions:
            self._add(transaction)

    # reading

    def sync(self, cursor: str, count: int) -> SyncPage:
        position = _Cursor.decode(cursor)
        if position.end > len(self._log):
            raise errors.invalid_field("cursor is not valid")
        if position.start != position.end and position.end != len(self._log):
            raise errors.mutation_during_pagination()
        end = len(self._log)
        changes = self._changes(position.start, end)
        page = changes[position.offset : position.offset + count]
        consumed = position.offset + len(page)
        has_more = consumed < len(changes)
        next_cursor = _Cursor(position.start, end, consumed) if has_more else _Cursor(end, end, 0)
        return SyncPage(
            added=[self._current[id_] for kind, id_ in page if kind == "added"],
            modified=[self._current[id_] for kind, id_ in page if kind == "modified"],
            removed=[(id_, self._removed_from[id_]) for kind, id_ in page if kind == "removed"],
            next_cursor=next_cursor.encode(),
            has_more=has_more,
        )

    def accounts_plaid(self) -> list[dict[str, Any]]:
        posted = dict.fromkeys((account.account_id for account in self.accounts), 0.0)
        pending = dict(posted)
        for transaction in self._current.values():
            (pending if transaction.pending else posted)[transaction.account_id] += transaction.amount
        return [
            wire.account(account, posted[account.account_id], pending[account.account_id]) for account in self.accounts
        ]

    def transactions(self) -> list[Transaction]:
        return list(self._current.values())

    def get(self, transaction_id: str) -> Transaction:
        transaction = self._current.get(transaction_id)
        if transaction is None:
            raise errors.invalid_field(f"unknown transaction_id {transaction_id!r}")
        return transaction

    def pending(self, transaction_id: str) -> Transaction:
        transaction = self.get(transaction_id)
        if not transaction.pending:
            raise errors.invalid_field(f"transaction {transaction_id!r} is not pending")
        return transaction

    def account_id(self, account_id: str | None) -> str:
        """The account new transactions go to: the one named, or the checking account."""
        if account_id is None:
            return self.accounts[0].account_id
        if all(account.account_id != account_id for account in self.accounts):
            raise errors.invalid_field(f"unknown account_id {account_id!r}")
        return account_id

    # changing

    def create(self, template: Transaction) -> Transaction:
        """Adds `template` under a fresh transaction id."""
        transaction = replace(template, transaction_id=self._ids.next())
        self._add(transaction)
        return transaction

    def modify(self, transaction_id: str, **changes: Any) -> Transaction:
        transaction = replace(self.get(transaction_id), **changes)
        self._current[transaction_id] = transaction
        self._log.append(transaction_id)
        return transaction

    def remove(self, transaction_id: str) -> None:
        transaction = self.get(transaction_id)
        del self._current[transaction_id]
        self._removed_from[transaction_id] = transaction.account_id
        self._log.append(transaction_id)

    def post(self, transaction_id: str, posted_on: date, amount: float | None) -> Transaction:
        """Pending → posted as Plaid does it: the pending one is removed, a new posted one points back at it."""
        pending = self.pending(transaction_id)
        self.remove(transaction_id)
        return self.create(
            replace(
                pending,
                pending=False,
                pending_transaction_id=transaction_id,
                date=posted_on,
                amount=pending.amount if amount is None else round(amount, 2),
            )
        )

    def _add(self, transaction: Transaction) -> None:
        self._current[transaction.transaction_id] = transaction
        self._added_at[transaction.transaction_id] = len(self._log)
        self._log.append(transaction.transaction_id)

    def _changes(self, start: int, end: int) -> list[tuple[ChangeKind, str]]:
        """The net changes between log positions `start` and `end`, in the order first touched (cached)."""
        if self._diff is not None and self._diff[:2] == (start, end):
            return self._diff[2]
        changes: list[tuple[ChangeKind, str]] = []
        for id_ in dict.fromkeys(self._log[start:end]):
            existed = self._added_at[id_] < start
            exists = id_ in self._current
            if exists:
                changes.append(("modified" if existed else "added", id_))
            elif existed:
                changes.append(("removed", id_))
        self._diff = (start, end, changes)
        return changes
