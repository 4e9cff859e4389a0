"""Peer statistics: each consenting member's inputs to a release (`peer_inputs`), the privacy
budget ledger (`privacy_ledger`) and the released values (`peer_stats`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_inputs",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("month", sa.Date(), nullable=True),
        sa.Column("savings_rate", sa.Double(), nullable=True),
        sa.Column("salary_minor", sa.BigInteger(), nullable=True),
        sa.Column("spending", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("postcode_district", sa.String(4), nullable=True),
        sa.Column("age_range", sa.String(8), nullable=True),
        sa.Column("dependants", sa.SmallInteger(), nullable=True),
        sa.Column("salary_bracket", sa.String(8), nullable=True),
    )
    op.create_table(
        "privacy_ledger",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("mechanism", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("epsilon", sa.Double(), nullable=False),
        sa.Column("delta", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("population", sa.Integer(), nullable=True),
        sa.Column("groups_released", sa.Integer(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('reserved', 'released', 'refused')", name=op.f("ck_privacy_ledger_status")),
    )
    op.create_table(
        "peer_stats",
        sa.Column(
            "release_id", sa.Uuid(), sa.ForeignKey("privacy_ledger.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("group_key", sa.String(32), primary_key=True),
        sa.Column("noisy_count", sa.Integer(), nullable=False),
        sa.Column("stats", postgresql.JSONB(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("peer_stats")
    op.drop_table("privacy_ledger")
    op.drop_table("peer_inputs")
