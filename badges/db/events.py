"""Receipts of real-time events: the API's record that an event id was accepted for a member."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from badges.db.base import Base


class EventReceipt(Base):
    __tablename__ = "event_receipts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Set once the event is handed to Temporal. A receipt left without it (the process died in
    # between) is handed over again when the client retries; the workflow de-duplicates.
    signalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
