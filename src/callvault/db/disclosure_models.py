"""Catalog tables of disclosure verification: the announcements, and each call's check.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the
other compliance tables. Created by migration ``disclosure_0004``.

An announcement keeps its fingerprint (a few KB a second, see
:mod:`callvault.media.announcement_match`), not its audio. A check names the
announcement it heard by id and by name: removing an announcement later
leaves the evidence of calls where it was heard readable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base

DISCLOSURE_STATES = ("verified", "missing", "not_required")


class Announcement(Base):
    """A recording announcement calls are checked for."""

    __tablename__ = "announcements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)
    duration_seconds: Mapped[float] = mapped_column(Float)  # of sound, first to last
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class DisclosureCheck(Base):
    """Whether the announcement was heard at the start of a recorded call, decided at sealing."""

    __tablename__ = "disclosure_checks"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16))  # one of DISCLOSURE_STATES
    # Copied from the recording (it never changes) so the report reads one index range.
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The consent requirement the decision was taken under (None: unknown, treated as needing one).
    requirement: Mapped[str | None] = mapped_column(String(32))
    offset_seconds: Mapped[float | None] = mapped_column(Float)
    channel: Mapped[str | None] = mapped_column(String(16))  # agent, customer or mixed
    announcement_id: Mapped[int | None] = mapped_column(Integer)
    announcement_name: Mapped[str | None] = mapped_column(String(120))
    score: Mapped[float | None] = mapped_column(Float)  # best match score, heard or not
    window_seconds: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_disclosure_checks_status_started", "status", "started_at", "recording_id"),)
