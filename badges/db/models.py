"""Every table, imported in one place for Alembic and for tests."""

from badges.db.audit import AuditRecord
from badges.db.banking import BankAccount, BankConnection, BankTransaction
from badges.db.base import Base
from badges.db.catalogue import BadgeDefinitionVersion
from badges.db.consents import Consent
from badges.db.contacts import ContactGroupRow, ContactInvitation, MemberContact
from badges.db.credentials import CredentialRow, IssuerKey
from badges.db.dead_letters import DeadLetterRow
from badges.db.erasure import ErasedSubject
from badges.db.exports import MemberExport, MemberExportPart
from badges.db.goals import MemberGoal
from badges.db.insights import MemberInsights
from badges.db.integrations import Integration, SignatureReceipt
from badges.db.keys import DataKey
from badges.db.master_keys import MasterKeyRecord
from badges.db.members import Member
from badges.db.outbox import OutboxEntry
from badges.db.peer_awards import PeerAwardRow
from badges.db.peers import PeerInputRow, PeerStatRow, PrivacyLedgerRow
from badges.db.progress import AwardRow, BadgeProgress
from badges.db.provider_breakers import ProviderBreaker
from badges.db.rate_limits import RateLimitWindow
from badges.db.receipts import EventReceiptRow
from badges.db.reviews import ReviewEvent, ReviewItem
from badges.db.rewards import RewardBudget, RewardBudgetUsage, RewardLedgerEntry
from badges.db.webhooks import BadgeWebhookSecret, WebhookDelivery

__all__ = [
    "AuditRecord",
    "AwardRow",
    "BadgeDefinitionVersion",
    "BadgeProgress",
    "BadgeWebhookSecret",
    "BankAccount",
    "BankConnection",
    "BankTransaction",
    "Base",
    "Consent",
    "ContactGroupRow",
    "ContactInvitation",
    "CredentialRow",
    "DataKey",
    "DeadLetterRow",
    "ErasedSubject",
    "EventReceiptRow",
    "Integration",
    "IssuerKey",
    "MasterKeyRecord",
    "Member",
    "MemberContact",
    "MemberExport",
    "MemberExportPart",
    "MemberGoal",
    "MemberInsights",
    "OutboxEntry",
    "PeerAwardRow",
    "PeerInputRow",
    "PeerStatRow",
    "PrivacyLedgerRow",
    "ProviderBreaker",
    "RateLimitWindow",
    "ReviewEvent",
    "ReviewItem",
    "RewardBudget",
    "RewardBudgetUsage",
    "RewardLedgerEntry",
    "SignatureReceipt",
    "WebhookDelivery",
]
