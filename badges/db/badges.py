"""Badge progress and awards, the projection of each member's workflow state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class BadgeProgress(Base):
    __tablename__ = "badge_progress"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    badge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the definition it counts under
    # The member workflow's batch that wrote it: a later batch wins even when the value falls
    # (a broken streak), a repeated write of the same batch announces nothing.
    batch_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Award(Base):
    __tablename__ = "awards"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    badge_id: Mapped[str] = mapped_column(String(64))
    instance: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, server_default="1")  # of the definition it was earned under
    awarded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("user_id", "badge_id", "instance"),)
