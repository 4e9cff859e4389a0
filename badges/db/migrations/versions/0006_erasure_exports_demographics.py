"""Erasure tombstones, member exports, demographics sealed with the member's key, and indexes on
member references that erasure and export scan.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_review_queue_user_id", "review_queue", ["user_id"])
    op.create_index("ix_webhook_deliveries_user_id", "webhook_deliveries", ["user_id"])
    op.create_table(
        "erased_subjects",
        sa.Column("subject_digest", sa.LargeBinary(length=32), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.add_column("members", sa.Column("demographics", sa.LargeBinary(), nullable=True))
    op.create_table(
        "member_exports",
        sa.Column("export_id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sections_total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_member_exports_user_id", "member_exports", ["user_id"])
    op.create_table(
        "member_export_parts",
        sa.Column(
            "export_id",
            sa.Uuid(),
            sa.ForeignKey("member_exports.export_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("section", sa.String(64), primary_key=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("member_export_parts")
    op.drop_table("member_exports")
    op.drop_column("members", "demographics")
    op.drop_table("erased_subjects")
    op.drop_index("ix_webhook_deliveries_user_id", table_name="webhook_deliveries")
    op.drop_index("ix_review_queue_user_id", table_name="review_queue")
