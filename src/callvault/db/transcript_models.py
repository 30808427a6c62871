"""Catalog table of transcripts: one encrypted transcript per recording.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the other
feature tables. Created by migration ``asr_0006``.

The transcript itself (what was said, word by word) is ciphertext sealed under
the recording's own data key (:mod:`callvault.services.transcripts`), so
forgetting that key (crypto-shred, retention, erasure, ``destroy_audio``) makes
every copy of it unreadable, backups included; the row is also deleted in the
same transaction. Only counts and the engine's name are stored in the clear.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class RecordingTranscript(Base):
    """The transcript of one recording, both channels, encrypted."""

    __tablename__ = "recording_transcripts"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    engine: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    # zlib-compressed JSON of Transcript.to_json(), in the envelope format of crypto/envelope.py.
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    word_count: Mapped[int] = mapped_column(Integer)
    # Seconds of audio the recogniser heard after voice activity detection (both channels).
    speech_seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
