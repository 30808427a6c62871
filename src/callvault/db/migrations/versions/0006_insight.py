"""speech analytics: per-call talk metrics and sentiment, phrase categories and their hits

Revision ID: insight_0006
Revises: asr_0006

Three new tables; existing recordings get their metrics when next analysed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "insight_0006"
down_revision = "asr_0006"
branch_labels = None
depends_on = None

_FLOATS = (
    "duration_s",
    "agent_talk_s",
    "customer_talk_s",
    "silence_s",
    "overtalk_s",
    "hold_s",
    "agent_longest_monologue_s",
    "customer_longest_monologue_s",
)


def upgrade() -> None:
    op.create_table(
        "recording_insights",
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("activity_source", sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in _FLOATS),
        sa.Column("agent_talk_ratio", sa.Float(), nullable=True),
        sa.Column("agent_interruptions", sa.Integer(), nullable=False),
        sa.Column("customer_interruptions", sa.Integer(), nullable=False),
        sa.Column("agent_wpm", sa.Float(), nullable=True),
        sa.Column("customer_wpm", sa.Float(), nullable=True),
        sa.Column("agent_sentiment", sa.Float(), nullable=True),
        sa.Column("customer_sentiment", sa.Float(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recording_id"),
    )
    op.create_index("ix_recording_insights_overtalk_s", "recording_insights", ["overtalk_s"])
    op.create_index("ix_recording_insights_agent_talk_ratio", "recording_insights", ["agent_talk_ratio"])
    op.create_table(
        "phrase_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("phrases", sa.JSON(), nullable=False),
        sa.Column("within_s", sa.Float(), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "category_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("phrase", sa.String(length=400), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["category_id"], ["phrase_categories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_category_hits_category", "category_hits", ["category_id", "recording_id"])
    op.create_index("ix_category_hits_recording", "category_hits", ["recording_id", "start_s"])


def downgrade() -> None:
    op.drop_index("ix_category_hits_recording", table_name="category_hits")
    op.drop_index("ix_category_hits_category", table_name="category_hits")
    op.drop_table("category_hits")
    op.drop_table("phrase_categories")
    op.drop_index("ix_recording_insights_agent_talk_ratio", table_name="recording_insights")
    op.drop_index("ix_recording_insights_overtalk_s", table_name="recording_insights")
    op.drop_table("recording_insights")
