"""The notices a member's newest evaluation gave, as keyed digests of their keys (16 bytes each,
under the member's data key), so the next evaluation tells what is new without opening the sealed
document.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for evaluations kept before: the next one reads their notices from the sealed document.
    op.add_column("member_insights", sa.Column("notice_digests", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("member_insights", "notice_digests")
