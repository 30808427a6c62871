"""Catalog tables of consent and jurisdiction: the edited requirements, and each call's consent.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the
other compliance tables. Created by migration ``consent_0005``.

``consent_jurisdictions`` holds the administrators' edits of the requirements
table; the shipped default (``services/data/consent_requirements.csv``) fills
in every jurisdiction they did not touch. ``call_consents`` holds each party's
consent state on a recording, with where it came from (the API, the SRC's
metadata, a keypad digit) and when; the recording's ``consent_state`` sums
them up for search and retention.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base

CONSENT_STATES = ("unknown", "notified", "consented", "objected")


class ConsentJurisdiction(Base):
    """An administrator's row of the requirements table (overrides the shipped one of its code)."""

    __tablename__ = "consent_jurisdictions"
    jurisdiction: Mapped[str] = mapped_column(String(8), primary_key=True)
    requirement: Mapped[str] = mapped_column(String(32))
    gdpr: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(120))


class CallConsent(Base):
    """One party's consent state on a recording (``party``: ``customer``, ``agent`` or a participant)."""

    __tablename__ = "call_consents"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    party: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # api, metadata, dtmf
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[str] = mapped_column(String(120))
