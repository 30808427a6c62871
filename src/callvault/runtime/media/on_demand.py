"""On-demand calls: audio held in the encrypted spool until someone asks to keep it.

An ``on_demand`` rule's call is captured like any other (journal and render
side file in the spool, both sealed under keys only this server holds), but
its seal waits: for ``POST /api/v1/calls/{ref}/keep`` during the call or up to
``CALLVAULT_ON_DEMAND_KEEP_SECONDS`` after it. The decision itself is the
catalogue's (``recordings.kept_at``, written by the keep request; read by
``RecordingService.finalise``, which discards the audio of a call nobody kept and
catalogues it ``not_kept``); this gate only holds the seal back until a keep
arrives or the time is up, so a kept call is sealed at once and a journal
recovered after a crash is decided by the same catalogue column.
"""

from __future__ import annotations

import asyncio


class KeepGate:
    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._waiting: dict[str, asyncio.Event] = {}

    def hold(self, recording_id: str) -> None:
        """``recording_id`` is an on-demand call: its seal waits for :meth:`keep` or the time."""
        self._waiting.setdefault(recording_id, asyncio.Event())

    def holds(self, recording_id: str) -> bool:
        """A keep request still counts: the call is live or within its keep time."""
        return recording_id in self._waiting

    def keep(self, recording_id: str) -> None:
        event = self._waiting.get(recording_id)
        if event is not None:
            event.set()

    async def wait(self, recording_id: str) -> None:
        """After the call ended: until kept, or ``keep_seconds`` passed. Then keep requests are refused."""
        event = self._waiting.get(recording_id)
        if event is None:
            return
        try:
            await asyncio.wait_for(event.wait(), self.keep_seconds)
        except TimeoutError:
            pass
        finally:
            self._waiting.pop(recording_id, None)
