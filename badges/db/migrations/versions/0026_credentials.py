"""Open Badges credentials: the issuer's signing keys (`issuer_keys`, the private half sealed with
the service data key) and the credentials issued (`credentials`, each with its status-list bit).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "issuer_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("public_jwk", postgresql.JSONB(), nullable=False),
        sa.Column("sealed_private_key", sa.LargeBinary(), nullable=True),
        sa.Column("data_key_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_issuer_keys_active",
        "issuer_keys",
        [sa.text("(retired_at IS NULL)")],
        unique=True,
        postgresql_where=sa.text("retired_at IS NULL"),
    )
    op.execute("CREATE SEQUENCE credential_status_index MINVALUE 0 START 0")
    op.create_table(
        "credentials",
        sa.Column("credential_id", sa.Uuid(), primary_key=True),
        # No foreign key to members: at erasure the link is cut and the row kept, revoked.
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("badge_id", sa.String(64), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status_index",
            sa.BigInteger(),
            server_default=sa.text("nextval('credential_status_index')"),
            nullable=False,
            unique=True,
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revocation_reason", sa.String(32), nullable=True),
    )
    op.create_index("ix_credentials_user_id", "credentials", ["user_id"])
    op.create_index(
        "uq_credentials_live_award",
        "credentials",
        ["user_id", "badge_id", "instance"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("credentials")
    op.execute("DROP SEQUENCE credential_status_index")
    op.drop_table("issuer_keys")
