"""Batch writes are idempotent by content now; the batch claim table goes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("applied_batches")


def downgrade() -> None:
    op.create_table(
        "applied_batches",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("batch_seq", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["members.id"], name=op.f("fk_applied_batches_user_id_members"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "batch_seq", name=op.f("pk_applied_batches")),
    )
