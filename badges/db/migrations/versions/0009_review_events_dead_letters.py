"""Held events one row each (`review_events`, sealed) instead of one ever-growing jsonb array per
review item; dead letters for work a member's workflow could not apply.

Events held before this revision move to `review_events` as they were stored (`plain`), in
order; `review_queue.events` goes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_events",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column(
            "review_id",
            sa.String(100),
            sa.ForeignKey("review_queue.review_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("plain", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.UniqueConstraint("review_id", "event_id"),
        sa.CheckConstraint("(sealed IS NULL) <> (plain IS NULL)", name="sealed_or_plain"),
    )
    op.create_index("ix_review_events_review_id_id", "review_events", ["review_id", "id"])
    op.create_index("ix_review_events_user_id", "review_events", ["user_id"])
    op.execute(
        """
        INSERT INTO review_events (review_id, user_id, event_id, plain)
        SELECT item.review_id, item.user_id, held.event->>'id', held.event
          FROM review_queue AS item
         CROSS JOIN LATERAL jsonb_array_elements(item.events) WITH ORDINALITY AS held(event, n)
         ORDER BY item.created_at, item.review_id, held.n
        ON CONFLICT (review_id, event_id) DO NOTHING
        """
    )
    op.drop_column("review_queue", "events")

    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("event_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("review_id", sa.String(100), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('event', 'decision', 'reevaluation')", name="kind"),
    )
    op.create_index("ix_dead_letters_user_id", "dead_letters", ["user_id"])


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.add_column(
        "review_queue",
        sa.Column(
            "events",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    # Only events held before 0009 come back: sealed ones need the member's key, which SQL lacks.
    op.execute(
        """
        UPDATE review_queue AS item
           SET events = (SELECT coalesce(jsonb_agg(held.plain ORDER BY held.id), '[]'::jsonb)
                           FROM review_events AS held
                          WHERE held.review_id = item.review_id AND held.plain IS NOT NULL)
        """
    )
    op.drop_table("review_events")
