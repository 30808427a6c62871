"""The job queue under test, whichever implementation: a queue, a clock the test moves,
and a way to run every job that is due, with handlers the test defines.

The embedded harness claims and runs jobs in the test's own thread; the Celery one
hands them to a Celery worker in this process over the real broker. Both keep the
jobs in the test's catalog, as the product does.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from celery.contrib.testing.worker import start_worker

from callvault.jobs.celery_queue import CeleryJobQueue, celery_app, register_run_job
from callvault.jobs.embedded import EmbeddedJobQueue, EmbeddedWorker
from callvault.jobs.port import JobHandler, JobQueue
from callvault.jobs.runner import JobRunner, RetryPolicy
from callvault.jobs.store import JobStore
from callvault.services.context import ServiceContext
from callvault.settings import Settings

BROKERS = {"redis": "redis://127.0.0.1:6379/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:5672//"}
LEASE_S = 30.0
RETRY = RetryPolicy(base_s=10.0, max_s=40.0)


class FakeClock:
    """UTC now, moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


class Harness(Protocol):
    queue: JobQueue
    store: JobStore
    clock: FakeClock
    handlers: dict[str, JobHandler]

    def run_due(self) -> None:
        """Run every job due now, and what becomes due meanwhile, until none is left."""

    def real_clock_queue(self) -> JobQueue:
        """The same queue on the real clock, for jobs run by worker processes."""

    def worker_env(self) -> dict[str, str]:
        """Environment for a `callvault worker` of this queue."""


@dataclass
class EmbeddedHarness:
    store: JobStore
    clock: FakeClock
    handlers: dict[str, JobHandler] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queue: JobQueue = EmbeddedJobQueue(self.store)
        self.runner = JobRunner(self.store, self.handlers, LEASE_S, RETRY)
        self.worker = EmbeddedWorker(self.store, self.runner, "test-worker")

    def run_due(self) -> None:
        while self.worker.run_once():
            pass

    def real_clock_queue(self) -> JobQueue:
        return EmbeddedJobQueue(JobStore(self.store.catalog))

    def worker_env(self) -> dict[str, str]:
        return {"CALLVAULT_JOB_QUEUE": "embedded"}


@contextmanager
def embedded_harness(ctx: ServiceContext) -> Iterator[EmbeddedHarness]:
    clock = FakeClock()
    yield EmbeddedHarness(JobStore(ctx.catalog, clock), clock)


class CeleryHarness:
    """Jobs in the test's catalog, messages through the real broker on a queue of this test's
    own, run by a Celery worker in this process (started at the first ``run_due``)."""

    def __init__(self, store: JobStore, clock: FakeClock, settings: Settings, stack: ExitStack) -> None:
        self.store, self.clock, self.settings, self.stack = store, clock, settings, stack
        self.handlers: dict[str, JobHandler] = {}
        self.app = celery_app(settings)
        # No AMQP heartbeats: with them a stopping in-process worker waits ~10 s for the next one.
        self.app.conf.broker_heartbeat = 0
        self.celery_queue = CeleryJobQueue(store, settings, self.app)
        self.queue: JobQueue = self.celery_queue
        runner = JobRunner(store, self.handlers, LEASE_S, RETRY)
        register_run_job(self.app, lambda: (self.celery_queue, runner))
        self.started = False

    def run_due(self) -> None:
        if not self.started:
            self.stack.enter_context(
                start_worker(self.app, perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING")
            )
            self.started = True
        # Messages sent on the real clock may wait for a backoff the test's clock has passed:
        # send one for every job due now, as the dispatcher sweep would (duplicates are dropped).
        for job in self.store.undispatched(0, 0):
            self.celery_queue.publish(job)
        deadline = time.monotonic() + 60
        while self.store.has_due() or self.store.counts()["running"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still due or running after 60 s: {self.store.counts()}")
            time.sleep(0.02)

    def real_clock_queue(self) -> JobQueue:
        return CeleryJobQueue(JobStore(self.store.catalog), self.settings, self.app)

    def worker_env(self) -> dict[str, str]:
        return {
            "CALLVAULT_JOB_QUEUE": "celery",
            "CALLVAULT_CELERY_BROKER_URL": self.settings.celery_broker_url,
            "CALLVAULT_CELERY_QUEUE": self.settings.celery_queue,
        }


@contextmanager
def celery_harness(ctx: ServiceContext, broker: str) -> Iterator[CeleryHarness]:
    settings = replace(
        ctx.settings,
        job_queue="celery",
        celery_broker_url=BROKERS[broker],
        celery_queue=f"callvault-test-{uuid.uuid4().hex[:12]}",
    )
    clock = FakeClock()
    with ExitStack() as stack:
        harness = CeleryHarness(JobStore(ctx.catalog, clock), clock, settings, stack)
        stack.callback(_delete_queue, harness)
        yield harness


def _delete_queue(harness: CeleryHarness) -> None:
    with harness.app.connection_for_write() as connection:
        connection.default_channel.queue_delete(harness.settings.celery_queue)
    harness.app.close()


def recorder(log: list[tuple[str, Mapping[str, Any]]], name: str) -> JobHandler:
    def handle(payload: Mapping[str, Any], _progress: Any) -> None:
        log.append((name, payload))

    return handle


def failing(reason: str, error: Callable[[str], Exception] = RuntimeError) -> JobHandler:
    def handle(_payload: Mapping[str, Any], _progress: Any) -> None:
        raise error(reason)

    return handle
