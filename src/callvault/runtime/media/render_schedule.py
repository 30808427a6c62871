"""When each open recording gets a render step, and its last one at hang-up.

The engine asks every second (:meth:`RenderSchedule.start_due`); a recording
is due when its interval has passed and its previous step is done. The
interval grows with the call (``step`` up to :data:`MAX_RENDER_STEP`, an
eighth of the call so far): each step re-lays the whole timeline, so fixed
short steps would cost O(n²) over a long call. A recording's steps run in the
render worker it is pinned to (:class:`~.render_pool.RenderPool`), which keeps
its :class:`~.renderer.JournalRenderer` in memory; nothing runs in the
engine's process but the submission.

At hang-up :meth:`RenderSchedule.finish` waits for a running step, renders
only the tail (hold-back + at most one step: under 2.5 minutes of audio for
any call length) and forgets the recording; if that fails the journal is
rendered again from its first byte (:func:`~.render_jobs.render_journal`).
The schedule holds an entry per open recording only.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callvault.runtime.media import metrics
from callvault.runtime.media.admission import Admission
from callvault.runtime.media.render_jobs import advance_recording, finish_recording, render_journal
from callvault.runtime.media.render_pool import RenderPool
from callvault.runtime.media.tracks import RenderedRecording, RenderOptions
from callvault.settings import Settings

log = logging.getLogger(__name__)

RENDER_STEP = 10.0
MAX_RENDER_STEP = 120.0


@dataclass
class _Plan:
    journal: str
    key: bytes
    started_at: float
    last_step: float
    job: asyncio.Future[None] | None = None
    rendered_seconds: float = 0.0
    closing: bool = field(default=False)


def default_render_workers() -> int:
    # The cores this process may run on, not the machine's: pinned (taskset, a container's
    # cpuset) to one core, 15 workers of a 16-core host would only share it and cost memory.
    return max(1, len(os.sched_getaffinity(0)) - 1)


class RenderSchedule:
    """The render steps of every open recording, run in a :class:`RenderPool` it owns.

    ``executor`` (tests, benchmarks) replaces the worker processes, see :mod:`.render_pool`.
    """

    def __init__(
        self,
        settings: Settings,
        executor: Executor | None = None,
        step: float = RENDER_STEP,
        admission: Admission | None = None,
    ) -> None:
        # ``admission`` measures every job's wait (see .admission).
        self.pool = RenderPool(default_render_workers(), executor, admission)
        self._settings = settings
        self._options = RenderOptions.from_settings(settings)
        self._step = step
        self._plans: dict[str, _Plan] = {}
        self._failures = 0

    def __len__(self) -> int:
        return len(self._plans)

    def add(self, recording_id: str, journal: str, key: bytes, started_at: float) -> None:
        self._plans[recording_id] = _Plan(journal, key, started_at, started_at)
        self.pool.pin(recording_id)

    def hang_up(self, recording_id: str) -> None:
        """No more steps for this recording: its call ended and :meth:`finish` follows."""
        plan = self._plans.get(recording_id)
        if plan is not None:
            plan.closing = True

    def rendered_seconds(self, recording_id: str) -> float:
        """Seconds of the call rendered so far (0 for a recording not open)."""
        plan = self._plans.get(recording_id)
        return plan.rendered_seconds if plan is not None else 0.0

    def start_due(self, now: float) -> list[asyncio.Future[None]]:
        """Start the step of every recording due one at ``now``; returns the jobs started."""
        jobs: list[asyncio.Future[None]] = []
        for recording_id, plan in list(self._plans.items()):
            if plan.closing or plan.job is not None:
                continue
            interval = min(MAX_RENDER_STEP, max(self._step, (now - plan.started_at) / 8))
            if now - plan.last_step < interval:
                continue
            plan.last_step = now
            plan.job = asyncio.ensure_future(self._advance(recording_id, plan, now))
            jobs.append(plan.job)
        return jobs

    async def _advance(self, recording_id: str, plan: _Plan, now: float) -> None:
        try:
            plan.rendered_seconds = await self.pool.run(
                recording_id, advance_recording, plan.journal, plan.key, self._options, now
            )
        except Exception:
            # Hang-up renders from the journal whatever happened here.
            self._failures += 1
            log.log(
                logging.ERROR if self._failures == 1 else logging.DEBUG,
                "render step of %s failed",
                recording_id,
                exc_info=True,
            )
        finally:
            plan.job = None

    async def finish(
        self, recording_id: str, ended_at: float, spool_losses: list[dict[str, Any]]
    ) -> RenderedRecording:
        """Render the tail after hang-up; ``spool_losses``: what capture could not journal."""
        options = RenderOptions.from_settings(self._settings, ended_at, tuple(spool_losses))
        plan = self._plans[recording_id]
        plan.closing = True  # also when hang_up was not called (a stop)
        try:
            if plan.job is not None:
                await asyncio.gather(plan.job, return_exceptions=True)
            try:
                rendered = await self.pool.run(
                    recording_id, finish_recording, plan.journal, plan.key, options
                )
            except Exception:
                log.exception("rendering %s at hang-up failed; rendering its journal again", recording_id)
                return await self.pool.run(None, render_journal, plan.journal, plan.key, options)
            metrics.RENDER_TAIL_SECONDS.observe(rendered.tail_seconds)
            return rendered
        finally:
            self._plans.pop(recording_id, None)
            self.pool.unpin(recording_id)

    async def render_whole(
        self, journal: Path, key: bytes, ended_at: float | None = None
    ) -> RenderedRecording:
        """The whole journal in one job (crash recovery, sniffed calls), ending at ``ended_at`` or its last audio."""
        options = self._options if ended_at is None else RenderOptions.from_settings(self._settings, ended_at)
        return await self.pool.run(None, render_journal, str(journal), key, options)
