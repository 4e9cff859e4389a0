"""Open banking: connections (access token sealed with the member's key), accounts, transactions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bank_connections",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.Column("institution_id", sa.String(64), nullable=True),
        sa.Column("institution_name", sa.String(200), nullable=True),
        sa.Column("access_token", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), server_default="syncing", nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status IN ('syncing', 'active', 'degraded', 'login_required', 'disconnected')", name="status"
        ),
        sa.UniqueConstraint("provider", "item_id"),
    )
    op.create_index("ix_bank_connections_user_id", "bank_connections", ["user_id"])
    op.create_table(
        "bank_accounts",
        sa.Column(
            "connection_id", sa.Uuid(), sa.ForeignKey("bank_connections.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("mask", sa.LargeBinary(), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("subtype", sa.String(32), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance_minor", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_bank_accounts_user_id", "bank_accounts", ["user_id"])
    op.create_table(
        "bank_transactions",
        sa.Column(
            "connection_id", sa.Uuid(), sa.ForeignKey("bank_connections.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("posted_date", sa.Date(), nullable=False),
        sa.Column("authorized_date", sa.Date(), nullable=True),
        sa.Column("description", sa.LargeBinary(), nullable=False),
        sa.Column("merchant_name", sa.LargeBinary(), nullable=True),
        sa.Column("category_primary", sa.String(64), nullable=True),
        sa.Column("category_detailed", sa.String(96), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("pending_transaction_id", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_index("ix_bank_transactions_user_date", "bank_transactions", ["user_id", "posted_date"])
    op.create_index("ix_bank_transactions_posted_date", "bank_transactions", ["posted_date"])  # retention


def downgrade() -> None:
    op.drop_table("bank_transactions")
    op.drop_table("bank_accounts")
    op.drop_table("bank_connections")
