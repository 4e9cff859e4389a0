"""Contacts: connections between members (`member_contacts`, one row each way), single-use
invitation codes (`contact_invitations`, by digest) and each member's contacts group
(`contact_groups`: its random key and the newest contacts release's outcome for it).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_contacts",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("contact_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("user_id <> contact_id", name=op.f("ck_member_contacts_not_self")),
    )
    op.create_index("ix_member_contacts_contact_id", "member_contacts", ["contact_id"])
    op.create_table(
        "contact_invitations",
        sa.Column("code_digest", sa.LargeBinary(32), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_contact_invitations_user_id", "contact_invitations", ["user_id"])
    op.create_table(
        "contact_groups",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("group_key", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("release_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("noisy_count", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("contact_groups")
    op.drop_table("contact_invitations")
    op.drop_table("member_contacts")
