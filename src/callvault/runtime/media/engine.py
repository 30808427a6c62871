"""The media engine: RTP capture sessions for the SIPREC server, and their finalisation.

Three stages, kept apart so a slow one can never make a fast one drop packets:

1. Capture (:mod:`.capture`): one thread, epoll over every RTP socket, raw
   datagrams appended to per-stream lists, flushed to the session's spool
   journal at least once a second, one AES-256-GCM sealed record per flush.
2. Rendering (:mod:`.incremental`), while the call runs, in render worker
   processes (:class:`~.render_pool.RenderPool`): every few seconds a job per
   open session reads what its journal gained, feeds the per-stream
   timelines, and decodes, aligns, mixes and Opus-encodes the audio that can
   no longer change (older than the timeline's 15 s re-anchoring hold-back),
   spooling the Ogg pages, sealed under a key only that worker holds, to a
   0600 side file next to the journal. The
   interval grows with the call (``render_step`` up to ``MAX_RENDER_STEP``,
   an eighth of the call so far): each step re-lays the whole timeline, so
   fixed short steps would cost O(n²) over a long call. A session's jobs are
   pinned to one worker, which keeps its renderer (timelines, decoders,
   encoder) in memory; nothing runs in this process but the submission.
   At hang-up the same worker renders only the tail (hold-back + at most one
   step: under 2.5 minutes of audio for any call length) and finishes the file.
3. Sealing: ``RecordingService.finalise`` (encrypt, hash, sign, catalogue) in a
   thread, then the journal and its side file are deleted.

A slow render never touches capture: capture only appends to journals, and
render jobs queue in the workers (``callvault_finalise_backlog``).

Encryption at rest (:mod:`.spool_key`): :meth:`MediaEngine.open_session`
makes each session a fresh spool key, wraps it with the key provider and puts
only the wrapped form in the journal's header; the raw key goes, in memory
only, to the capture writer(s) and with every render job. Nothing in the spool
directory is plaintext audio, Ogg pages or SRTP keys.

Crash recovery: :meth:`MediaEngine.start` unwraps the key of every journal
left in the spool directory and renders it in one go
(:func:`~.finaliser.render_recording`) as an *interrupted* recording; a
journal whose key cannot be unwrapped (its KEK retired or foreign, or the
header tampered with) is logged as an error, listed in
:attr:`MediaEngine.unreadable_spools` and left where it is, untouched.
Recovery ignores any side file (the journal is the record; re-rendering it
is the simplest correct recovery, and the side file's key died with its
render worker anyway). Start also flags recordings still
'recording' in the catalogue without any journal as interrupted without audio.
A render worker that dies mid-call loses only its state: hang-up renders such
sessions afresh from their journals.

Scaling beyond one core: with ``settings.media_workers`` > 1 capture runs in
a :class:`~.workers.CapturePool` of worker processes, each running a
``CaptureLoop`` over an interleaved slice of the RTP port range. The engine
keeps binding the sockets (so ``add_stream`` stays synchronous and returns the
port) and hands each one to the worker owning its port (``socket.send_fds``);
journals are plain files, so rendering and sealing need no change. With the
default of 1 the loop is a thread of the engine's process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callvault.crypto.keyprovider import KeyProvider
from callvault.errors import IntegrityError, KeyUnavailable, NotFound, StorageError
from callvault.runtime.media import metrics
from callvault.runtime.media.admission import Admission
from callvault.runtime.media.capture import Capture, CaptureLoop
from callvault.runtime.media.disk_reserve import DiskReserve, watched_volumes
from callvault.runtime.media.finaliser import RenderedRecording, RenderOptions, render_recording
from callvault.runtime.media.incremental import advance_recording, finish_recording
from callvault.runtime.media.journal_backlog import BACKLOG_SECONDS, LOSS_EVENT
from callvault.runtime.media.ports import PortAllocator, raise_descriptor_limit
from callvault.runtime.media.render_pool import RenderPool
from callvault.runtime.media.seal_retry import SEAL_RETRY_SECONDS, SealRetry
from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.spool_key import SpoolKey
from callvault.services.call_record import ArchiveAudio, FinalStatus
from callvault.services.directory import AgentDirectory
from callvault.services.recordings import RecordingService
from callvault.settings import Settings
from callvault.storage.spool import (
    delete_spool,
    list_spools,
    orphan_parts,
    read_spool,
    read_spool_header,
    spool_path,
)

log = logging.getLogger(__name__)

RENDER_STEP = 10.0
MAX_RENDER_STEP = 120.0


def _default_render_workers() -> int:
    # The cores this process may run on, not the machine's: pinned (taskset, a container's
    # cpuset) to one core, 15 workers of a 16-core host would only share it and cost memory.
    return max(1, len(os.sched_getaffinity(0)) - 1)


class MediaEngine:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        directory: AgentDirectory,
        on_timeout: Callable[[str], Awaitable[None]] | None = None,
        *,
        keys: KeyProvider | None = None,
        render_executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 1.0,
        render_step: float = RENDER_STEP,
        spool_backlog: float = BACKLOG_SECONDS,
        seal_retry: float = SEAL_RETRY_SECONDS,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self.directory = directory
        # Spool keys are wrapped by the same provider as the recordings' data keys.
        self.keys = keys if keys is not None else recordings.keys
        self._on_timeout = on_timeout
        self._clock = clock
        self._flush_interval = flush_interval
        self._render_executor = render_executor
        self._render_step = render_step
        self._spool_backlog = spool_backlog  # seconds of packets kept in memory while the disk fails
        self._pool: RenderPool | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._render_failures = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._capture: Capture | None = None
        self._ports: PortAllocator | None = None
        self._sessions: dict[str, MediaSession] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self.finalised: list[str] = []
        self.tail_seconds: dict[str, float] = {}  # audio rendered after hang-up, per recording
        self.unreadable_spools: list[Path] = []  # journals whose key could not be unwrapped
        self.disk = DiskReserve(watched_volumes(settings), settings.min_free_disk_mb)
        self.unsealed = SealRetry(seal_retry)  # rendered, sealing failed: tried again (see .seal_retry)
        self.admission = Admission(settings.admission_max_backlog_seconds)  # see .admission

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.settings.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.disk.check()
        self._ports = PortAllocator(self.settings.advertised_media_host, self.settings.rtp_ports)
        raise_descriptor_limit()
        # -- capture: in-process thread, or worker processes (see .workers) --
        if self.settings.media_workers > 1:
            from callvault.runtime.media.workers import CapturePool

            self._capture = CapturePool(
                self.settings.media_workers,
                self.settings.rtp_ports,
                self._timeout_in_capture,
                flush_interval=self._flush_interval,
            )
        else:
            self._capture = CaptureLoop(
                self._timeout_in_capture,
                flush_interval=self._flush_interval,
                clock=self._clock,
                backlog_seconds=self._spool_backlog,
            )
        self._capture.start()
        # -- end capture --
        self._pool = RenderPool(_default_render_workers(), self._render_executor, self.admission)
        await self._pool.warm()
        self._ticker = asyncio.ensure_future(self._render_ticker())
        await self._recover()

    async def stop(self) -> None:
        """Finish every open session as complete and wait for all finalisation."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for session in list(self._sessions.values()):
            await session.close("complete")
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def abort(self) -> None:
        """A stop that ran out of time: drop pending work and end the workers now.

        Journals of sessions not yet sealed stay in the spool; the next start
        seals them as interrupted, as after a crash.
        """
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for task in list(self._tasks):
            task.cancel()
        capture, self._capture = self._capture, None
        kill = getattr(capture, "kill", None)
        if callable(kill):
            kill()
        elif capture is not None:
            capture.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    @property
    def capture(self) -> Capture:
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

    @property
    def disk_low(self) -> str | None:
        """Why new calls are refused (free space below the reserve), or None; see :mod:`.disk_reserve`."""
        return self.disk.low

    def health(self) -> dict[str, Any]:
        """The recorder's part of ``/healthz``: ``degraded`` lists what is wrong."""
        body: dict[str, Any] = {"active_calls": self.open_sessions}
        if self.disk.low:
            body["degraded"] = [f"new calls refused: {self.disk.low}"]
        return body

    def open_session(self, recording_id: str, started_at: float) -> MediaSession:
        if recording_id in self._sessions:
            raise ValueError(f"recording {recording_id} already has a media session")
        spool_key = SpoolKey.new(self.keys, recording_id)
        writer = spool_key.create_journal(self.settings.spool_dir, started_at)
        session = MediaSession(self, recording_id, started_at, writer, spool_key.key)
        self._sessions[recording_id] = session
        self.capture.open_session(recording_id, writer, float(self.settings.rtp_timeout), spool_key.key)
        self.pool.pin(recording_id)
        metrics.SESSIONS_ACTIVE.inc()
        return session

    def session(self, recording_id: str) -> MediaSession | None:
        return self._sessions.get(recording_id)

    # -- used by MediaSession ----------------------------------------------

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def forget(self, recording_id: str) -> None:
        if self._sessions.pop(recording_id, None) is not None:
            metrics.SESSIONS_ACTIVE.dec()

    @property
    def pool(self) -> RenderPool:
        if self._pool is None:
            raise RuntimeError("MediaEngine.start() has not run")
        return self._pool

    # -- rendering while calls run -------------------------------------------

    async def _render_ticker(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._render_step))
            self._start_due_renders()
            # Once a second, never per packet: a statvfs per volume, and a retry of
            # stream/event records a full disk refused.
            self.disk.check()
            self.admission.refusing()  # keeps the backlog gauges current between INVITEs
            for session in list(self._sessions.values()):
                session.retry_spool()
            for path, rendered, status in self.unsealed.due(time.monotonic()):
                self.spawn(self._seal(path, rendered, status))

    def _start_due_renders(self) -> list[asyncio.Future[None]]:
        now = self._clock()
        jobs: list[asyncio.Future[None]] = []
        for session in list(self._sessions.values()):
            if session.closing or session.render_job is not None:
                continue
            interval = min(MAX_RENDER_STEP, max(self._render_step, (now - session.started_at) / 8))
            if now - session.last_render < interval:
                continue
            session.last_render = now
            job = asyncio.ensure_future(self._advance(session, now))
            session.render_job = job
            jobs.append(job)
        return jobs

    async def render_due(self) -> None:
        """Run the render step of every session due one now and wait for them (tests, benchmarks)."""
        jobs = self._start_due_renders()
        if jobs:
            await asyncio.gather(*jobs)

    async def _advance(self, session: MediaSession, now: float) -> None:
        options = RenderOptions.from_settings(self.settings)
        try:
            session.rendered_seconds = await self.pool.run(
                session.recording_id,
                advance_recording,
                str(session.journal),
                session.spool_key,
                options,
                now,
            )
        except Exception:
            # Hang-up will render from the journal whatever happened here.
            self._render_failures += 1
            log.log(
                logging.ERROR if self._render_failures == 1 else logging.DEBUG,
                "render step of %s failed",
                session.recording_id,
                exc_info=True,
            )
        finally:
            session.render_job = None

    async def finalise_session(
        self, session: MediaSession, status: FinalStatus, ended_at: float, closed: float
    ) -> None:
        """Finish the call-time render after hang-up, seal, and delete the journal.

        ``closed`` is the ``time.monotonic()`` of the close, for the close-to-sealed histogram.
        """
        recording_id = session.recording_id
        try:
            if session.render_job is not None:
                await asyncio.gather(session.render_job, return_exceptions=True)
            options = dataclasses.replace(
                RenderOptions.from_settings(self.settings, ended_at), spool_losses=tuple(session.spool_losses)
            )
            try:
                rendered = await self.pool.run(
                    recording_id, finish_recording, str(session.journal), session.spool_key, options
                )
            except Exception:
                log.exception("rendering %s at hang-up failed; rendering its journal in one go", recording_id)
                await self.finalise_spool(
                    session.journal, status, ended_at, session.spool_key, session.spool_losses
                )
                return
            # Known once rendered; set before sealing so whoever sees the sealed row can read it.
            self.tail_seconds[recording_id] = rendered.tail_seconds
            if await self._seal(session.journal, rendered, status):
                metrics.FINALISE_SECONDS.observe(time.monotonic() - closed)
        finally:
            self.pool.unpin(recording_id)
            metrics.FINALISE_BACKLOG.dec()

    # -- sealing --------------------------------------------------------------

    async def finalise_spool(
        self,
        path: Path,
        status: FinalStatus,
        ended_at: float | None,
        key: bytes | None = None,
        spool_losses: list[dict[str, Any]] | None = None,
    ) -> None:
        """Render in one go, seal and delete one journal; on failure the journal stays for the next start.

        ``key`` is the journal's spool key; without it (recovery) it is unwrapped from the journal.
        ``spool_losses``: storage failures capture could not journal (see :mod:`.journal_backlog`).
        """
        if key is None:
            key = await asyncio.to_thread(self._unwrap_spool_key, path)
            if key is None:
                return
        options = dataclasses.replace(
            RenderOptions.from_settings(self.settings, ended_at), spool_losses=tuple(spool_losses or ())
        )
        try:
            rendered: RenderedRecording = await self.pool.run(None, render_recording, str(path), key, options)
        except Exception:
            log.exception("rendering spool %s failed; it stays for the next start", path)
            return
        await self._seal(path, rendered, status)

    def _unwrap_spool_key(self, path: Path) -> bytes | None:
        """The raw key of a journal on disk, or None (reported) when it cannot be had; the journal stays."""
        try:
            header = read_spool_header(path)
        except StorageError as exc:
            self._unreadable(path, exc.message)
            return None
        try:
            return SpoolKey.unwrap(self.keys, header).key
        except (KeyUnavailable, IntegrityError) as exc:
            self._unreadable(
                path,
                f"its spool key, wrapped under KEK {header.kek_id}, cannot be unwrapped: {exc.message}. "
                "Restore that key-encryption key to the keyring and restart to finalise it",
            )
            return None

    def _unreadable(self, path: Path, why: str) -> None:
        log.error("spool %s cannot be decrypted and stays in place, untouched: %s", path, why)
        self.unreadable_spools.append(path)

    def final_status(self, requested: FinalStatus, loss_fraction: float) -> FinalStatus:
        """The status a recording is sealed with: a call that ended normally but lost more
        than ``CALLVAULT_LOSS_THRESHOLD`` of its packets is flagged ``incomplete``."""
        if requested == "complete" and loss_fraction > self.settings.loss_threshold:
            return "incomplete"
        return requested

    async def _seal(self, path: Path, rendered: RenderedRecording, status: FinalStatus) -> bool:
        """Seal a rendered recording and delete its journal; False when it stays for the next start."""
        final = self.final_status(status, rendered.loss_fraction)
        if status == "complete" and rendered.storage_incomplete:
            # Audio the recorder received is missing (full disk, damaged journal): never "complete".
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
            await asyncio.to_thread(delete_spool, path)
            return False
        except Exception:
            log.exception(
                "sealing recording %s failed; its spool stays and sealing is retried", rendered.recording_id
            )
            self.unsealed.add(path, rendered, status, time.monotonic())
            return False
        await asyncio.to_thread(delete_spool, path)
        self.finalised.append(rendered.recording_id)
        metrics.RECORDINGS_FINALISED.labels(final).inc()
        metrics.count_packets(rendered.streams)
        metrics.SPOOL_LOST_PACKETS.inc(rendered.spool_lost)
        metrics.SPOOL_WRITE_FAILURES.inc(sum(1 for e in rendered.events if e.kind == LOSS_EVENT))
        return True

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

    async def _recover_spool(self, path: Path) -> None:
        metrics.FINALISE_BACKLOG.inc()
        try:
            await self.finalise_spool(path, "interrupted", None)
        finally:
            metrics.FINALISE_BACKLOG.dec()

    async def _recover(self) -> None:
        spools = await asyncio.to_thread(list_spools, self.settings.spool_dir)
        spooled: set[str] = set()
        for path in spools:
            recording_id = path.name.removesuffix(".spool")
            if recording_id in self._sessions:
                continue
            spooled.add(recording_id)
            log.warning("recording %s was interrupted; finalising its spool", recording_id)
            self.spawn(self._recover_spool(path))
        for part in await asyncio.to_thread(orphan_parts, self.settings.spool_dir):
            await asyncio.to_thread(part.unlink, True)
        unfinished = await asyncio.to_thread(self.recordings.unfinished)
        for recording_id in unfinished:
            if recording_id in spooled or recording_id in self._sessions:
                continue
            if spool_path(self.settings.spool_dir, recording_id).exists():
                continue
            log.warning("recording %s was interrupted and has no spool", recording_id)
            self.spawn(asyncio.to_thread(self.recordings.mark_interrupted_without_audio, recording_id))


__all__ = ["ArchiveAudio", "MediaEngine", "MediaSession", "read_spool"]
