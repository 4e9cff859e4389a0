"""Review items of a second kind: financial patterns (money moved into savings and straight back
out), found by a member's behaviour evaluation, beside the held bursts of events. `kind` tells
them apart; `sealed` holds a pattern's details (amounts, days, how the money came back), sealed
with the member's key.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "review_queue", sa.Column("kind", sa.String(16), server_default="held_burst", nullable=False)
    )
    op.add_column("review_queue", sa.Column("sealed", sa.LargeBinary(), nullable=True))
    op.create_check_constraint(
        op.f("ck_review_queue_kind"), "review_queue", "kind IN ('held_burst', 'financial')"
    )
    op.create_check_constraint(
        op.f("ck_review_queue_financial_sealed"), "review_queue", "kind <> 'financial' OR sealed IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DELETE FROM review_queue WHERE kind = 'financial'")
    op.drop_constraint(op.f("ck_review_queue_financial_sealed"), "review_queue")
    op.drop_constraint(op.f("ck_review_queue_kind"), "review_queue")
    op.drop_column("review_queue", "sealed")
    op.drop_column("review_queue", "kind")
