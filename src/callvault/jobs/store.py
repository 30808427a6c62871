"""The catalog's ``jobs`` table: every state change of a job, guarded, in one place.

Both queue implementations keep their jobs here. What an operator or a service
does (enqueue, cancel, retry, look) and what a worker does (claim, beat,
finish) are each one short transaction; a worker's writes name the claim token
it was given, so a worker that lost its claim (its lease ran out and another
worker took the job) can never finish, fail or release a job a second time.

A claim is a lease (the visibility timeout): a running job whose lease ran out
belonged to a worker that died and is claimed again, counting an attempt.
SQLite claims with one ``UPDATE … WHERE id = (SELECT …) RETURNING``;
PostgreSQL selects ``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait
on each other's row.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.job_models import JobRow
from callvault.jobs.port import TERMINAL_STATES, Job, JobState

Clock = Callable[[], datetime]
MAX_ERROR = 500
MAX_KIND = 80
MAX_KEY = 200
MAX_SUBJECT = 120
LIST_LIMIT = 1000


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; every time here is UTC.
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def to_job(row: JobRow) -> Job:
    created, updated = _aware(row.created_at), _aware(row.updated_at)
    assert created is not None and updated is not None
    return Job(
        id=row.id,
        kind=row.kind,
        payload=dict(row.payload),
        key=row.key,
        priority=row.priority,
        state=row.state,  # type: ignore[arg-type]
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        progress=row.progress,
        error=row.error,
        created_at=created,
        updated_at=updated,
        run_after=_aware(row.run_after),
        subject=row.subject,
    )


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: it alone may finish it, while its lease lasts."""

    job: Job
    token: str
    worker: str


def validate_request(kind: str, key: str | None, max_attempts: int, subject: str | None) -> None:
    if not kind or len(kind) > MAX_KIND:
        raise ValueError(f"job kind must be 1 to {MAX_KIND} characters")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise ValueError(f"idempotency key must be 1 to {MAX_KEY} characters")
    if subject is not None and len(subject) > MAX_SUBJECT:
        raise ValueError(f"job subject must be at most {MAX_SUBJECT} characters")
    if not 1 <= max_attempts <= 100:
        raise ValueError("max_attempts must be between 1 and 100")


