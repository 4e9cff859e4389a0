"""Comparative awards a release decided but that no member received are recorded as dropped
(`peer_awards.dropped_at`, `dropped_reason`), not left looking sent; and a budget reservation
whose release measured nothing can be cancelled (`privacy_ledger.status` 'cancelled': it no
longer counts against the budget).

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("peer_awards", sa.Column("dropped_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("peer_awards", sa.Column("dropped_reason", sa.Text(), nullable=True))
    # What is left to hand over, in the order the award step walks it (a retry resumes there).
    op.drop_index("ix_peer_awards_unsent", table_name="peer_awards")
    op.create_index(
        "ix_peer_awards_unsent",
        "peer_awards",
        ["release_id", "user_id", "badge_id"],
        postgresql_where=sa.text("sent_at IS NULL AND dropped_at IS NULL"),
    )
    op.drop_constraint(op.f("ck_privacy_ledger_status"), "privacy_ledger", type_="check")
    op.alter_column("privacy_ledger", "status", type_=sa.String(16), existing_type=sa.String(8))
    op.create_check_constraint(
        op.f("ck_privacy_ledger_status"), "privacy_ledger", "status IN ('reserved', 'released', 'refused', 'cancelled')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM privacy_ledger WHERE status = 'cancelled'")
    op.drop_constraint(op.f("ck_privacy_ledger_status"), "privacy_ledger", type_="check")
    op.alter_column("privacy_ledger", "status", type_=sa.String(8), existing_type=sa.String(16))
    op.create_check_constraint(
        op.f("ck_privacy_ledger_status"), "privacy_ledger", "status IN ('reserved', 'released', 'refused')"
    )
    op.drop_index("ix_peer_awards_unsent", table_name="peer_awards")
    op.create_index(
        "ix_peer_awards_unsent", "peer_awards", ["release_id"], postgresql_where=sa.text("sent_at IS NULL")
    )
    op.drop_column("peer_awards", "dropped_reason")
    op.drop_column("peer_awards", "dropped_at")
