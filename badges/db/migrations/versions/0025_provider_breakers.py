"""The breaker per bank provider (`provider_breakers`): one row per provider, shared by every
worker, locked while a sync is admitted or its outcome recorded.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_breakers",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("open", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("failing", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("cool_down_seconds", sa.Float(), nullable=True),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probing", sa.Text(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("provider_breakers")
