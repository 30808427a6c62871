"""audit log: access events chained by hash, signed checkpoints, usage alerts

Revision ID: audit_0003
Revises: retention_0003

Existing access events are back-filled into the chain in id order. The
append-only triggers are lifted for the back-fill only (the one UPDATE the
table ever sees) and put back. The migration holds no signing key, so it
writes no checkpoint: the first checkpoint signed after the upgrade covers
the back-filled entries (:class:`callvault.services.audit_log.AuditLog`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from callvault.db.audit_chain import GENESIS, AuditBody, body_sha256, chain_hash

revision = "audit_0003"
down_revision = "retention_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_access_events_seq", ["seq"], unique=True)
        batch_op.create_index("ix_access_events_user_at", ["username", "at"], unique=False)
        batch_op.create_index("ix_access_events_action_at", ["action", "at"], unique=False)
    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "usage_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_alerts_user_at", "usage_alerts", ["username", "at"], unique=False)
    _set_append_only("access_events", False)
    _backfill()
    _set_append_only("access_events", True)
    _set_append_only("audit_checkpoints", True)


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, at, user_id, username, action, recording_id, detail, remote_addr, outcome "
            "FROM access_events ORDER BY id"
        )
    ).all()
    prev = GENESIS
    update = sa.text(
        "UPDATE access_events SET seq = :seq, prev_hash = :prev, entry_hash = :hash WHERE id = :id"
    )
    for seq, row in enumerate(rows, start=1):
        body = AuditBody(_aware(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8])
        this = chain_hash(prev, body_sha256(body))
        bind.execute(update, {"seq": seq, "prev": prev, "hash": this, "id": row[0]})
        prev = this


def _aware(value: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _set_append_only(table: str, on: bool) -> None:
    """Create (or drop) the triggers by which the database itself refuses UPDATE and DELETE."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not on:
        if sqlite:
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        return
    if sqlite:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )
    else:
        op.execute(
            f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_append_only() CASCADE")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_usage_alerts_user_at", table_name="usage_alerts")
    op.drop_table("usage_alerts")
    _set_append_only("access_events", False)
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.drop_index("ix_access_events_action_at")
        batch_op.drop_index("ix_access_events_user_at")
        batch_op.drop_index("ix_access_events_seq")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    _set_append_only("access_events", True)
