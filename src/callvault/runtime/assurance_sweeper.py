"""Reconciliation of undecided call records inside ``callvault serve``.

Call records often arrive before their calls are over, or before a
recording is finalised; they stay ``pending`` until the recording is sealed
or the grace time (``CALLVAULT_ASSURANCE_GRACE_SECONDS``) after the call has
passed. Every ``CALLVAULT_ASSURANCE_INTERVAL`` seconds the records still
``pending`` or ``missing`` are reconciled again, in a worker thread, so a late
recording is found and a missing must-record call raises its alert without
anyone asking. A failing round is logged and retried at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from callvault.errors import CallvaultError
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)


class AssuranceSweeper:
    def __init__(self, ctx: ServiceContext, interval: float) -> None:
        self._ctx = ctx
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.create_task(self._loop(), name="assurance-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await asyncio.to_thread(self.sweep_once)

    def sweep_once(self) -> None:
        try:
            self._ctx.assurance.reconcile(Principal.system(), undecided_only=True)
        except CallvaultError as exc:
            log.error("assurance reconciliation failed, retrying in %.0f s: %s", self._interval, exc.message)
        except Exception:
            log.exception("assurance reconciliation failed unexpectedly; retrying at the next interval")
        self.rounds += 1
