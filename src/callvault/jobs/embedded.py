"""The embedded job queue: the catalog's ``jobs`` table is the queue, nothing else to run.

``callvault serve`` starts worker processes (``CALLVAULT_JOB_WORKERS``) that
each loop over :class:`EmbeddedWorker`: claim the most urgent due job, run it,
repeat; when nothing is due, wait a moment. A worker that dies leaves its job
running under a lease that runs out, after which another worker claims it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from callvault.jobs.port import Job, JobState
from callvault.jobs.runner import JobRunner
from callvault.jobs.store import Claim, JobStore

log = logging.getLogger(__name__)


class EmbeddedJobQueue:
    """The ``JobQueue`` port over the catalog table alone."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        key: str | None = None,
        priority: int = 0,
        max_attempts: int = 5,
        subject: str | None = None,
    ) -> Job:
        job, _new = self.store.enqueue(
            kind, payload, key=key, priority=priority, max_attempts=max_attempts, subject=subject
        )
        return job

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
        """Enqueue inside the caller's transaction: the job exists exactly if it commits."""
        job, _new = self.store.enqueue_in(
            session, kind, payload, key=key, priority=priority, max_attempts=max_attempts, subject=subject
        )
        return job

    def get(self, job_id: int) -> Job | None:
        return self.store.get(job_id)

    def list(self, *, state: JobState | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        return self.store.list(state=state, kind=kind, limit=limit)

    def cancel(self, job_id: int) -> Job | None:
        return self.store.cancel(job_id)

    def retry(self, job_id: int) -> Job | None:
        return self.store.retry(job_id)

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def oldest_queued_age_s(self) -> float | None:
        return self.store.oldest_queued_age_s()

    def close(self) -> None:
        """Nothing held beyond the catalog."""


class EmbeddedWorker:
    """Claims and runs jobs until :meth:`stop`; at most one job at a time."""

    def __init__(self, store: JobStore, runner: JobRunner, name: str, poll_s: float = 0.5) -> None:
        self.store, self.runner, self.name, self.poll_s = store, runner, name, poll_s
        self.stopping = threading.Event()
        self.current: Claim | None = None

    def run_once(self) -> bool:
        """Claim and run one due job; False when none was due."""
        if not self.store.has_due():
            return False
        claim = self.store.claim_next(self.name, self.runner.lease_s)
        if claim is None:
            return False
        self.current = claim
        try:
            self.runner.run(claim)
        finally:
            self.current = None
        return True

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                busy = self.run_once()
            except Exception:  # a catalog hiccup must not end the worker; the next round retries
                log.exception("job worker %s: claiming failed", self.name)
                busy = False
            if not busy:
                self.stopping.wait(self.poll_s)

    def stop(self) -> None:
        self.stopping.set()
