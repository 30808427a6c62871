"""Catalog table of recording assurance: the calls the PBX/ACD says happened.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the
other compliance tables. Created by migration ``assurance_0005``.

An expected call is one call record (CDR) of the telephone system, keyed by
the PBX's own call id (``pbx_call_id``) so that sending a record again changes
nothing. Its reconciliation (see :mod:`callvault.services.assurance`) is kept
on the same row: which recording, matched how, and the outcome the assurance
report counts. Agent and team are resolved when the record arrives, so the
report is scoped and grouped from this table alone. Phone numbers are kept
only as keyed hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class ExpectedCall(Base):
    """A call the PBX/ACD reported, and what the recorder made of it."""

    __tablename__ = "expected_calls"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pbx_call_id: Mapped[str] = mapped_column(String(255), unique=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    direction: Mapped[str | None] = mapped_column(String(16))
    # Keyed hashes (crypto.personal_hash, kind "phone") of the numbers in E.164 where they are
    # numbers: matching needs only equality, so no second copy of customers' numbers is kept.
    calling_hash: Mapped[str | None] = mapped_column(String(64))
    called_hash: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(255))  # as the PBX named them
    agent_user_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    queue: Mapped[str | None] = mapped_column(String(120))
    sip_call_id: Mapped[str | None] = mapped_column(String(255))
    vendor_call_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Reconciliation: outcome (see services.assurance.OUTCOMES), the recording, how it matched.
    outcome: Mapped[str] = mapped_column(String(24), default="pending")
    recording_id: Mapped[str | None] = mapped_column(String(36), index=True)
    matched_by: Mapped[str | None] = mapped_column(String(40))
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    must_record: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the must-record alert for this call was raised (in the same transaction).
    alerted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index("ix_expected_calls_started", "started_at", "id"),
        Index("ix_expected_calls_team_started", "team_id", "started_at"),
        Index("ix_expected_calls_agent_started", "agent_user_id", "started_at"),
        Index("ix_expected_calls_outcome_started", "outcome", "started_at"),
    )
