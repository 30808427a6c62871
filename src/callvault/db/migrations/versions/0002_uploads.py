"""recordings.ingest_source: who handed a recording in, from where, when received

Revision ID: uploads_0002
Revises: accounts_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "uploads_0002"
down_revision = "accounts_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ingest_source", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_column("ingest_source")
