"""Render worker processes, with each recording's call-time jobs pinned to one of them.

The call-time renderer (:mod:`.renderer`) keeps a session's timelines,
decoders and Opus encoder in the memory of the process that runs its jobs,
so every job of one recording must go to the same process. A
``ProcessPoolExecutor`` hands jobs to whichever worker is free, so this pool
is a row of one-process executors instead: a recording is pinned to the
least loaded one when its session opens and stays there. One-shot jobs
(crash recovery) go to any of them in turn.

A worker that dies (``BrokenProcessPool``) is replaced at once; the state of
the recordings pinned to it is gone, and their hang-up renders them again
from the journal (:func:`~.render_jobs.finish_recording` starts afresh when
it finds no state).

An executor passed in (tests, benchmarks) is used for everything; it must
keep state between jobs of one recording: a thread pool, or a process pool of
one worker.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from callvault.runtime.media.admission import Admission
from callvault.runtime.media.lifeline import watch

log = logging.getLogger(__name__)

T = TypeVar("T")


def _process_executor() -> Executor:
    # forkserver: forking a process that runs the capture thread could copy a
    # held lock into the child; the fork server is single-threaded.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["callvault.runtime.media.render_jobs"])
    # Each worker dies with this process even after a kill -9 (see .lifeline).
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=watch, initargs=(os.getpid(),))


class RenderPool:
    def __init__(
        self, workers: int, executor: Executor | None = None, admission: Admission | None = None
    ) -> None:
        if workers < 1:
            raise ValueError(f"a render pool needs at least one worker, not {workers}")
        self._own = executor is None
        self._executors: list[Executor] = (
            [_process_executor() for _ in range(workers)] if executor is None else [executor]
        )
        self._load = [0] * len(self._executors)
        self._pinned: dict[str, int] = {}
        self._turn = itertools.cycle(range(len(self._executors)))
        # Every job's wait is the backlog admission control measures (see .admission).
        self._admission = admission

    @property
    def workers(self) -> int:
        return len(self._executors)

    @property
    def pinned(self) -> int:
        """Recordings pinned to a worker now (open calls and those finishing)."""
        return len(self._pinned)

    def pin(self, key: str) -> None:
        if key in self._pinned:
            return
        index = min(range(len(self._load)), key=self._load.__getitem__)
        self._pinned[key] = index
        self._load[index] += 1

    def unpin(self, key: str) -> None:
        index = self._pinned.pop(key, None)
        if index is not None:
            self._load[index] -= 1

    async def run(self, key: str | None, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker ``key`` is pinned to (any worker for None)."""
        index = self._pinned.get(key, -1) if key is not None else -1
        if index < 0:
            index = next(self._turn)
        executor = self._executors[index]
        loop = asyncio.get_running_loop()
        token = self._admission.submitted() if self._admission is not None else None
        try:
            return await loop.run_in_executor(executor, fn, *args)
        except BrokenProcessPool:
            if self._own and self._executors[index] is executor:
                log.error("render worker %d died; starting a new one", index)
                executor.shutdown(wait=False)
                self._executors[index] = _process_executor()
            raise
        finally:
            if token is not None and self._admission is not None:
                self._admission.finished(token)

    async def warm(self) -> None:
        """Start every worker process now, so the first hang-up after a start does not wait
        for a fork server and a worker to come up and import the renderer (seconds on a busy host)."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(executor, os.getpid) for executor in self._executors))

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the workers; ``wait=False`` drops queued jobs and returns at once (bounded stop)."""
        if self._own:
            for executor in self._executors:
                executor.shutdown(wait=wait, cancel_futures=not wait)
        self._executors = []
