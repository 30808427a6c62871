"""search indexes end in the id tie-breaker

Revision ID: search_order_0002
Revises: uploads_0002

Search orders by ``started_at`` (or ``duration_seconds``) and then by ``id``, so
that pages never repeat or skip recordings that share a start time. The
indexes ended in ``started_at`` only, so SQLite sorted every result page again
("USE TEMP B-TREE FOR RIGHT PART OF ORDER BY") and PostgreSQL added a sort
step. Each index now ends in ``id`` as well: the index order is the page order.
"""

from __future__ import annotations

from alembic import op

revision = "search_order_0002"
down_revision = "uploads_0002"
branch_labels = None
depends_on = None

# name: leading columns, before the tie-breaker
_INDEXES: dict[str, list[str]] = {
    "ix_recordings_started": ["started_at"],
    "ix_recordings_agent_started": ["agent_user_id", "started_at"],
    "ix_recordings_team_started": ["team_id", "started_at"],
    "ix_recordings_customer_started": ["customer_number", "started_at"],
    "ix_recordings_queue_started": ["queue", "started_at"],
    "ix_recordings_direction_started": ["direction", "started_at"],
    "ix_recordings_status_started": ["status", "started_at"],
    "ix_recordings_duration": ["duration_seconds"],
}


def upgrade() -> None:
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="recordings")
        op.create_index(name, "recordings", [*columns, "id"], unique=False)


def downgrade() -> None:
    for name, columns in _INDEXES.items():
        op.drop_index(name, table_name="recordings")
        op.create_index(name, "recordings", columns, unique=False)
