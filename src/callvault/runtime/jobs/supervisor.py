"""The embedded job workers of ``callvault serve``: start them, restart the dead, stop them.

``CALLVAULT_JOB_WORKERS`` processes (0: none), each its own Python process
with its own catalog connection and vault (see
:mod:`callvault.runtime.jobs.worker_process`), so a handler that crashes or
leaks cannot take the recorder with it. A worker that exits while the server
runs is started again, after a pause that doubles while it keeps dying at
once (a broken model path must not become a fork loop). Stopping sends
SIGTERM: each worker finishes or gives back its job within
``CALLVAULT_JOB_STOP_GRACE`` seconds; one that still runs after that is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from callvault.services.context import ServiceContext
from callvault.settings import Settings

if TYPE_CHECKING:
    from callvault.runtime.jobs.dispatcher import Dispatcher

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.5
RESTART_PAUSE_S = (1.0, 30.0)  # first pause, longest pause
HEALTHY_AFTER_S = 30.0  # a worker that ran this long before dying is restarted at once


@dataclass
class _Slot:
    name: str
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    pause: float = RESTART_PAUSE_S[0]
    not_before: float = 0.0
    restarts: int = field(default=0)


class JobWorkers:
    """Keeps ``count`` embedded worker processes running while the server runs."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.slots = [_Slot(f"{os.getpid()}-job-worker-{n}") for n in range(count)]
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots if slot.process and slot.process.poll() is None]

    async def start(self) -> None:
        for slot in self.slots:
            await asyncio.to_thread(self._spawn, slot)
        self._task = asyncio.create_task(self._watch())

    def _spawn(self, slot: _Slot) -> None:
        command = [sys.executable, "-m", "callvault.runtime.jobs.worker_process", slot.name, str(os.getpid())]
        process = subprocess.Popen(command, stdin=subprocess.PIPE)
        assert process.stdin is not None
        try:
            process.stdin.write(pickle.dumps(self.settings))
            process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; the watcher sees it
        slot.process, slot.started = process, time.monotonic()

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for slot in self.slots:
                if self._stopping or slot.process is None or slot.process.poll() is None:
                    continue
                await self._restart(slot)

    async def _restart(self, slot: _Slot) -> None:
        assert slot.process is not None
        now = time.monotonic()
        if slot.not_before == 0.0:
            healthy = now - slot.started >= HEALTHY_AFTER_S
            slot.pause = RESTART_PAUSE_S[0] if healthy else min(RESTART_PAUSE_S[1], slot.pause * 2)
            slot.not_before = now + (0.0 if healthy else slot.pause)
            log.error(
                "job worker %s exited with status %s; starting it again in %.0f s",
                slot.name,
                slot.process.returncode,
                slot.not_before - now,
            )
        if now < slot.not_before:
            return
        slot.not_before, slot.restarts = 0.0, slot.restarts + 1
        await asyncio.to_thread(self._spawn, slot)

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM); no more restarts."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)

    async def stop(self) -> None:
        """Stop every worker: SIGTERM, the grace, then SIGKILL for any still running."""
        self.terminate()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = time.monotonic() + self.settings.job_stop_grace + 5.0
        for slot in self.slots:
            process = slot.process
            if process is None:
                continue
            left = max(0.1, deadline - time.monotonic())
            try:
                await asyncio.to_thread(process.wait, left)
            except subprocess.TimeoutExpired:
                log.error("job worker %s did not stop in time; killing it", slot.name)
                process.kill()
                await asyncio.to_thread(process.wait)


def celery_dispatcher(ctx: ServiceContext) -> Dispatcher | None:
    """With the Celery queue, the server also sweeps for lost messages (started here)."""
    if ctx.settings.job_queue != "celery":
        return None
    from callvault.jobs.celery_queue import CeleryJobQueue
    from callvault.runtime.jobs.dispatcher import Dispatcher

    assert isinstance(ctx.jobs, CeleryJobQueue)
    dispatcher = Dispatcher(ctx.jobs)
    dispatcher.start()
    return dispatcher
