"""The transcript search index: per recording and speaker, redacted tokens and word times.

Created by migration ``search_0006``; ``speech_0007`` split a side into parts. The ORM sees the plain table; each
database adds its own full-text structure beside it, which only
:mod:`callvault.services.transcript_index` queries:

- SQLite: ``transcript_fts``, an FTS5 table with external content (this table's
  ``tokens``), kept in step by triggers on insert, update and delete;
- PostgreSQL: a generated ``tsv`` column (``to_tsvector('simple', tokens)``) with
  a GIN index.

Transcripts are encrypted at rest; this index is not, so it only ever holds the
redacted text (see the service), and its rows go with the recording's audio.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class TranscriptIndexRow(Base):
    """One part of one side of one call: its searchable tokens and the times of its words.

    A side is cut into parts of a few thousand words (PostgreSQL keeps word positions only
    up to 16,383 per tsvector); most calls have one part a side.
    """

    __tablename__ = "transcript_index"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    speaker: Mapped[str] = mapped_column(String(16))  # agent | customer
    part: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # 0, 1, … in time order
    parts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # of this side
    # speech.text_search.indexed_text of the redacted words: what the engines index.
    tokens: Mapped[str] = mapped_column(Text)
    # [[start, end, text], …] of the redacted words, to find where a query matched.
    words: Mapped[list[list[Any]]] = mapped_column(JSON)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("recording_id", "speaker", "part", name="uq_transcript_index_part"),)
