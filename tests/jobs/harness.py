"""The job queue under test, whichever implementation: a queue, a clock the test moves,
and a way to run every job that is due, with handlers the test defines.

The embedded harness claims and runs jobs in the test's own thread; the Celery one
hands them to a Celery worker in this process over the real broker. Both keep the
jobs in the test's catalog, as the product does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from callvault.jobs.embedded import EmbeddedJobQueue, EmbeddedWorker
from callvault.jobs.port import JobHandler, JobQueue
from callvault.jobs.runner import JobRunner, RetryPolicy
from callvault.jobs.store import JobStore
from callvault.services.context import ServiceContext

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


@contextmanager
def embedded_harness(ctx: ServiceContext) -> Iterator[EmbeddedHarness]:
    clock = FakeClock()
    yield EmbeddedHarness(JobStore(ctx.catalog, clock), clock)


def recorder(log: list[tuple[str, Mapping[str, Any]]], name: str) -> JobHandler:
    def handle(payload: Mapping[str, Any], _progress: Any) -> None:
        log.append((name, payload))

    return handle


def failing(reason: str, error: Callable[[str], Exception] = RuntimeError) -> JobHandler:
    def handle(_payload: Mapping[str, Any], _progress: Any) -> None:
        raise error(reason)

    return handle
