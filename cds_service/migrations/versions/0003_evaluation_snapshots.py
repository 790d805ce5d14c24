"""evaluation_snapshots: what the companion page of one evaluation shows, until it expires.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_snapshots",
        sa.Column("snapshot_id", sa.String(64), primary_key=True),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("hook_instance", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_evaluation_snapshots_expires_at", "evaluation_snapshots", ["expires_at"])


def downgrade() -> None:
    op.drop_table("evaluation_snapshots")
