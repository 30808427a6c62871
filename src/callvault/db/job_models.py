"""Catalog table of background jobs: the one place their state lives.

Both job queue implementations keep every job here (the embedded one also
claims from it; Celery only carries the job's id), so the API, the metrics and
``callvault jobs`` read one table whichever transport runs the work. A row is
written in the same transaction as the change that asked for it
(:meth:`callvault.jobs.store.JobStore.enqueue_in`), so a job is exactly as
durable as its cause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callvault.db.models import Base


class JobRow(Base):
    """One job: queued → running → succeeded | failed (retried later) | dead | cancelled."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_due", "state", "priority", "run_after"),
        Index("ix_jobs_kind_state", "kind", "state"),
        Index("ix_jobs_subject", "subject"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(80))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Idempotency key: a second enqueue with it returns the first job (unique, NULLs allowed).
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(120))
    # Backoff: a queued or failed job is not claimed before this time.
    run_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The claim: who runs it, under which token, and until when (the visibility timeout):
    # a running job whose lease ran out belonged to a worker that died and is claimed again.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Celery only: when the job's message was last handed to the broker.
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
