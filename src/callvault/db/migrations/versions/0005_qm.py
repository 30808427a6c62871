"""quality management: forms, evaluations, disputes, calibration, sampling, coaching library

Revision ID: qm_0005
Revises: rules_0005

New tables only (``qa_*``); nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "qm_0005"
down_revision = "rules_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("family_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("evaluators", sa.JSON(), nullable=False),
        sa.Column("expert", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["form_id"], ["qa_forms.id"]),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("call_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("evaluator_user_id", sa.Integer(), nullable=True),
        sa.Column("evaluator", sa.String(length=120), nullable=False),
        sa.Column("calibration_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("auto_failed", sa.Boolean(), nullable=False),
        sa.Column("section_scores", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["form_id"], ["qa_forms.id"]),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.ForeignKeyConstraint(["calibration_id"], ["qa_calibrations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("auto_failed", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["evaluation_id"], ["qa_evaluations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_disputes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.String(length=120), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=120), nullable=True),
        sa.Column("score_before", sa.Float(), nullable=True),
        sa.Column("score_after", sa.Float(), nullable=True),
        sa.UniqueConstraint("evaluation_id"),
        sa.ForeignKeyConstraint(["evaluation_id"], ["qa_evaluations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_sampling_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("per_week", sa.Integer(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["form_id"], ["qa_forms.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["qa_sampling_rules.id"]),
        sa.UniqueConstraint("recording_id"),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("start_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_playlists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("clip_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=True),
        sa.Column("playlist_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["playlist_id"], ["qa_playlists.id"]),
        sa.ForeignKeyConstraint(["clip_id"], ["qa_clips.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_clip_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clip_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("watched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["clip_id"], ["qa_clips.id"]),
        sa.UniqueConstraint("clip_id", "user_id", name="uq_qa_clip_views"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "qa_coaching",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_user_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_ids", sa.JSON(), nullable=False),
        sa.Column("clip_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_qa_forms_family_id", "qa_forms", ["family_id"], unique=False)
    op.create_index("ix_qa_calibrations_recording_id", "qa_calibrations", ["recording_id"], unique=False)
    op.create_index("ix_qa_evaluations_recording_id", "qa_evaluations", ["recording_id"], unique=False)
    op.create_index(
        "ix_qa_evaluations_team_started", "qa_evaluations", ["team_id", "call_started_at"], unique=False
    )
    op.create_index("ix_qa_evaluations_calibration_id", "qa_evaluations", ["calibration_id"], unique=False)
    op.create_index("ix_qa_evaluations_form_id", "qa_evaluations", ["form_id"], unique=False)
    op.create_index(
        "ix_qa_evaluations_agent_started",
        "qa_evaluations",
        ["agent_user_id", "call_started_at"],
        unique=False,
    )
    op.create_index("ix_qa_revisions_evaluation_id", "qa_revisions", ["evaluation_id"], unique=False)
    op.create_index("ix_qa_queue_team_id", "qa_queue", ["team_id"], unique=False)
    op.create_index("ix_qa_clips_recording_id", "qa_clips", ["recording_id"], unique=False)
    op.create_index("ix_qa_shares_clip_id", "qa_shares", ["clip_id"], unique=False)
    op.create_index("ix_qa_shares_team_id", "qa_shares", ["team_id"], unique=False)
    op.create_index("ix_qa_shares_playlist_id", "qa_shares", ["playlist_id"], unique=False)
    op.create_index("ix_qa_shares_user_id", "qa_shares", ["user_id"], unique=False)
    op.create_index("ix_qa_coaching_agent_user_id", "qa_coaching", ["agent_user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_qa_coaching_agent_user_id", table_name="qa_coaching")
    op.drop_table("qa_coaching")
    op.drop_table("qa_clip_views")
    op.drop_index("ix_qa_shares_clip_id", table_name="qa_shares")
    op.drop_index("ix_qa_shares_team_id", table_name="qa_shares")
    op.drop_index("ix_qa_shares_playlist_id", table_name="qa_shares")
    op.drop_index("ix_qa_shares_user_id", table_name="qa_shares")
    op.drop_table("qa_shares")
    op.drop_table("qa_playlists")
    op.drop_index("ix_qa_clips_recording_id", table_name="qa_clips")
    op.drop_table("qa_clips")
    op.drop_index("ix_qa_queue_team_id", table_name="qa_queue")
    op.drop_table("qa_queue")
    op.drop_table("qa_sampling_rules")
    op.drop_table("qa_disputes")
    op.drop_index("ix_qa_revisions_evaluation_id", table_name="qa_revisions")
    op.drop_table("qa_revisions")
    op.drop_index("ix_qa_evaluations_recording_id", table_name="qa_evaluations")
    op.drop_index("ix_qa_evaluations_team_started", table_name="qa_evaluations")
    op.drop_index("ix_qa_evaluations_calibration_id", table_name="qa_evaluations")
    op.drop_index("ix_qa_evaluations_form_id", table_name="qa_evaluations")
    op.drop_index("ix_qa_evaluations_agent_started", table_name="qa_evaluations")
    op.drop_table("qa_evaluations")
    op.drop_index("ix_qa_calibrations_recording_id", table_name="qa_calibrations")
    op.drop_table("qa_calibrations")
    op.drop_index("ix_qa_forms_family_id", table_name="qa_forms")
    op.drop_table("qa_forms")
