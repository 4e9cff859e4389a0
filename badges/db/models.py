"""Every table, imported in one place for Alembic and for tests."""

from badges.db.audit import AuditRecord
from badges.db.badges import Award, BadgeProgress
from badges.db.banking import BankAccount, BankConnection, BankTransaction
from badges.db.base import Base
from badges.db.catalogue import BadgeDefinitionVersion, BadgeWebhookSecret
from badges.db.consents import Consent
from badges.db.erasure import ErasedSubject
from badges.db.events import EventReceipt
from badges.db.exports import MemberExport, MemberExportPart
from badges.db.integrations import Integration, SignatureReceipt, WebhookDelivery
from badges.db.members import DataKey, Member
from badges.db.outbox import OutboxEntry
from badges.db.reviews import ReviewItem
from badges.db.rewards import RewardBudget, RewardBudgetUsage, RewardLedgerEntry

__all__ = [
    "AuditRecord",
    "Award",
    "BadgeDefinitionVersion",
    "BadgeProgress",
    "BadgeWebhookSecret",
    "BankAccount",
    "BankConnection",
    "BankTransaction",
    "Base",
    "Consent",
    "DataKey",
    "ErasedSubject",
    "EventReceipt",
    "Integration",
    "Member",
    "MemberExport",
    "MemberExportPart",
    "OutboxEntry",
    "ReviewItem",
    "RewardBudget",
    "RewardBudgetUsage",
    "RewardLedgerEntry",
    "SignatureReceipt",
    "WebhookDelivery",
]
