"""web UI: comments pinned to a moment of a recording, and cached waveform peaks

Revision ID: web_0005
Revises: consent_0005

Two new tables; existing recordings get their peaks when first shown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "web_0005"
down_revision = "consent_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("offset_seconds", sa.Float(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_recording_comments_recording", "recording_comments", ["recording_id", "offset_seconds"]
    )
    op.create_table(
        "recording_peaks",
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("bucket_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("peaks", sa.LargeBinary(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recording_id"),
    )


def downgrade() -> None:
    op.drop_table("recording_peaks")
    op.drop_index("ix_recording_comments_recording", table_name="recording_comments")
    op.drop_table("recording_comments")
