"""Catalog tables of speech analytics: per-call talk metrics and sentiment, phrase
categories and where each call hit them, script adherence.

Kept apart from :mod:`callvault.db.models` (same declarative base) like the other
feature tables. Created by migration ``insight_0006``.

Nothing here is what was said: metrics are durations and ratios, sentiment a
score per side and quarter, a hit names the category's own phrase and a time.
They still describe a call, so they are dropped with its transcript when the
audio is destroyed (see :func:`callvault.services.insight_store.forget_insights`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class RecordingInsight(Base):
    """Talk metrics, sentiment and adherence of one recording, computed from its channels and transcript."""

    __tablename__ = "recording_insights"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    # "audio": each side's voice activity from its channel; "transcript": a mixed archive, from word times.
    activity_source: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[float] = mapped_column(Float)
    agent_talk_s: Mapped[float] = mapped_column(Float)
    customer_talk_s: Mapped[float] = mapped_column(Float)
    silence_s: Mapped[float] = mapped_column(Float)
    overtalk_s: Mapped[float] = mapped_column(Float, index=True)
    hold_s: Mapped[float] = mapped_column(Float)
    agent_longest_monologue_s: Mapped[float] = mapped_column(Float)
    customer_longest_monologue_s: Mapped[float] = mapped_column(Float)
    agent_talk_ratio: Mapped[float | None] = mapped_column(Float, index=True)
    agent_interruptions: Mapped[int] = mapped_column(Integer)
    customer_interruptions: Mapped[int] = mapped_column(Integer)
    agent_wpm: Mapped[float | None] = mapped_column(Float)
    customer_wpm: Mapped[float | None] = mapped_column(Float)
    agent_sentiment: Mapped[float | None] = mapped_column(Float)
    customer_sentiment: Mapped[float | None] = mapped_column(Float)
    # {"sentiment": {side: {"score", "label", "quarters"}}, "timeline": [[speaker, start, end, score]],
    #  "adherence": [{"category", "within_s", "met", "at"}]}
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PhraseCategory(Base):
    """Phrases to spot (complaint, cancellation …); with ``within_s`` a script requirement."""

    __tablename__ = "phrase_categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    speaker: Mapped[str] = mapped_column(String(16))  # agent | customer | any
    phrases: Mapped[list[str]] = mapped_column(JSON)
    within_s: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CategoryHit(Base):
    """One place a recording hit a category: who said which of its phrases, when."""

    __tablename__ = "category_hits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("phrase_categories.id", ondelete="CASCADE"))
    speaker: Mapped[str] = mapped_column(String(16))
    phrase: Mapped[str] = mapped_column(String(400))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_category_hits_category", "category_id", "recording_id"),
        Index("ix_category_hits_recording", "recording_id", "start_s"),
    )
