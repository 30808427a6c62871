"""recording rules: the rules table, and what a rule decided on each recording

Revision ID: rules_0005
Revises: assurance_0005

Existing recordings were recorded whole: their rule columns stay empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rules_0005"
down_revision = "assurance_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("sample_percent", sa.Float(), nullable=True),
        sa.Column("match", sa.JSON(), nullable=False),
        sa.Column("set_labels", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_recording_rules_position", "recording_rules", ["position"], unique=False)
    # Plain ADD/DROP COLUMN (SQLite >= 3.35), never a batch copy of recordings: dropping the old
    # table in a copy cascade-deletes its streams, events and tags (seen on downgrade).
    op.add_column("recordings", sa.Column("rule_name", sa.String(length=120), nullable=True))
    op.add_column("recordings", sa.Column("rule_action", sa.String(length=16), nullable=True))
    op.add_column("recordings", sa.Column("kept_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("recordings", "kept_at")
    op.drop_column("recordings", "rule_action")
    op.drop_column("recordings", "rule_name")
    op.drop_index("ix_recording_rules_position", table_name="recording_rules")
    op.drop_table("recording_rules")
