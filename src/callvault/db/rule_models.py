"""Catalog table of recording rules (see :mod:`callvault.services.recording_rules`).

Kept apart from :mod:`callvault.db.models` (same declarative base) like the other
compliance tables; created by migration ``rules_0005``. A rule's conditions and
labels are JSON as the API shows them; ``position`` is the evaluation order
(1 first), kept dense by every change.

What a rule decided for a call is copied onto its recording
(``recordings.rule_name``, ``rule_action``; ``kept_at`` for on-demand calls), so
the evidence outlives a rule that is later changed or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class RecordingRule(Base):
    __tablename__ = "recording_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    position: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(16))
    sample_percent: Mapped[float | None] = mapped_column(Float)
    match: Mapped[dict[str, Any]] = mapped_column(JSON)
    set_labels: Mapped[list[str]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(120))
