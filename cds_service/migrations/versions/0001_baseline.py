"""Baseline: cards_shown and feedback, as `metadata.create_all` made them before migrations.

A database created by an older version (tables present, no alembic_version) is adopted as it is:
each table is created only when it is missing.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "cards_shown" not in existing:
        op.create_table(
            "cards_shown",
            sa.Column("card_uuid", sa.String(64), primary_key=True),
            sa.Column("service_id", sa.String(100), nullable=False),
            sa.Column("topic", sa.String(64), nullable=False),
            sa.Column("indicator", sa.String(16), nullable=False),
            sa.Column("hook_instance", sa.String(200), nullable=False),
            sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_cards_shown_topic", "cards_shown", ["topic"])
    if "feedback" not in existing:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("item_key", sa.String(64), nullable=False, unique=True),
            sa.Column("service_id", sa.String(100), nullable=False),
            sa.Column("card_uuid", sa.String(200), nullable=False),
            sa.Column("outcome", sa.String(16), nullable=False),
            sa.Column("accepted_suggestions", sa.Text, nullable=True),
            sa.Column("override_code", sa.String(200), nullable=True),
            sa.Column("override_system", sa.String(500), nullable=True),
            sa.Column("user_comment", sa.Text, nullable=True),
            sa.Column("outcome_timestamp", sa.String(64), nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("cards_shown")
