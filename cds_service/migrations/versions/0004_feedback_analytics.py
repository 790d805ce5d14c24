"""Feedback analytics: the patient hash, knowledge version and suggestion orders of each card shown;
whether a feedback item had a comment (kept when the retention purge clears the comment); indexes on
the times the dashboard and the purge select by.

Additive only (nullable columns, indexes): the previous version keeps running during a rolling update.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cards_shown") as batch:
        batch.add_column(sa.Column("patient_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("knowledge_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("suggestions", sa.JSON, nullable=True))
    op.create_index("ix_cards_shown_shown_at", "cards_shown", ["shown_at"])
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("has_comment", sa.Boolean, nullable=True))
    op.create_index("ix_feedback_received_at", "feedback", ["received_at"])
    # feedback stored before this revision: whether it came with a comment
    op.execute("UPDATE feedback SET has_comment = (user_comment IS NOT NULL AND user_comment <> '')")


def downgrade() -> None:
    op.drop_index("ix_feedback_received_at", table_name="feedback")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("has_comment")
    op.drop_index("ix_cards_shown_shown_at", table_name="cards_shown")
    with op.batch_alter_table("cards_shown") as batch:
        batch.drop_column("suggestions")
        batch.drop_column("knowledge_version")
        batch.drop_column("patient_key")
