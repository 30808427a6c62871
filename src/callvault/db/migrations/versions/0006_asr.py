"""transcripts: one encrypted transcript per recording

Revision ID: asr_0006
Revises: web_0005

One new table; existing recordings are transcribed on demand
(``callvault analytics backfill``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "asr_0006"
down_revision = "web_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_transcripts",
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("engine", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("speech_seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recording_id"),
    )


def downgrade() -> None:
    op.drop_table("recording_transcripts")
