"""Sealing a rendered recording: final status, the vault (encrypt, hash, sign, catalogue), the journal deleted.

``RecordingService.finalise`` runs in a thread (it writes the vault and the
catalogue). Before the seal, the call's opening is checked for the recording
announcement (:mod:`callvault.services.disclosure_check`, in a thread too):
where it was heard becomes an event of the recording, signed with it. A
check that fails is logged and the recording sealed without it. A seal that fails keeps the rendered recording in a
:class:`~.seal_retry.SealRetry` and the journal on disk, so it is tried again
later, or recovered after a stop; a journal whose recording the catalogue
does not know is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from callvault.errors import NotFound
from callvault.runtime.media import metrics
from callvault.runtime.media.journal_backlog import LOSS_EVENT
from callvault.runtime.media.seal_retry import SEAL_RETRY_SECONDS, SealRetry
from callvault.runtime.media.tracks import RenderedRecording
from callvault.services.call_record import CallEvent, FinalStatus
from callvault.services.disclosure_check import DisclosureChecker
from callvault.services.recordings import RecordingService
from callvault.storage.spool import delete_spool

log = logging.getLogger(__name__)

__all__ = ["SEAL_RETRY_SECONDS", "Sealer", "final_status"]


def final_status(requested: FinalStatus, rendered: RenderedRecording, loss_threshold: float) -> FinalStatus:
    """The status a recording is sealed with.

    A call that ended normally but lost more than ``CALLVAULT_LOSS_THRESHOLD``
    of its packets, or whose audio storage lost (full disk, damaged journal),
    is ``incomplete``, never ``complete``.
    """
    if requested != "complete":
        return requested
    if rendered.loss_fraction > loss_threshold or rendered.storage_incomplete:
        return "incomplete"
    return requested


class Sealer:
    def __init__(
        self,
        recordings: RecordingService,
        loss_threshold: float,
        retry: float = SEAL_RETRY_SECONDS,
        disclosure: DisclosureChecker | None = None,
    ) -> None:
        self._recordings = recordings
        self._loss_threshold = loss_threshold
        self._disclosure = disclosure
        self.unsealed = SealRetry(retry)  # rendered, sealing failed: tried again (see .seal_retry)

    def due(self, now: float) -> list[tuple[Path, RenderedRecording, FinalStatus]]:
        """Recordings whose failed seal is due another try at ``now`` (``time.monotonic()``)."""
        return self.unsealed.due(now)

    async def seal(self, path: Path, rendered: RenderedRecording, status: FinalStatus) -> bool:
        """Seal a rendered recording and delete its journal; False when it stays for later."""
        final = final_status(status, rendered, self._loss_threshold)
        ended = datetime.fromtimestamp(rendered.ended_at, UTC)
        events = rendered.events + await self._check_disclosure(rendered)
        try:
            await asyncio.to_thread(
                self._recordings.finalise,
                rendered.recording_id,
                rendered.audio,
                final,
                rendered.streams,
                events,
                ended,
            )
        except NotFound:
            log.warning("spool %s belongs to no catalogued recording; deleting it", path)
            await asyncio.to_thread(delete_spool, path)
            return False
        except Exception:
            log.exception(
                "sealing recording %s failed; its spool stays and sealing is retried", rendered.recording_id
            )
            self.unsealed.add(path, rendered, status, time.monotonic())
            return False
        await asyncio.to_thread(delete_spool, path)
        metrics.RECORDINGS_FINALISED.labels(final).inc()
        metrics.count_packets(rendered.streams)
        metrics.SPOOL_LOST_PACKETS.inc(rendered.spool_lost)
        metrics.SPOOL_WRITE_FAILURES.inc(sum(1 for e in rendered.events if e.kind == LOSS_EVENT))
        return True

    async def _check_disclosure(self, rendered: RenderedRecording) -> list[CallEvent]:
        """Check and store the call's disclosure state; the events to seal with it."""
        if self._disclosure is None:
            return []
        began = time.perf_counter()
        try:
            verdict = await asyncio.to_thread(self._disclosure.check, rendered.recording_id, rendered.opening)
        except NotFound:
            return []  # the seal finds it gone too, and deletes the journal
        except Exception:
            log.exception("disclosure check of %s failed; sealing without it", rendered.recording_id)
            return []
        metrics.DISCLOSURE_CHECK_SECONDS.observe(time.perf_counter() - began)
        metrics.DISCLOSURE_CHECKS.labels(verdict.status).inc()
        return verdict.events()
