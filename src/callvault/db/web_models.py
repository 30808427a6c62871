"""Catalog tables the web UI reads and writes: comments pinned to a moment of a call, and
each recording's waveform peaks.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the other
feature tables. Created by migration ``web_0005``.

Peaks are an envelope (the loudest sample of each channel per bucket of tens of
milliseconds, one byte each): enough to draw the lanes, far too coarse to hear
anything, so they are stored in the clear. They are dropped with the audio when
it is destroyed (see :mod:`callvault.services.waveform`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class RecordingComment(Base):
    """A reviewer's note at a moment of a recording (seconds from its start)."""

    __tablename__ = "recording_comments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(120))
    offset_seconds: Mapped[float] = mapped_column(Float)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_recording_comments_recording", "recording_id", "offset_seconds"),)


class RecordingPeaks(Base):
    """Waveform peaks of one recording, computed once from its archive."""

    __tablename__ = "recording_peaks"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    channels: Mapped[int] = mapped_column(Integer)
    bucket_seconds: Mapped[float] = mapped_column(Float)
    duration_seconds: Mapped[float] = mapped_column(Float)
    # channels x buckets bytes, channel after channel: 0 silence .. 255 full scale.
    peaks: Mapped[bytes] = mapped_column(LargeBinary)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
