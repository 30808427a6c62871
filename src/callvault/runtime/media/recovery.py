"""Crash recovery: journals left in the spool after a stop or crash, rendered and sealed as *interrupted*.

Each journal's spool key is unwrapped from its header; the journal is then
rendered by the one renderer started from its first byte
(:meth:`~.render_schedule.RenderSchedule.render_whole`) and sealed. A journal
whose key cannot be unwrapped (its KEK retired or foreign, or the header
tampered with) is logged as an error, listed in :attr:`Recovery.unreadable`
and left where it is, untouched. Side files of call-time renders are ignored
(the journal is the record; their key died with their render worker) and
stray ``.part`` files are removed. Recordings still 'recording' in the
catalogue without any journal are flagged interrupted without audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

from callvault.crypto.keyprovider import KeyProvider
from callvault.errors import IntegrityError, KeyUnavailable, StorageError
from callvault.runtime.media import metrics
from callvault.runtime.media.render_schedule import RenderSchedule
from callvault.runtime.media.sealing import Sealer
from callvault.runtime.media.spool_key import SpoolKey
from callvault.services.recordings import RecordingService
from callvault.storage.spool import list_spools, orphan_parts, read_spool_header, spool_path

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, spool_dir: Path, keys: KeyProvider, recordings: RecordingService) -> None:
        self._spool_dir = spool_dir
        self._keys = keys
        self._recordings = recordings
        # Journals whose key could not be unwrapped: at most one entry per journal on disk.
        self.unreadable: list[Path] = []
        self.in_progress = 0  # journals being rendered and sealed now (the finalise backlog)

    async def run(
        self,
        open_ids: Collection[str],
        schedule: RenderSchedule,
        sealer: Sealer,
        spawn: Callable[[Awaitable[Any]], None],
    ) -> None:
        """Recover every journal not of an open session (in spawned tasks) and flag catalogue orphans."""
        spooled: set[str] = set()
        for path in await asyncio.to_thread(list_spools, self._spool_dir):
            recording_id = path.name.removesuffix(".spool")
            if recording_id in open_ids:
                continue
            spooled.add(recording_id)
            log.warning("recording %s was interrupted; finalising its spool", recording_id)
            spawn(self._recover(path, schedule, sealer))
        for part in await asyncio.to_thread(orphan_parts, self._spool_dir):
            await asyncio.to_thread(part.unlink, True)
        for recording_id in await asyncio.to_thread(self._recordings.unfinished):
            if recording_id in spooled or recording_id in open_ids:
                continue
            if spool_path(self._spool_dir, recording_id).exists():
                continue
            log.warning("recording %s was interrupted and has no spool", recording_id)
            spawn(asyncio.to_thread(self._recordings.mark_interrupted_without_audio, recording_id))
        # Calls a recording rule left unrecorded have no spool: they ended, when is unknown.
        for recording_id in await asyncio.to_thread(self._recordings.unrecorded_unfinished):
            if recording_id not in open_ids:
                end = self._recordings.end_without_audio
                spawn(asyncio.to_thread(end, recording_id, "not_recorded", None))

    async def _recover(self, path: Path, schedule: RenderSchedule, sealer: Sealer) -> None:
        metrics.FINALISE_BACKLOG.inc()
        self.in_progress += 1
        try:
            key = await asyncio.to_thread(self.unwrap_key, path)
            if key is None:
                return
            try:
                rendered = await schedule.render_whole(path, key)
            except Exception:
                log.exception("rendering spool %s failed; it stays for the next start", path)
                return
            await sealer.seal(path, rendered, "interrupted")
        finally:
            metrics.FINALISE_BACKLOG.dec()
            self.in_progress -= 1

    def unwrap_key(self, path: Path) -> bytes | None:
        """The raw key of a journal on disk, or None (reported) when it cannot be had; the journal stays."""
        try:
            header = read_spool_header(path)
        except StorageError as exc:
            self._unreadable(path, exc.message)
            return None
        try:
            return SpoolKey.unwrap(self._keys, header).key
        except (KeyUnavailable, IntegrityError) as exc:
            self._unreadable(
                path,
                f"its spool key, wrapped under KEK {header.kek_id}, cannot be unwrapped: {exc.message}. "
                "Restore that key-encryption key to the keyring and restart to finalise it",
            )
            return None

    def _unreadable(self, path: Path, why: str) -> None:
        log.error("spool %s cannot be decrypted and stays in place, untouched: %s", path, why)
        if path not in self.unreadable:
            self.unreadable.append(path)
