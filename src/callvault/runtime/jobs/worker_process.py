"""One embedded job worker process: its own ServiceContext, the handlers, the claim loop.

Started by ``callvault serve`` (see :mod:`callvault.runtime.jobs.supervisor`)
as ``python -m callvault.runtime.jobs.worker_process NAME SERVER_PID`` with the
server's settings pickled on stdin (the server's own, overrides included), or
by ``callvault worker`` in the foreground. It dies with the server
(:mod:`callvault.runtime.media.lifeline`).

The claim loop runs in a thread so that the main thread always handles SIGTERM
at once, even while a handler is deep in native code: the worker stops
claiming, lets the current job finish for ``CALLVAULT_JOB_STOP_GRACE`` seconds,
then gives it back to the queue (not counted as an attempt) and exits.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import sys
import threading
import time

from callvault.jobs.embedded import EmbeddedWorker
from callvault.jobs.factory import retry_policy
from callvault.jobs.runner import JobRunner
from callvault.jobs.store import JobStore
from callvault.log_format import configure_logging
from callvault.runtime.jobs.handlers import job_handlers
from callvault.runtime.media import lifeline
from callvault.services.context import open_context
from callvault.settings import Settings

log = logging.getLogger(__name__)


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_embedded_worker(settings: Settings, name: str) -> None:
    """Run jobs until SIGTERM or SIGINT (in the main thread)."""
    ctx = open_context(settings, migrate=False)
    store = JobStore(ctx.catalog)
    runner = JobRunner(
        store, job_handlers(ctx), float(settings.job_visibility_timeout), retry_policy(settings)
    )
    worker = EmbeddedWorker(store, runner, name)
    stop_at: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        if not stop_at:
            log.info("job worker %s: %s, finishing the current job", name, signal.Signals(signum).name)
            stop_at.append(time.monotonic() + settings.job_stop_grace)
        worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loop = threading.Thread(target=worker.run, name="job-worker", daemon=True)
    loop.start()
    log.info("job worker %s started", name)
    while loop.is_alive():
        loop.join(0.2)
        if stop_at and time.monotonic() > stop_at[0] and loop.is_alive():
            _give_back(store, worker, name)
            os._exit(0)  # the handler thread cannot be stopped from outside; its job is queued again
    ctx.close()
    log.info("job worker %s stopped", name)


def _give_back(store: JobStore, worker: EmbeddedWorker, name: str) -> None:
    claim = worker.current
    if claim is not None and store.release(claim):
        log.warning("job worker %s: job %d did not finish in time, queued again", name, claim.job.id)


def main() -> None:
    name, server_pid = sys.argv[1], int(sys.argv[2])
    lifeline.watch(server_pid)
    settings: Settings = pickle.load(sys.stdin.buffer)  # from the server that started us
    configure_logging(settings.log_level)
    run_embedded_worker(settings, name)


if __name__ == "__main__":
    main()
