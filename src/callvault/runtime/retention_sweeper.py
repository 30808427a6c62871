"""The retention sweep inside ``callvault serve``: every ``CALLVAULT_RETENTION_INTERVAL`` seconds.

Each round, in a worker thread (the catalog and the vault are blocking I/O):
finish deletions a previous run left pending, delete what is due, then start a
new key epoch if the current one is over (:mod:`callvault.services.key_epochs`).
A failing round is logged and retried at the next interval; it never stops the
server. The first round runs shortly after start, so a server that restarts
often still sweeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callvault.errors import CallvaultError
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)

FIRST_ROUND_DELAY = 5.0


class RetentionSweeper:
    def __init__(self, ctx: ServiceContext, interval: float, first_delay: float = FIRST_ROUND_DELAY) -> None:
        self._ctx = ctx
        self._interval = interval
        self._first_delay = first_delay
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop(), name="retention-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        await asyncio.sleep(min(self._first_delay, self._interval))
        while True:
            await asyncio.to_thread(self.sweep_once)
            await asyncio.sleep(self._interval)

    def sweep_once(self) -> None:
        system = Principal.system()
        try:
            result = self._ctx.retention.run(system)
            if result["count"] or result["resumed"]:
                log.info(
                    "retention sweep: %d deleted (%d bytes), %d held, %d resumed",
                    result["count"],
                    result["bytes"],
                    result["held"],
                    result["resumed"],
                )
            self._ctx.key_epochs.rotate_if_due()
        except CallvaultError as exc:
            log.error("retention sweep failed, retrying in %.0f s: %s", self._interval, exc.message)
        except Exception:
            log.exception("retention sweep failed unexpectedly; retrying at the next interval")
        self.rounds += 1
