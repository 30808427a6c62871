"""seal log: hash chain of signed manifests and signed checkpoints

Revision ID: integrity_0002
Revises: search_order_0002

Recordings sealed before this migration are back-filled into the chain in
seal order (``finalized_at``, then ``created_at``, then id), one entry per
recording for its current signed manifest. The migration holds no signing
key, so it writes no checkpoint: the first start after the upgrade signs the
back-filled head once (:meth:`callvault.services.seal_log.SealLog.adopt_backfill`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from callvault.db.seal_chain import GENESIS, entry_hash, manifest_sha256

revision = "integrity_0002"
down_revision = "search_order_0002"
branch_labels = None
depends_on = None

_TABLES = ("seal_log", "seal_checkpoints")


def upgrade() -> None:
    op.create_table(
        "seal_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("seal_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seal_log_recording_id"), ["recording_id"], unique=False)
    op.create_table(
        "seal_checkpoints",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    _backfill()
    for table in _TABLES:
        _append_only(table)


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, manifest, finalized_at, created_at FROM recordings WHERE manifest IS NOT NULL "
            "ORDER BY COALESCE(finalized_at, created_at), id"
        )
    ).all()
    log = sa.table(
        "seal_log",
        sa.column("seq", sa.Integer()),
        sa.column("recording_id", sa.String()),
        sa.column("manifest_sha256", sa.String()),
        sa.column("prev_hash", sa.String()),
        sa.column("entry_hash", sa.String()),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    prev = GENESIS
    entries = []
    for seq, (recording_id, manifest, finalized_at, created_at) in enumerate(rows, start=1):
        at = _aware(finalized_at or created_at)
        digest = manifest_sha256(manifest)
        this = entry_hash(seq, recording_id, digest, prev, at)
        entries.append(
            {
                "seq": seq,
                "recording_id": recording_id,
                "manifest_sha256": digest,
                "prev_hash": prev,
                "entry_hash": this,
                "at": at,
            }
        )
        prev = this
    if entries:
        op.bulk_insert(log, entries)


def _aware(value: datetime | str) -> datetime:
    # A raw SQLite query gives strings, PostgreSQL aware datetimes; both are UTC.
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _append_only(table: str) -> None:
    """Like access_events: the database itself refuses UPDATE and DELETE on the seal log."""
    if op.get_bind().dialect.name == "sqlite":
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
    for table in _TABLES:
        if op.get_bind().dialect.name != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only() CASCADE")
        op.drop_table(table)
