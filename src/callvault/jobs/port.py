"""The ``JobQueue`` port: what every background job implementation offers.

Transcription, analytics and later sweeps, exports and webhooks are queued here.
Two implementations sit behind this interface, chosen by ``CALLVAULT_JOB_QUEUE``:
the embedded one (the catalog's own ``jobs`` table, worker processes started by
``callvault serve``) and Celery on Redis or RabbitMQ (``callvault worker``). One
contract test runs against both.

A job is at-least-once: a worker killed mid-job leaves it to be retried once its
visibility timeout passes, so every handler must be idempotent (write its output
once, keyed by the job's subject) — the queue guarantees it completes once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

JobState = Literal["queued", "running", "succeeded", "failed", "dead", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "dead", "cancelled"})


@dataclass(frozen=True)
class Job:
    """One unit of background work as the queue reports it."""

    id: int
    kind: str  # the handler's name, e.g. "transcribe"
    payload: Mapping[str, Any]  # JSON-serialisable; never secrets or phone numbers
    key: str | None  # idempotency key: a second enqueue with it returns the first job
    priority: int  # higher runs first
    state: JobState
    attempts: int
    max_attempts: int
    progress: float  # 0.0 .. 1.0
    error: str | None  # the last failure's reason, shown to operators
    created_at: datetime
    updated_at: datetime
    run_after: datetime | None = None  # backoff: not before this time
    subject: str | None = field(default=None)  # e.g. a recording's public id, for filtering


class Progress(Protocol):
    """Handed to a handler: report how far it is, learn whether it was cancelled."""

    def __call__(self, fraction: float) -> None: ...

    def cancelled(self) -> bool: ...


class JobFailed(Exception):
    """Raised by a handler for a failure that retrying cannot fix (goes straight to dead)."""


# A handler runs one job. It receives the job's payload and a Progress, and raises
# on failure: JobFailed for a permanent one, anything else to be retried with backoff.
JobHandler = Callable[[Mapping[str, Any], Progress], None]


class JobQueue(Protocol):
    """Enqueue, observe and control background jobs."""

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        priority: int = 0,
        max_attempts: int = 5,
        subject: str | None = None,
    ) -> Job: ...

    def enqueue_in(
        self,
        session: Session,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        priority: int = 0,
        max_attempts: int = 5,
        subject: str | None = None,
    ) -> Job:
        """Enqueue inside ``session``'s transaction (from ``Catalog.write``): the job is exactly
        as durable as the change that caused it, and does not exist if that rolls back."""
        ...

    def get(self, job_id: int) -> Job | None: ...

    def list(
        self, *, state: JobState | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Job]: ...

    def cancel(self, job_id: int) -> Job | None: ...

    def retry(self, job_id: int) -> Job | None:
        """Re-queue a dead or failed job by hand (an operator fixed the cause)."""
        ...

    def counts(self) -> dict[str, int]:
        """Jobs per state, for metrics (queued, running, failed, dead ...)."""
        ...

    def oldest_queued_age_s(self) -> float | None: ...

    def close(self) -> None:
        """Let go of connections (the broker's); the catalog is closed by its owner."""
        ...
