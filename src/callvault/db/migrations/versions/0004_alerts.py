"""alerts: one table for every kind of alert (usage limits, must-record calls not recorded)

Revision ID: alerts_0004
Revises: must_record_0004

``usage_alerts`` becomes ``alerts``: the usage columns (role, count, threshold,
window) become optional and an alert may name a recording and say why in words.
Existing usage alerts keep their rows and ids.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts_0004"
down_revision = "must_record_0004"
branch_labels = None
depends_on = None

_USAGE_COLUMNS = (
    ("username", sa.String(length=120)),
    ("role", sa.String(length=32)),
    ("count", sa.Integer()),
    ("threshold", sa.Integer()),
    ("window_seconds", sa.Integer()),
)


def upgrade() -> None:
    op.drop_index("ix_usage_alerts_user_at", table_name="usage_alerts")
    op.rename_table("usage_alerts", "alerts")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        for name, type_ in _USAGE_COLUMNS:
            batch_op.alter_column(name, existing_type=type_, nullable=True)
        batch_op.alter_column("kind", existing_type=sa.String(length=32), type_=sa.String(length=48))
        batch_op.add_column(sa.Column("recording_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))
        batch_op.create_index("ix_alerts_user_at", ["username", "at"], unique=False)
        batch_op.create_index("ix_alerts_kind_at", ["kind", "at"], unique=False)
        batch_op.create_index("ix_alerts_recording", ["recording_id"], unique=False)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM alerts WHERE count IS NULL"))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_recording")
        batch_op.drop_index("ix_alerts_kind_at")
        batch_op.drop_index("ix_alerts_user_at")
        batch_op.drop_column("detail")
        batch_op.drop_column("recording_id")
        batch_op.alter_column("kind", existing_type=sa.String(length=48), type_=sa.String(length=32))
        for name, type_ in _USAGE_COLUMNS:
            batch_op.alter_column(name, existing_type=type_, nullable=False)
    op.rename_table("alerts", "usage_alerts")
    op.create_index("ix_usage_alerts_user_at", "usage_alerts", ["username", "at"], unique=False)
