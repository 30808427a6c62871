"""retention policies, legal holds, erasure requests, recording tombstones

Revision ID: retention_0003
Revises: webhooks_0003

Recordings gain the retention conditions ``consent_state`` and ``labels`` and the
tombstone columns (``deleted_at``, ``deletion_reason``, ``deletion_basis``,
``subject_hashes``, ``deletion_state``). Existing rows keep NULL: not deleted,
no labels, consent unknown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retention_0003"
down_revision = "webhooks_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (no table rebuild: see downgrade).
    with op.batch_alter_table("recordings", schema=None, recreate="never") as batch_op:
        batch_op.add_column(sa.Column("consent_state", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("labels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("deletion_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("deletion_basis", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("subject_hashes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("deletion_state", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_recordings_deletion_state", ["deletion_state"], unique=False)
    op.create_table(
        "retention_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("keep_days", sa.Integer(), nullable=False),
        sa.Column("match", sa.JSON(), nullable=False),
        sa.Column("legal_obligation", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("resolved", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("release_requested_by", sa.String(length=120), nullable=True),
        sa.Column("release_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=120), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_legal_holds_name", "legal_holds", ["name"])
    op.create_index("ix_legal_holds_status", "legal_holds", ["status"])
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_value", sa.String(length=255), nullable=True),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("preview", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_by", sa.String(length=120), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasure_requests_subject_hash", "erasure_requests", ["subject_hash"])


def downgrade() -> None:
    op.drop_table("erasure_requests")
    op.drop_table("legal_holds")
    op.drop_table("retention_policies")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch "move and copy" of
    # recordings would drop the old table and cascade-delete its streams, tags and events.
    op.drop_index("ix_recordings_deletion_state", table_name="recordings")
    for column in (
        "deletion_state",
        "subject_hashes",
        "deletion_basis",
        "deletion_reason",
        "deleted_at",
        "labels",
        "consent_state",
    ):
        op.drop_column("recordings", column)
