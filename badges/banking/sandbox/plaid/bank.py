"""The sandbox bank's memory: link tokens, public and access tokens, items and their ledgers.

Linking, as Plaid's sandbox does it: `/sandbox/public_token/create` (or the custom
`/sandbox/link/complete`, standing in for the user finishing Link) makes a public token; exchanging
it gives the access token. An item's history is generated on first use and then kept, so linking
costs nothing until data is read. The history is seeded by persona, institution and the linking
user (`user_id`, or the link token's `client_user_id`; failing both, the item id): the same user
linking the same bank as the same persona sees the same history, ids included.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from badges.banking.sandbox import history
from badges.banking.sandbox.personas import DEFAULT_USERNAME, PERSONAS, Persona
from badges.banking.sandbox.plaid import errors, institutions
from badges.banking.sandbox.plaid.ledger import Ledger

Clock = Callable[[], datetime]
LINK_TOKEN_LIFETIME = timedelta(hours=4)


@dataclass
class LinkToken:
    token: str
    expiration: datetime
    client_user_id: str | None
    webhook: str | None
    item_id: str | None  # set in update mode: the item whose login is being repaired


@dataclass
class Item:
    item_id: str
    access_token: str
    institution_id: str
    persona: Persona
    seed: str
    webhook: str | None
    created_at: datetime
    login_required: bool = False
    ledger: Ledger | None = field(default=None, repr=False)


class Bank:
    """All state, behind one lock: handlers may run on the event loop or in threads."""

    def __init__(self, clock: Clock, history_months: int) -> None:
        self.clock = clock
        self.history_months = history_months
        self.lock = threading.RLock()
        self._link_tokens: dict[str, LinkToken] = {}
        self._public_tokens: dict[str, str] = {}  # public token → item id (single use)
        self._items: dict[str, Item] = {}
        self._by_access_token: dict[str, Item] = {}

    def create_link_token(self, client_user_id: str | None, webhook: str | None, access_token: str | None) -> LinkToken:
        with self.lock:
            item_id = self.item(access_token, for_data=False).item_id if access_token else None
            link = LinkToken(
                token=f"link-sandbox-{uuid.uuid4()}",
                expiration=self.clock() + LINK_TOKEN_LIFETIME,
                client_user_id=client_user_id,
                webhook=webhook,
                item_id=item_id,
            )
            self._link_tokens[link.token] = link
            return link

    def complete_link(self, link_token: str, institution_id: str, username: str | None) -> str:
        """The user finished Link: a new item, or in update mode the repaired one; answers a public token."""
        with self.lock:
            link = self._link_tokens.pop(link_token, None)
            if link is None or link.expiration < self.clock():
                raise errors.invalid_link_token()
            if link.item_id is not None:
                item = self._items.get(link.item_id)
                if item is None:  # removed since the link token was made
                    raise errors.invalid_link_token()
                item.login_required = False
                return self._public_token(item.item_id)
            return self.create_item(institution_id, username, link.webhook, link.client_user_id)

    def create_item(self, institution_id: str, username: str | None, webhook: str | None, user: str | None) -> str:
        """A linked item for a sandbox user; answers its public token."""
        institutions.name_of(institution_id)
        persona = PERSONAS.get(username or DEFAULT_USERNAME)
        if persona is None:
            raise errors.invalid_credentials()
        item_id = secrets.token_urlsafe(27).replace("-", "x").replace("_", "z")
        item = Item(
            item_id=item_id,
            access_token=f"access-sandbox-{uuid.uuid4()}",
            institution_id=institution_id,
            persona=persona,
            seed=f"{institution_id}|{user or item_id}",
            webhook=webhook,
            created_at=self.clock(),
        )
        with self.lock:
            self._items[item_id] = item
            self._by_access_token[item.access_token] = item
            return self._public_token(item_id)

    def exchange(self, public_token: str) -> Item:
        with self.lock:
            item_id = self._public_tokens.pop(public_token, None)
            if item_id is None or item_id not in self._items:
                raise errors.invalid_public_token()
            return self._items[item_id]

    def item(self, access_token: str, *, for_data: bool = True) -> Item:
        """The item behind `access_token`; reading its data fails while it needs its user to log in again."""
        with self.lock:
            item = self._by_access_token.get(access_token)
            if item is None:
                raise errors.invalid_access_token()
            if for_data and item.login_required:
                raise errors.item_login_required()
            return item

    def item_id_of(self, access_token: str | None) -> str | None:
        with self.lock:
            item = self._by_access_token.get(access_token or "")
            return item.item_id if item else None

    def ledger(self, item: Item) -> Ledger:
        """The item's ledger, its history generated on first use."""
        with self.lock:
            if item.ledger is None:
                generated = history.generate(item.persona, item.seed, self.clock().date(), self.history_months)
                live_ids = history.IdSource(Random(f"{item.seed}|{item.item_id}"))
                item.ledger = Ledger(generated, live_ids)
            return item.ledger

    def remove(self, access_token: str) -> None:
        with self.lock:
            item = self.item(access_token, for_data=False)
            del self._by_access_token[access_token]
            del self._items[item.item_id]

    def _public_token(self, item_id: str) -> str:
        token = f"public-sandbox-{uuid.uuid4()}"
        self._public_tokens[token] = item_id
        return token
