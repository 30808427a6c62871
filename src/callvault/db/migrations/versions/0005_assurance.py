"""recording assurance: the calls the PBX/ACD reported (call records) and their reconciliation

Revision ID: assurance_0005
Revises: disclosure_0004

One new table; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "assurance_0005"
down_revision = "disclosure_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "expected_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pbx_call_id", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("calling_hash", sa.String(length=64), nullable=True),
        sa.Column("called_hash", sa.String(length=64), nullable=True),
        sa.Column("agent", sa.String(length=255), nullable=True),
        sa.Column("agent_user_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("queue", sa.String(length=120), nullable=True),
        sa.Column("sip_call_id", sa.String(length=255), nullable=True),
        sa.Column("vendor_call_id", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=True),
        sa.Column("matched_by", sa.String(length=40), nullable=True),
        sa.Column("ambiguous", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("must_record", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alerted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pbx_call_id"),
    )
    op.create_index("ix_expected_calls_started", "expected_calls", ["started_at", "id"])
    op.create_index("ix_expected_calls_team_started", "expected_calls", ["team_id", "started_at"])
    op.create_index("ix_expected_calls_agent_started", "expected_calls", ["agent_user_id", "started_at"])
    op.create_index("ix_expected_calls_outcome_started", "expected_calls", ["outcome", "started_at"])
    op.create_index("ix_expected_calls_recording_id", "expected_calls", ["recording_id"])


def downgrade() -> None:
    for name in (
        "ix_expected_calls_recording_id",
        "ix_expected_calls_outcome_started",
        "ix_expected_calls_agent_started",
        "ix_expected_calls_team_started",
        "ix_expected_calls_started",
    ):
        op.drop_index(name, table_name="expected_calls")
    op.drop_table("expected_calls")
