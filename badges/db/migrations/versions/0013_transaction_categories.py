"""Every transaction's programme category, with its source and confidence, and members'
corrections by merchant (a keyed digest of the merchant, never its name in plaintext).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # All nullable, no default: adding them rewrites nothing. Rows synced before this revision are
    # categorised by their connection's next sync (`uncategorised_transactions`).
    op.add_column("bank_transactions", sa.Column("category", sa.String(32), nullable=True))
    op.add_column("bank_transactions", sa.Column("category_source", sa.String(8), nullable=True))
    op.add_column("bank_transactions", sa.Column("category_confidence", sa.REAL(), nullable=True))
    op.add_column("bank_transactions", sa.Column("category_confidence_level", sa.String(16), nullable=True))
    op.add_column("bank_transactions", sa.Column("mcc", sa.String(4), nullable=True))
    op.add_column("bank_transactions", sa.Column("merchant_key", sa.LargeBinary(), nullable=True))
    op.create_check_constraint(
        op.f("ck_bank_transactions_category_source"),
        "bank_transactions",
        "category_source IN ('provider', 'model', 'member')"
        " AND (category IS NULL) = (category_source IS NULL) AND (category IS NULL) = (category_confidence IS NULL)",
    )
    # Finds what is left to categorise without reading the categorised rows (almost all of them).
    op.create_index(
        "ix_bank_transactions_uncategorised",
        "bank_transactions",
        ["connection_id"],
        postgresql_where=sa.text("category IS NULL"),
    )
    op.create_table(
        "category_corrections",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("merchant_key", sa.LargeBinary(), primary_key=True),
        sa.Column("merchant", sa.LargeBinary(), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("category_corrections")
    op.drop_index("ix_bank_transactions_uncategorised", table_name="bank_transactions")
    op.drop_constraint(op.f("ck_bank_transactions_category_source"), "bank_transactions", type_="check")
    for column in ("merchant_key", "mcc", "category_confidence_level", "category_confidence", "category_source"):
        op.drop_column("bank_transactions", column)
    op.drop_column("bank_transactions", "category")
