"""Comparative badges awarded by a peer-statistics release (`peer_awards`): one row per release,
member and badge, so re-running the award step awards nothing twice, and a mark when the award
was handed to the member's badge workflow.

Revision ID: 0020
Revises: 0018 (the lead chains it after 0019 at the merge)
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "peer_awards",
        sa.Column(
            "release_id", sa.Uuid(), sa.ForeignKey("privacy_ledger.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("badge_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("instances", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("decided", postgresql.JSONB(), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    # What is left to hand over, per release (a retried step sends only these).
    op.create_index(
        "ix_peer_awards_unsent", "peer_awards", ["release_id"], postgresql_where=sa.text("sent_at IS NULL")
    )
    op.create_index("ix_peer_awards_user_id", "peer_awards", ["user_id"])


def downgrade() -> None:
    op.drop_table("peer_awards")
