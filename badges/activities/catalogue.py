"""`load_catalogue`: the badge definitions in force, for member workflows whose events say the
catalogue has moved past the revision they hold."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.db.catalogue import load_catalogue
from badges.messages.user_badges import CatalogueSnapshot


class CatalogueActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn
    async def load_catalogue(self) -> CatalogueSnapshot:
        revision, badges = await load_catalogue(self._engine)
        return CatalogueSnapshot(revision=revision, badges=badges)
