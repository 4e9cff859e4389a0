"""The badge catalogue as the API sees it: loaded from the shipped file at start-up, read with a
short cache, changed by admins. Events carry the revision they were accepted under, so member
workflows know when to load a newer catalogue."""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from badges.db.catalogue import current_revision, load_catalogue, save_definition, seed_catalogue
from badges.domain.catalogue import CatalogueError, parse_catalogue
from badges.domain.definitions import BadgeDefinition, BadgeSpec
from badges.messages.user_badges import CatalogueSnapshot

# How long a process may go on stamping events with a revision another process has replaced.
CACHE_SECONDS = 1.0


def read_catalogue_file(path: str) -> str:
    if path:
        return Path(path).read_text(encoding="utf-8")
    return resources.files("badges").joinpath("catalogue.yaml").read_text(encoding="utf-8")


class CatalogueService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._revision = 0
        self._badges: list[BadgeDefinition] = []
        self._loaded_at = float("-inf")
        self._snapshot: CatalogueSnapshot | None = None
        # One reader at a time: when the cache lapses under load (hundreds of streams opening, each
        # starting its member's workflow with the snapshot), one query answers them all, not one
        # database connection each.
        self._reading = asyncio.Lock()

    async def seed(self, path: str) -> list[str]:
        """Validate the catalogue file and load it; a broken file stops start-up, naming the field."""
        source = path or "the packaged badges/catalogue.yaml"
        try:
            catalogue = parse_catalogue(read_catalogue_file(path))
        except CatalogueError as error:
            raise SystemExit(f"badge catalogue {source} is invalid: {error}") from error
        written = await seed_catalogue(self._engine, catalogue)
        self.invalidate()
        return written

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")
        self._snapshot = None

    async def current(self) -> tuple[int, list[BadgeDefinition]]:
        if time.monotonic() - self._loaded_at > CACHE_SECONDS:
            if self._reading.locked() and self._snapshot is not None:
                # Another task is reading: the last catalogue read answers meanwhile, so a slow or
                # failing read (the database's pool busy for seconds) holds up one caller, not
                # every stream that opens behind it in turn. After a change (`invalidate`) all wait.
                return self._revision, self._badges
            async with self._reading:
                if time.monotonic() - self._loaded_at > CACHE_SECONDS:  # not read while this one waited
                    await self._read()
        return self._revision, self._badges

    async def _read(self) -> None:
        # Usually nothing changed: one cheap query, and the definitions only when it did.
        revision = await current_revision(self._engine)
        if revision != self._revision or self._snapshot is None:
            self._revision, self._badges = await load_catalogue(self._engine)
            self._snapshot = CatalogueSnapshot(revision=self._revision, badges=self._badges)
        self._loaded_at = time.monotonic()

    async def snapshot(self) -> CatalogueSnapshot:
        """The catalogue in force, as a member workflow holds it (handed to new workflows, so
        they need not load it on their first event)."""
        await self.current()
        assert self._snapshot is not None
        return self._snapshot

    async def revision(self) -> int:
        return (await self.current())[0]

    async def save(self, badge_id: str, spec: BadgeSpec, author: str) -> tuple[BadgeDefinition, bool]:
        definition, created = await save_definition(self._engine, badge_id, spec, author)
        self.invalidate()
        return definition, created
