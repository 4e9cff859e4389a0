"""`load_catalogue`: the badge definitions in force, for member workflows whose events say the
catalogue has moved past the revision they hold."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from badges.db.catalogue import load_catalogue
from badges.domain.definitions import BadgeDefinition


class CatalogueSnapshot(BaseModel):
    """Every badge's newest definition at a catalogue revision (0: the built-in legacy badges)."""

    revision: int = 0
    badges: list[BadgeDefinition] = Field(default_factory=list)


class CatalogueActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn
    async def load_catalogue(self) -> CatalogueSnapshot:
        revision, badges = await load_catalogue(self._engine)
        return CatalogueSnapshot(revision=revision, badges=badges)
