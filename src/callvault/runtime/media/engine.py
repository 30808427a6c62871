"""The media engine: RTP capture sessions for the SIPREC server, and their finalisation.

Three stages, kept apart so a slow one can never make a fast one drop packets:

1. Capture (:mod:`.capture`): one thread, epoll over every RTP socket, raw
   datagrams appended to per-stream lists, flushed to the session's spool
   journal at least once a second.
2. Rendering (:mod:`.finaliser`): in a process pool, the journal is turned
   into per-stream timelines, decoded, aligned on the session's start,
   mapped to agent/customer channels and Opus-encoded. SRTP is unprotected
   here too, from the keys kept in the journal's stream records.
3. Sealing: ``RecordingService.finalise`` (encrypt, hash, sign, catalogue) in a
   thread, then the journal is deleted.

Crash recovery: :meth:`MediaEngine.start` renders every journal left in the
spool directory as an *interrupted* recording, and flags recordings still
'recording' in the catalogue without any journal as interrupted without audio.

Scaling beyond one core: ``settings.media_workers`` is meant to run one
:class:`~.capture.CaptureLoop` per worker process, each owning a slice of the
RTP port range. The engine would keep binding the sockets (so ``add_stream``
stays synchronous and returns the port) and hand each socket to the worker
owning its port over a Unix socket (``socket.send_fds``), with the same
open/add/close commands as now travelling over that socket instead of the
in-process queue; journals are plain files, so rendering and sealing need no
change. This version runs the capture loop as a thread of the engine's process
whatever ``media_workers`` says; one such thread sustained the figures in
``bench/capture.py``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callvault.errors import NotFound
from callvault.runtime.media.capture import CaptureLoop
from callvault.runtime.media.finaliser import RenderedRecording, RenderOptions, render_recording
from callvault.runtime.media.ports import PortAllocator
from callvault.runtime.media.session import MediaSession
from callvault.services.call_record import ArchiveAudio, FinalStatus
from callvault.services.directory import AgentDirectory
from callvault.services.recordings import RecordingService
from callvault.settings import Settings
from callvault.storage.spool import SpoolWriter, delete_spool, list_spools, read_spool, spool_path

log = logging.getLogger(__name__)


def _default_render_workers() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


class MediaEngine:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        directory: AgentDirectory,
        on_timeout: Callable[[str], Awaitable[None]] | None = None,
        *,
        render_executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self.directory = directory
        self._on_timeout = on_timeout
        self._clock = clock
        self._flush_interval = flush_interval
        self._executor = render_executor
        self._own_executor = render_executor is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._capture: CaptureLoop | None = None
        self._ports: PortAllocator | None = None
        self._sessions: dict[str, MediaSession] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self.finalised: list[str] = []

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.settings.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._ports = PortAllocator(self.settings.advertised_media_host, self.settings.rtp_ports)
        self._capture = CaptureLoop(
            self._timeout_in_capture, flush_interval=self._flush_interval, clock=self._clock
        )
        self._capture.start()
        if self._executor is None:
            # forkserver: forking a process that runs the capture thread could copy a
            # held lock into the child; the fork server is single-threaded.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["callvault.runtime.media.finaliser"])
            self._executor = ProcessPoolExecutor(max_workers=_default_render_workers(), mp_context=context)
        await self._recover()

    async def stop(self) -> None:
        """Finish every open session as complete and wait for all finalisation."""
        for session in list(self._sessions.values()):
            await session.close("complete")
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        if self._executor is not None and self._own_executor:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def capture(self) -> CaptureLoop:
        if self._capture is None:
            raise RuntimeError("MediaEngine.start() has not run")
        return self._capture

    @property
    def ports(self) -> PortAllocator:
        if self._ports is None:
            raise RuntimeError("MediaEngine.start() has not run")
        return self._ports

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def open_session(self, recording_id: str, started_at: float) -> MediaSession:
        if recording_id in self._sessions:
            raise ValueError(f"recording {recording_id} already has a media session")
        writer = SpoolWriter.create(self.settings.spool_dir, recording_id, started_at)
        session = MediaSession(self, recording_id, started_at, writer)
        self._sessions[recording_id] = session
        self.capture.open_session(recording_id, writer, float(self.settings.rtp_timeout))
        return session

    def session(self, recording_id: str) -> MediaSession | None:
        return self._sessions.get(recording_id)

    # -- used by MediaSession ----------------------------------------------

    def spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, recording_id: str) -> None:
        self._sessions.pop(recording_id, None)

    async def finalise_spool(self, path: Path, status: FinalStatus, ended_at: float | None) -> None:
        """Render, seal and delete one journal; on failure the journal stays for the next start."""
        loop = asyncio.get_running_loop()
        options = RenderOptions(
            dtmf_mode=self.settings.dtmf_mode,
            bitrate_per_channel=self.settings.opus_bitrate,
            ended_at=ended_at,
        )
        try:
            rendered: RenderedRecording = await loop.run_in_executor(
                self._executor, render_recording, str(path), options
            )
        except Exception:
            log.exception("rendering spool %s failed; it stays for the next start", path)
            return
        final = status
        if status == "complete" and rendered.loss_fraction > self.settings.loss_threshold:
            final = "incomplete"
        ended = datetime.fromtimestamp(rendered.ended_at, UTC)
        try:
            await asyncio.to_thread(
                self.recordings.finalise,
                rendered.recording_id,
                rendered.audio,
                final,
                rendered.streams,
                rendered.events,
                ended,
            )
        except NotFound:
            log.warning("spool %s belongs to no catalogued recording; deleting it", path)
        except Exception:
            log.exception("sealing recording %s failed; its spool stays", rendered.recording_id)
            return
        await asyncio.to_thread(delete_spool, path)
        self.finalised.append(rendered.recording_id)

    # -- timeouts ------------------------------------------------------------

    def _timeout_in_capture(self, recording_id: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._rtp_timeout, recording_id)

    def _rtp_timeout(self, recording_id: str) -> None:
        session = self._sessions.get(recording_id)
        if session is None or session.closing:
            return
        log.info("recording %s: no RTP for %s s", recording_id, self.settings.rtp_timeout)
        if self._on_timeout is not None:
            self.spawn(self._on_timeout(recording_id))
        else:
            self.spawn(session.close("complete"))

    # -- crash recovery ------------------------------------------------------

    async def _recover(self) -> None:
        spools = await asyncio.to_thread(list_spools, self.settings.spool_dir)
        spooled: set[str] = set()
        for path in spools:
            recording_id = path.name.removesuffix(".spool")
            if recording_id in self._sessions:
                continue
            spooled.add(recording_id)
            log.warning("recording %s was interrupted; finalising its spool", recording_id)
            self.spawn(self.finalise_spool(path, "interrupted", None))
        unfinished = await asyncio.to_thread(self.recordings.unfinished)
        for recording_id in unfinished:
            if recording_id in spooled or recording_id in self._sessions:
                continue
            if spool_path(self.settings.spool_dir, recording_id).exists():
                continue
            log.warning("recording %s was interrupted and has no spool", recording_id)
            self.spawn(asyncio.to_thread(self.recordings.mark_interrupted_without_audio, recording_id))


__all__ = ["ArchiveAudio", "MediaEngine", "MediaSession", "read_spool"]
