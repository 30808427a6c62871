"""Catalog tables of quality management: forms, evaluations, disputes, calibration, sampling,
the coaching library. Created by migration ``qm_0005``.

A form is one row per *version*: editing a form that evaluations use adds a
row with the same ``family_id`` and the next ``version``, so an old
evaluation keeps scoring against the questions it was filled in with. The
form's sections and questions are kept as one JSON document (with their ids)
because a version never changes once used; answers are JSON keyed by question
id for the same reason, and every submitted score is kept in
``qa_revisions``, so the history of an evaluation (submission, a dispute's
change) stays readable.

Evaluations copy the team, agent and start of the evaluated call: scope checks
and scorecards read one table, and the values never change for a call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class QaForm(Base):
    __tablename__ = "qa_forms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family_id: Mapped[int | None] = mapped_column(Integer, index=True)  # the first version's id
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    # {"sections": [{"id", "title", "weight", "questions": [{"id", "text", "kind", ...}]}]}
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    current: Mapped[bool] = mapped_column(Boolean, default=True)  # False once a newer version exists
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class QaCalibration(Base):
    __tablename__ = "qa_calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("qa_forms.id"))
    team_id: Mapped[int | None] = mapped_column(Integer)
    evaluators: Mapped[list[str]] = mapped_column(JSON)  # usernames
    expert: Mapped[str | None] = mapped_column(String(120))  # whose answers are the reference
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class QaEvaluation(Base):
    __tablename__ = "qa_evaluations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("qa_forms.id"), index=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    call_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team_id: Mapped[int | None] = mapped_column(Integer)
    agent_user_id: Mapped[int | None] = mapped_column(Integer)
    evaluator_user_id: Mapped[int | None] = mapped_column(Integer)
    evaluator: Mapped[str] = mapped_column(String(120))
    calibration_id: Mapped[int | None] = mapped_column(ForeignKey("qa_calibrations.id"), index=True)
    # draft, submitted, disputed, reviewed, acknowledged (see services.qa_workflow)
    state: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)  # {question id: {"value", "at", "comment"}}
    comment: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    auto_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    section_scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_qa_evaluations_team_started", "team_id", "call_started_at"),
        Index("ix_qa_evaluations_agent_started", "agent_user_id", "call_started_at"),
    )


class QaRevision(Base):
    """Every score an evaluation had: at submission, and after a dispute's review."""

    __tablename__ = "qa_revisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # submitted, dispute_upheld, dispute_changed
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    auto_failed: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    by: Mapped[str] = mapped_column(String(120))


class QaDispute(Base):
    __tablename__ = "qa_disputes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique: an evaluation is disputed once.
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluations.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    opened_by: Mapped[str] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(16))  # upheld, changed
    note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[str | None] = mapped_column(String(120))
    score_before: Mapped[float | None] = mapped_column(Float)
    score_after: Mapped[float | None] = mapped_column(Float)


class QaSamplingRule(Base):
    __tablename__ = "qa_sampling_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    form_id: Mapped[int] = mapped_column(ForeignKey("qa_forms.id"))
    team_id: Mapped[int | None] = mapped_column(Integer)  # None: every team
    kind: Mapped[str] = mapped_column(String(16))  # random (N per agent per week) or targeted
    per_week: Mapped[int] = mapped_column(Integer)  # random: per agent; targeted: in all
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON)  # min/max duration, statuses, tags
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class QaQueueItem(Base):
    __tablename__ = "qa_queue"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), unique=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("qa_sampling_rules.id"))
    form_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer, index=True)
    agent_user_id: Mapped[int | None] = mapped_column(Integer)
    week: Mapped[str] = mapped_column(String(8))  # ISO week of the call, 2026-W49
    reason: Mapped[str] = mapped_column(String(200))
    evaluation_id: Mapped[int | None] = mapped_column(Integer)  # set once an evaluation is started
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QaClip(Base):
    """A span of a recording; its audio is cut from the recording when played, so it is
    destroyed with it."""

    __tablename__ = "qa_clips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(Integer)
    agent_user_id: Mapped[int | None] = mapped_column(Integer)
    start_seconds: Mapped[float] = mapped_column(Float)
    end_seconds: Mapped[float] = mapped_column(Float)
    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class QaPlaylist(Base):
    __tablename__ = "qa_playlists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(200))
    clip_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))


class QaShare(Base):
    """A clip or playlist shared with a user or a whole team."""

    __tablename__ = "qa_shares"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int | None] = mapped_column(ForeignKey("qa_clips.id"), index=True)
    playlist_id: Mapped[int | None] = mapped_column(ForeignKey("qa_playlists.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    team_id: Mapped[int | None] = mapped_column(Integer, index=True)


class QaClipView(Base):
    __tablename__ = "qa_clip_views"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clip_id: Mapped[int] = mapped_column(ForeignKey("qa_clips.id"))
    user_id: Mapped[int] = mapped_column(Integer)
    watched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("clip_id", "user_id", name="uq_qa_clip_views"),)


class QaCoaching(Base):
    __tablename__ = "qa_coaching"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_user_id: Mapped[int] = mapped_column(Integer, index=True)
    team_id: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    evaluation_ids: Mapped[list[int]] = mapped_column(JSON)
    clip_ids: Mapped[list[int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(120))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
