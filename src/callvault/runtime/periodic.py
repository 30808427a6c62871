"""A round of blocking work every N seconds inside ``callvault serve``.

One implementation of the loop the background sweeps share (retention,
assurance): each round runs in a worker thread (catalog and vault are blocking
I/O), a failing round is logged and retried at the next interval and never
stops the server, and ``rounds`` counts the rounds run so tests can wait on it.
An interval of 0 turns the task off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callvault.errors import CallvaultError

log = logging.getLogger(__name__)


class PeriodicRound:
    """Subclasses name the task and implement :meth:`run_round`."""

    name = "periodic"

    def __init__(self, interval: float, first_delay: float | None = None) -> None:
        self._interval = interval
        # None: the first round waits a whole interval (nothing is due right after start).
        self._first_delay = interval if first_delay is None else min(first_delay, interval)
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(self._first_delay)
        while True:
            await asyncio.to_thread(self.sweep_once)
            await asyncio.sleep(self._interval)

    def sweep_once(self) -> None:
        try:
            self.run_round()
        except CallvaultError as exc:
            log.error("%s failed, retrying in %.0f s: %s", self.name, self._interval, exc.message)
        except Exception:
            log.exception("%s failed unexpectedly; retrying at the next interval", self.name)
        self.rounds += 1

    def run_round(self) -> None:
        raise NotImplementedError