class JobStore:
    """Job rows in the catalog; ``clock`` is replaceable so tests can move time."""

    def __init__(self, catalog: Catalog, clock: Clock = utc_now) -> None:
        self.catalog = catalog
        self.clock = clock

    # ----- enqueue and look -------------------------------------------------

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
    ) -> tuple[Job, bool]:
        """Add a job in ``session``'s transaction; (the job, whether it is new).

        With a ``key`` already used, the existing job is returned and nothing is added.
        """
        validate_request(kind, key, max_attempts, subject)
        if key is not None:
            existing = session.scalar(select(JobRow).where(JobRow.key == key))
            if existing is not None:
                return to_job(existing), False
        now = self.clock()
        row = JobRow(
            kind=kind,
            payload=dict(payload),
            key=key,
            priority=priority,
            state="queued",
            attempts=0,
            max_attempts=max_attempts,
            progress=0.0,
            subject=subject,
            cancel_requested=False,
            created_at=now,
            updated_at=now,
        )
        try:
            # A savepoint: a concurrent enqueue with the same key must not abort the caller's work.
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            existing = session.scalar(select(JobRow).where(JobRow.key == key))
            if existing is None:
                raise
            return to_job(existing), False
        return to_job(row), True

    def enqueue(self, kind: str, payload: Mapping[str, Any], **options: Any) -> tuple[Job, bool]:
        with self.catalog.write() as session:
            return self.enqueue_in(session, kind, payload, **options)

    def get(self, job_id: int) -> Job | None:
        with self.catalog.read() as session:
            row = session.get(JobRow, job_id)
            return to_job(row) if row is not None else None

    def list(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Newest first."""
        query = select(JobRow).order_by(JobRow.id.desc()).limit(max(1, min(limit, LIST_LIMIT)))
        if state is not None:
            query = query.where(JobRow.state == state)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        if subject is not None:
            query = query.where(JobRow.subject == subject)
        with self.catalog.read() as session:
            return [to_job(row) for row in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        states = ("queued", "running", "succeeded", "failed", "dead", "cancelled")
        found = dict.fromkeys(states, 0)
        with self.catalog.read() as session:
            for state, count in session.execute(select(JobRow.state, func.count()).group_by(JobRow.state)):
                found[state] = int(count)
        return found

    def oldest_queued_age_s(self) -> float | None:
        """Age of the oldest job waiting to run now (queued, or failed and due for its retry)."""
        with self.catalog.read() as session:
            oldest = session.scalar(select(func.min(JobRow.created_at)).where(self._due(self.clock())))
        created = _aware(oldest)
        return None if created is None else max(0.0, (self.clock() - created).total_seconds())

    # ----- operator controls -----------------------------------------------

    def cancel(self, job_id: int) -> Job | None:
        """A waiting job is cancelled at once; a running one is asked to stop (its handler
        sees ``Progress.cancelled()``) and ends cancelled; a finished one is left as it is."""
        now = self.clock()
        with self.catalog.write() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return None
            if row.state in ("queued", "failed"):
                row.state, row.finished_at, row.run_after = "cancelled", now, None
                row.updated_at = now
            elif row.state == "running":
                row.cancel_requested, row.updated_at = True, now
            return to_job(row)

    def retry(self, job_id: int) -> Job | None:
        """Queue a dead, failed or cancelled job again with fresh attempts; others are left alone."""
        now = self.clock()
        with self.catalog.write() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                return None
            if row.state in ("dead", "failed", "cancelled"):
                row.state, row.attempts, row.run_after = "queued", 0, None
                row.progress, row.cancel_requested, row.finished_at = 0.0, False, None
                row.dispatched_at, row.updated_at = None, now
            return to_job(row)

    # ----- worker side --------------------------------------------------------

    @staticmethod
    def _due(now: datetime) -> ColumnElement[bool]:
        waiting = and_(
            JobRow.state.in_(("queued", "failed")), or_(JobRow.run_after.is_(None), JobRow.run_after <= now)
        )
        abandoned = and_(JobRow.state == "running", JobRow.lease_until < now)
        return or_(waiting, abandoned)

    def has_due(self) -> bool:
        """A cheap read before a claim: idle workers do not take the write lock to find nothing."""
        with self.catalog.read() as session:
            return session.scalar(select(JobRow.id).where(self._due(self.clock())).limit(1)) is not None

    def claim_next(self, worker: str, lease_s: float) -> Claim | None:
        """Take the most urgent due job (highest priority, then oldest) for ``lease_s`` seconds."""
        return self._claim(worker, lease_s, None)

    def claim(self, job_id: int, worker: str, lease_s: float) -> Claim | None:
        """Take this job if it is due (Celery: the message names the job)."""
        return self._claim(worker, lease_s, job_id)

    def _claim(self, worker: str, lease_s: float, job_id: int | None) -> Claim | None:
        now = self.clock()
        self._bury_abandoned(now)
        token = uuid.uuid4().hex
        pick = select(JobRow.id).where(self._due(now))
        if job_id is not None:
            pick = pick.where(JobRow.id == job_id)
        pick = pick.order_by(JobRow.priority.desc(), JobRow.id).limit(1)
        with self.catalog.write() as session:
            if self.catalog.is_sqlite:
                target: Any = pick.scalar_subquery()  # the write lock is held: one UPDATE claims
            else:
                target = session.scalar(pick.with_for_update(skip_locked=True))
                if target is None:
                    return None
            claimed = session.scalar(
                update(JobRow)
                .where(JobRow.id == target, self._due(now))
                .values(
                    state="running",
                    attempts=JobRow.attempts + 1,
                    claim_token=token,
                    claimed_by=worker[:120],
                    lease_until=now + timedelta(seconds=lease_s),
                    updated_at=now,
                    run_after=None,
                )
                .returning(JobRow.id)
            )
            if claimed is None:
                return None
            row = session.get(JobRow, claimed, populate_existing=True)
            assert row is not None
            return Claim(to_job(row), token, worker)

    def _bury_abandoned(self, now: datetime) -> None:
        """A job whose worker died on its last attempt is dead, not claimed once more."""
        lost = and_(
            JobRow.state == "running", JobRow.lease_until < now, JobRow.attempts >= JobRow.max_attempts
        )
        with self.catalog.read() as session:
            if session.scalar(select(JobRow.id).where(lost).limit(1)) is None:
                return
        with self.catalog.write() as session:
            session.execute(
                update(JobRow)
                .where(lost)
                .values(
                    state="dead",
                    error="its worker stopped while running it, on the last attempt",
                    claim_token=None,
                    lease_until=None,
                    finished_at=now,
                    updated_at=now,
                )
            )

    def _owned(self, claim: Claim) -> ColumnElement[bool]:
        return and_(JobRow.id == claim.job.id, JobRow.state == "running", JobRow.claim_token == claim.token)

    def beat(self, claim: Claim, progress: float | None, lease_s: float) -> tuple[bool, bool]:
        """Extend the lease, record progress; (still ours, cancel requested)."""
        now = self.clock()
        values: dict[str, Any] = {"lease_until": now + timedelta(seconds=lease_s), "updated_at": now}
        if progress is not None:
            values["progress"] = min(1.0, max(0.0, progress))
        with self.catalog.write() as session:
            owned = session.execute(update(JobRow).where(self._owned(claim)).values(**values)).rowcount  # type: ignore[attr-defined]
            cancel = session.scalar(select(JobRow.cancel_requested).where(JobRow.id == claim.job.id))
        return bool(owned), bool(cancel)

    def finish(self, claim: Claim, state: JobState, error: str | None = None) -> bool:
        """End the claim as succeeded, cancelled or dead; False when the claim was lost."""
        assert state in TERMINAL_STATES
        now = self.clock()
        values: dict[str, Any] = {
            "state": state,
            "error": error[:MAX_ERROR] if error else None,
            "claim_token": None,
            "lease_until": None,
            "finished_at": now,
            "updated_at": now,
        }
        if state == "succeeded":
            values["progress"] = 1.0
        return self._update_owned(claim, values)

    def fail(self, claim: Claim, error: str, retry_at: datetime) -> bool:
        """An attempt failed and may be retried at ``retry_at``; False when the claim was lost."""
        now = self.clock()
        values = {
            "state": "failed",
            "error": error[:MAX_ERROR],
            "claim_token": None,
            "lease_until": None,
            "run_after": retry_at,
            "updated_at": now,
            "dispatched_at": None,
        }
        return self._update_owned(claim, values)

    def release(self, claim: Claim) -> bool:
        """Give the job back untouched (a worker stopping): queued again, the attempt not counted."""
        values = {
            "state": "queued",
            "attempts": JobRow.attempts - 1,
            "claim_token": None,
            "lease_until": None,
            "updated_at": self.clock(),
            "dispatched_at": None,
        }
        return self._update_owned(claim, values)

    def _update_owned(self, claim: Claim, values: Mapping[str, Any]) -> bool:
        with self.catalog.write() as session:
            result = session.execute(update(JobRow).where(self._owned(claim)).values(**values))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # ----- Celery dispatch bookkeeping --------------------------------------

    def undispatched(
        self, waiting_stale_s: float, abandoned_stale_s: float, limit: int = 500
    ) -> builtins.list[Job]:
        """Due jobs whose message may be lost: never sent, or sent long ago.

        A waiting job's message may just sit behind a backlog, so it counts as lost only
        after ``waiting_stale_s``; a job whose worker died (lease run out) after
        ``abandoned_stale_s``.
        """
        now = self.clock()
        waiting = and_(
            JobRow.state.in_(("queued", "failed")),
            or_(JobRow.run_after.is_(None), JobRow.run_after <= now),
            or_(
                JobRow.dispatched_at.is_(None),
                JobRow.dispatched_at < now - timedelta(seconds=waiting_stale_s),
            ),
        )
        abandoned = and_(
            JobRow.state == "running",
            JobRow.lease_until < now,
            or_(
                JobRow.dispatched_at.is_(None),
                JobRow.dispatched_at < now - timedelta(seconds=abandoned_stale_s),
            ),
        )
        query = (
            select(JobRow)
            .where(or_(waiting, abandoned))
            .order_by(JobRow.priority.desc(), JobRow.id)
            .limit(limit)
        )
        with self.catalog.read() as session:
            return [to_job(row) for row in session.scalars(query)]

    def due_in_s(self, job_id: int) -> float | None:
        """Seconds until the job can be claimed (backoff, or a live lease); None once it ended."""
        with self.catalog.read() as session:
            row = session.get(JobRow, job_id)
            if row is None or row.state in TERMINAL_STATES:
                return None
            until = _aware(row.lease_until if row.state == "running" else row.run_after)
        return 0.0 if until is None else max(0.0, (until - self.clock()).total_seconds())

    def mark_dispatched(self, job_ids: builtins.list[int]) -> None:
        if not job_ids:
            return
        with self.catalog.write() as session:
            session.execute(update(JobRow).where(JobRow.id.in_(job_ids)).values(dispatched_at=self.clock()))
