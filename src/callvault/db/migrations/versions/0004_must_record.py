"""users: must_record (regulated staff whose calls no rule may leave unrecorded)

Revision ID: must_record_0004
Revises: audit_0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "must_record_0004"
down_revision = "audit_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("must_record", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy of users would cascade-delete their
    # tokens and SIP identities when the old table is dropped.
    op.drop_column("users", "must_record")
