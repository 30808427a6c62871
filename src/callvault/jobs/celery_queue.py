"""The Celery job queue: the catalog keeps every job, Redis or RabbitMQ carries its id.

Scale-out path (``CALLVAULT_JOB_QUEUE=celery``): ``callvault worker`` starts
Celery workers on any machine that shares the catalog and the vault. A job is
still a row of the catalog's ``jobs`` table (so ``/api/v1/jobs``, the metrics
and ``callvault jobs`` read one place); the broker only carries a message
naming the job. A worker claims that row under a lease before running it and
writes the outcome under the claim's token, exactly as an embedded worker does,
so a message delivered twice runs the job once.

Messages are acknowledged late (after the job ended) and rejected when their
worker is lost, so a killed worker's message is delivered again (RabbitMQ at
once, Redis after ``CALLVAULT_JOB_VISIBILITY_TIMEOUT``). Whatever a broker
loses — a message published while it was down, an acknowledged message whose
worker died — the dispatcher sweep (:meth:`CeleryJobQueue.dispatch_due`, run
by ``callvault serve`` and every ``callvault worker``) sends again for jobs
that are due and have no recent message.

Job priorities map onto the broker's ten levels (0–9, higher first; Redis
counts the other way round, which :func:`broker_priority` hides).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlparse

from celery import Celery
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.jobs.port import TERMINAL_STATES, Job, JobState
from callvault.jobs.runner import JobRunner
from callvault.jobs.store import JobStore
from callvault.settings import Settings

log = logging.getLogger(__name__)

TASK_NAME = "callvault.run_job"
MAX_COUNTDOWN_S = 3600.0
# A waiting job whose message is this old is presumed lost and sent again.
WAITING_STALE_FACTOR = 10


def _is_redis(broker_url: str) -> bool:
    return urlparse(broker_url).scheme in {"redis", "rediss"}


def broker_priority(priority: int, broker_url: str) -> int:
    level = max(0, min(9, priority))
    return 9 - level if _is_redis(broker_url) else level


def celery_app(settings: Settings, queue: str | None = None) -> Celery:
    """The Celery application of this site (no result backend: results live in the catalog)."""
    app = Celery("callvault", broker=settings.celery_broker_url, set_as_current=False)
    options: dict[str, Any] = {"visibility_timeout": settings.job_visibility_timeout}
    if _is_redis(settings.celery_broker_url):
        options |= {"priority_steps": list(range(10)), "sep": ":", "queue_order_strategy": "priority"}
    app.conf.update(
        task_default_queue=queue or settings.celery_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_queue_max_priority=10,
        task_default_priority=0,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_transport_options=options,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


class CeleryJobQueue:
    """The ``JobQueue`` port: catalog rows, plus a broker message per job that is due."""

    def __init__(self, store: JobStore, settings: Settings, app: Celery | None = None) -> None:
        self.store = store
        self.settings = settings
        self.app = app if app is not None else celery_app(settings)

    # ----- the port -----------------------------------------------------------

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
        job, new = self.store.enqueue(
            kind, payload, key=key, priority=priority, max_attempts=max_attempts, subject=subject
        )
        if new:
            self.publish_quietly(job)
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
        """Enqueue inside the caller's transaction; the message is sent once it has committed."""
        job, new = self.store.enqueue_in(
            session, kind, payload, key=key, priority=priority, max_attempts=max_attempts, subject=subject
        )
        if new:
            Catalog.after_write(session, lambda: self.publish_quietly(job))
        return job

    def get(self, job_id: int) -> Job | None:
        return self.store.get(job_id)

    def list(self, *, state: JobState | None = None, kind: str | None = None, limit: int = 100) -> list[Job]:
        return self.store.list(state=state, kind=kind, limit=limit)

    def cancel(self, job_id: int) -> Job | None:
        return self.store.cancel(job_id)  # a waiting job's message finds it cancelled and is dropped

    def retry(self, job_id: int) -> Job | None:
        before = self.store.get(job_id)
        job = self.store.retry(job_id)
        if job is not None and before is not None and before.state != job.state:
            self.publish_quietly(job)
        return job

    def counts(self) -> dict[str, int]:
        return self.store.counts()

    def oldest_queued_age_s(self) -> float | None:
        return self.store.oldest_queued_age_s()

    def close(self) -> None:
        self.app.close()

    # ----- messages -------------------------------------------------------------

    def publish(self, job: Job, countdown: float | None = None) -> None:
        self.app.send_task(
            TASK_NAME,
            args=[job.id],
            priority=broker_priority(job.priority, self.settings.celery_broker_url),
            countdown=None if countdown is None else min(MAX_COUNTDOWN_S, max(0.0, countdown)),
        )
        self.store.mark_dispatched([job.id])

    def publish_quietly(self, job: Job, countdown: float | None = None) -> None:
        """Send the job's message; a broker that is down is logged, and the sweep sends later."""
        try:
            self.publish(job, countdown)
        except Exception as exc:  # the job is safe in the catalog either way
            log.warning("job %d: broker unreachable (%s); the dispatcher will send it later", job.id, exc)

    def dispatch_due(self) -> int:
        """Send again for due jobs without a recent message; how many were sent."""
        lease = float(self.settings.job_visibility_timeout)
        sent = 0
        for job in self.store.undispatched(lease * WAITING_STALE_FACTOR, lease):
            self.publish(job)
            sent += 1
        return sent

    # ----- the worker side ----------------------------------------------------

    def execute(self, job_id: int, runner: JobRunner, worker: str) -> JobState | None:
        """Run the job a message names, if it is due; otherwise leave it for a later message."""
        claim = self.store.claim(job_id, worker, runner.lease_s)
        if claim is None:
            self._not_now(job_id)
            return None
        state = runner.run(claim)
        if state == "failed":
            job = self.store.get(job_id)
            if job is not None:
                self.publish_quietly(job, self.store.due_in_s(job_id))
        return state

    def _not_now(self, job_id: int) -> None:
        job = self.store.get(job_id)
        if job is None or job.state in TERMINAL_STATES:
            return  # a duplicate, or cancelled while waiting: nothing to do
        wait = self.store.due_in_s(job_id)
        if wait is not None:
            # Running under a live lease (a redelivered message) or backing off: look again then.
            self.publish_quietly(job, wait + 0.5)


def register_run_job(app: Celery, runtime: Callable[[], tuple[CeleryJobQueue, JobRunner]]) -> None:
    """Register the one task on ``app``: run the job a message names, in this worker process.

    ``runtime`` gives this process's queue and runner (built on first use, after a
    prefork worker has forked, so each process has its own catalog connections).
    """

    def run_job(job_id: object) -> None:
        if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id <= 0:
            log.error("dropped a job message that names no job (%r)", type(job_id).__name__)
            return
        queue, runner = runtime()
        queue.execute(job_id, runner, f"{socket.gethostname()}:{os.getpid()}")

    app.task(name=TASK_NAME, shared=False, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(
        run_job
    )
