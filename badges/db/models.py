"""Every table, imported in one place for Alembic and for tests."""

from badges.db.badges import Award, BadgeProgress
from badges.db.base import Base
from badges.db.events import EventReceipt
from badges.db.members import DataKey, Member
from badges.db.outbox import OutboxEntry

__all__ = ["Award", "BadgeProgress", "Base", "DataKey", "EventReceipt", "Member", "OutboxEntry"]
