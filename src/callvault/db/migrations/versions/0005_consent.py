"""consent and jurisdiction: each call's consent requirement, each party's consent state

Revision ID: consent_0005
Revises: qm_0005

Recordings gain ``consent_requirement`` (searchable), participants their
``jurisdiction``; two new tables hold the administrators' edits of the
requirements table and each party's consent state. Existing recordings keep
an unknown requirement (the disclosure check treats it as needing one).

The consent vocabulary becomes the one of call-time consent: ``unknown``,
``notified``, ``consented``, ``objected``. Stored values of the older one are
mapped: ``granted`` → ``consented``, ``refused`` and ``withdrawn`` →
``objected``; in recordings and in retention policies' ``consent_states``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "consent_0005"
down_revision = "qm_0005"
branch_labels = None
depends_on = None

OLD_TO_NEW = {"granted": "consented", "refused": "objected", "withdrawn": "objected"}
NEW_TO_OLD = {"consented": "granted", "objected": "refused", "notified": "unknown"}


def upgrade() -> None:
    op.add_column("recordings", sa.Column("consent_requirement", sa.String(length=32), nullable=True))
    op.create_index(
        "ix_recordings_consent_requirement_started",
        "recordings",
        ["consent_requirement", "started_at", "id"],
        unique=False,
    )
    op.add_column("participants", sa.Column("jurisdiction", sa.String(length=8), nullable=True))
    op.create_table(
        "consent_jurisdictions",
        sa.Column("jurisdiction", sa.String(length=8), nullable=False),
        sa.Column("requirement", sa.String(length=32), nullable=False),
        sa.Column("gdpr", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("jurisdiction"),
    )
    op.create_table(
        "call_consents",
        sa.Column("recording_id", sa.String(length=36), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("recording_id", "party"),
    )
    _map_states(OLD_TO_NEW)


def downgrade() -> None:
    _map_states(NEW_TO_OLD)
    op.drop_table("call_consents")
    op.drop_table("consent_jurisdictions")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy of recordings would cascade-delete children.
    op.drop_column("participants", "jurisdiction")
    op.drop_index("ix_recordings_consent_requirement_started", table_name="recordings")
    op.drop_column("recordings", "consent_requirement")


def _map_states(mapping: dict[str, str]) -> None:
    """Rename stored consent states: recordings' column, retention policies' conditions."""
    bind = op.get_bind()
    recordings = sa.table("recordings", sa.column("consent_state", sa.String()))
    for old, new in mapping.items():
        bind.execute(recordings.update().where(recordings.c.consent_state == old).values(consent_state=new))
    policies = sa.table("retention_policies", sa.column("id", sa.Integer()), sa.column("match", sa.JSON()))
    for policy_id, match in bind.execute(sa.select(policies.c.id, policies.c.match)).all():
        renamed = _renamed(match, mapping)
        if renamed is not None:
            bind.execute(policies.update().where(policies.c.id == policy_id).values(match=renamed))


def _renamed(match: Any, mapping: dict[str, str]) -> dict[str, Any] | None:
    """``match`` with its consent states renamed, or None when it names none to rename."""
    if not isinstance(match, dict):
        return None
    states = match.get("consent_states")
    if not isinstance(states, list) or not any(s in mapping for s in states):
        return None
    return {**match, "consent_states": sorted({mapping.get(s, s) for s in states})}
