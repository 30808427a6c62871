"""``callvault worker`` with ``CALLVAULT_JOB_QUEUE=celery``: a Celery worker for this site's jobs.

Run it on any machine that shares the catalog (``CALLVAULT_DATABASE_URL``) and
the vault (``CALLVAULT_STORAGE_URL``, the data directory's keys) with the
server. Each worker process builds its own ServiceContext and the handlers of
:func:`callvault.runtime.jobs.handlers.job_handlers` on its first job. SIGTERM
is Celery's warm shutdown: the jobs in hand finish, then it exits; a worker
killed outright has its messages delivered again (acks late) and its jobs
claimed again once their lease runs out.
"""

from __future__ import annotations

import os
import socket
import threading

from celery.signals import worker_process_init

from callvault.jobs.celery_queue import CeleryJobQueue, celery_app, register_run_job
from callvault.jobs.factory import retry_policy
from callvault.jobs.runner import JobRunner
from callvault.jobs.store import JobStore
from callvault.runtime.jobs.dispatcher import Dispatcher
from callvault.runtime.jobs.handlers import job_handlers
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings


class _ProcessRuntime:
    """This process's context, queue and runner, built on first use (after a fork)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pid = 0
        self._built: tuple[CeleryJobQueue, JobRunner] | None = None
        self._ctx: ServiceContext | None = None

    def __call__(self) -> tuple[CeleryJobQueue, JobRunner]:
        with self._lock:
            if self._built is None or self._pid != os.getpid():
                ctx = open_context(self.settings, migrate=False)
                store = JobStore(ctx.catalog)
                queue = CeleryJobQueue(store, self.settings)
                runner = JobRunner(
                    store,
                    job_handlers(ctx),
                    float(self.settings.job_visibility_timeout),
                    retry_policy(self.settings),
                )
                self._ctx, self._built, self._pid = ctx, (queue, runner), os.getpid()
            return self._built


def run_celery_worker(settings: Settings, concurrency: int, pool: str, name: str | None = None) -> None:
    """Consume this site's queue until stopped (blocks)."""
    app = celery_app(settings)
    register_run_job(app, _ProcessRuntime(settings))
    ctx = open_context(settings, migrate=False)

    def forget_inherited_connections(**_: object) -> None:
        # A forked pool process must not use (or close) the main process's catalog connections.
        ctx.catalog.engine.dispose(close=False)

    worker_process_init.connect(forget_inherited_connections, weak=False)
    dispatcher = Dispatcher(CeleryJobQueue(JobStore(ctx.catalog), settings))
    dispatcher.start()
    try:
        app.worker_main(
            [
                "worker",
                f"--loglevel={settings.log_level.upper()}",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                f"--hostname={name or f'callvault@{socket.gethostname()}:{os.getpid()}'}",
                f"--queues={settings.celery_queue}",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        dispatcher.stop()
        ctx.close()
