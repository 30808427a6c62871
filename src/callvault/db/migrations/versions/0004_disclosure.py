"""disclosure verification: recording announcements and each call's check

Revision ID: disclosure_0004
Revises: alerts_0004

Two new tables; existing recordings get no check (their disclosure reads as
not checked).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "disclosure_0004"
down_revision = "alerts_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "disclosure_checks",
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requirement", sa.String(length=32), nullable=True),
        sa.Column("offset_seconds", sa.Float(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("announcement_id", sa.Integer(), nullable=True),
        sa.Column("announcement_name", sa.String(length=120), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("window_seconds", sa.Float(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recording_id"),
    )
    op.create_index(
        "ix_disclosure_checks_status_started",
        "disclosure_checks",
        ["status", "started_at", "recording_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_disclosure_checks_status_started", table_name="disclosure_checks")
    op.drop_table("disclosure_checks")
    op.drop_table("announcements")
