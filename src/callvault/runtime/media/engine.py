"""The media engine: RTP capture sessions for the SIPREC server, rendered and sealed.

Calls flow one way: the SIP side calls the engine (:meth:`MediaEngine.open_session`,
:meth:`~MediaEngine.add_stream`, :meth:`~MediaEngine.update_stream`,
:meth:`~MediaEngine.record_event`, :meth:`~MediaEngine.close`), and the engine
drives capture, the session's journal (:class:`~.session.MediaSession`, a
passive handle), rendering and sealing. Nothing below calls back up.

Three stages, kept apart so a slow one can never make a fast one drop packets:

1. Capture (:mod:`.capture`): one thread, epoll over every RTP socket, raw
   datagrams appended to per-stream lists, flushed to the session's spool
   journal at least once a second, one AES-256-GCM sealed record per flush.
2. Rendering (:mod:`.renderer`), while the call runs, in render worker
   processes (:class:`~.render_pool.RenderPool`), steps scheduled by
   :mod:`.render_schedule`: each step reads what the journal gained and
   encodes the audio that can no longer change into a side file sealed under
   a key only that worker holds. At hang-up only the tail is left.
3. Sealing (:mod:`.sealing`): ``RecordingService.finalise`` (encrypt, hash,
   sign, catalogue) in a thread, then the journal and its side file are deleted.

A slow render never touches capture: capture only appends to journals, and
render jobs queue in the workers (``callvault_finalise_backlog``).

Encryption at rest (:mod:`.spool_key`): :meth:`MediaEngine.open_session`
makes each session a fresh spool key, wraps it with the key provider and puts
only the wrapped form in the journal's header; the raw key goes, in memory
only, to the capture writer(s) and with every render job.

Crash recovery (:mod:`.recovery`): :meth:`MediaEngine.start` renders every
journal left in the spool with the same renderer, from its first byte, and
seals it as *interrupted*.

Silencing (:mod:`.silencing`): :meth:`MediaEngine.silence` and
:meth:`~MediaEngine.unsilence` keep all or one side of a live call's audio off
the disk from a moment on (PCI pause, consent objection); capture watches
each stream for keypad digits and silences the call while they flow.

Scaling beyond one core: with ``settings.media_workers`` > 1 capture runs in
a :class:`~.workers.CapturePool` of worker processes, each over an
interleaved slice of the RTP port range; the engine keeps binding the sockets
(so ``add_stream`` stays synchronous and returns the port) and hands each one
to the worker owning its port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from callvault.crypto.keyprovider import KeyProvider
from callvault.errors import Conflict, InvalidInput
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media import metrics
from callvault.runtime.media.admission import Admission
from callvault.runtime.media.capture import CONSENT_PRESS, Capture, CaptureLoop
from callvault.runtime.media.digit_watch import consent_event_code, digits_to_watch
from callvault.runtime.media.disk_reserve import DiskReserve, watched_volumes
from callvault.runtime.media.journal_backlog import BACKLOG_SECONDS
from callvault.runtime.media.on_demand import KeepGate
from callvault.runtime.media.ports import PortAllocator, raise_descriptor_limit
from callvault.runtime.media.recovery import Recovery
from callvault.runtime.media.render_pool import RenderPool
from callvault.runtime.media.render_schedule import RENDER_STEP, RenderSchedule
from callvault.runtime.media.sealing import SEAL_RETRY_SECONDS, Sealer
from callvault.runtime.media.session import MediaSession
from callvault.runtime.media.silencing import Channels, Listener, Silencer, SilenceStatus
from callvault.runtime.media.tracks import RenderedRecording
from callvault.runtime.media.unrecorded import UnrecordedCalls, UnrecordedSession, drain
from callvault.services.call_record import AGENT_CHANNEL, CUSTOMER_CHANNEL, CallEvent, FinalStatus
from callvault.services.disclosure_check import DisclosureChecker
from callvault.services.recordings import RecordingService
from callvault.settings import Settings

log = logging.getLogger(__name__)


class MediaEngine:
    def __init__(
        self,
        settings: Settings,
        recordings: RecordingService,
        on_timeout: Callable[[str], Awaitable[None]] | None = None,
        *,
        keys: KeyProvider | None = None,
        render_executor: Executor | None = None,
        clock: Callable[[], float] = time.time,
        flush_interval: float = 1.0,
        render_step: float = RENDER_STEP,
        spool_backlog: float | None = None,
        seal_retry: float = SEAL_RETRY_SECONDS,
        disclosure: DisclosureChecker | None = None,
        after_call: Callable[[str], object] | None = None,
    ) -> None:
        self.settings = settings
        # Spool keys are wrapped by the same provider as the recordings' data keys.
        self.keys = keys if keys is not None else recordings.keys
        self._on_timeout = on_timeout
        self._clock = clock
        self._flush_interval = flush_interval
        self._render_executor = render_executor
        self._render_step = render_step
        # Seconds of packets kept in memory while the disk fails (None: capture's default).
        self._spool_backlog = spool_backlog
        self._schedule: RenderSchedule | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._capture: Capture | None = None
        self._ports: PortAllocator | None = None
        self._sessions: dict[str, MediaSession] = {}  # open sessions only: removed at close
        self._consent_listeners: list[Callable[[str, str], None]] = []  # presses of the consent digit
        self._tasks: set[asyncio.Future[Any]] = set()
        self.disk = DiskReserve(watched_volumes(settings), settings.min_free_disk_mb)
        self.sealer = Sealer(recordings, settings.loss_threshold, seal_retry, disclosure)
        self.recovery = Recovery(settings.spool_dir, self.keys, recordings)
        self.admission = Admission(settings.admission_max_backlog_seconds)  # see .admission
        self.silencer = Silencer(lambda: self.capture.silence, clock)
        # Recording rules: calls left unrecorded, on-demand seals held back (see .unrecorded, .on_demand);
        # ``after_call(recording_id)`` in a thread once a call is sealed or ended without audio.
        self._recordings = recordings
        self.unrecorded = UnrecordedCalls(float(settings.rtp_timeout))
        self.keep_gate = KeepGate(float(settings.on_demand_keep_seconds))
        self._after_call = after_call
        self._finalising = 0  # sessions ended and not sealed yet (as the backlog gauge, per engine)

    # -- life cycle --------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.settings.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.disk.check()
        self._ports = PortAllocator(self.settings.advertised_media_host, self.settings.rtp_ports)
        raise_descriptor_limit()
        if self.settings.media_workers > 1:
            from callvault.runtime.media.workers import CapturePool

            self._capture = CapturePool(
                self.settings.media_workers,
                self.settings.rtp_ports,
                self._timeout_in_capture,
                flush_interval=self._flush_interval,
                on_digits=self._digits_in_capture,
                digits_resume=self.settings.pci_digit_resume_seconds,
            )
        else:
            self._capture = CaptureLoop(
                self._timeout_in_capture,
                flush_interval=self._flush_interval,
                clock=self._clock,
                backlog_seconds=BACKLOG_SECONDS if self._spool_backlog is None else self._spool_backlog,
                on_digits=self._digits_in_capture,
                digits_resume=self.settings.pci_digit_resume_seconds,
            )
        self._capture.start()
        self._schedule = RenderSchedule(
            self.settings, self._render_executor, self._render_step, self.admission
        )
        await self._schedule.pool.warm()
        self._ticker = asyncio.ensure_future(self._tick())
        await self.recovery.run(set(self._sessions), self._schedule, self.sealer, self._spawn)

    async def stop(self) -> None:
        """Finish every open session as complete and wait for all finalisation."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        for recording_id in [*self._sessions, *self.unrecorded.ids()]:
            await self.close(recording_id, "complete")
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        if self._schedule is not None:
            self._schedule.pool.shutdown()
            self._schedule = None

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
        if self._schedule is not None:
            self._schedule.pool.shutdown(wait=False)
            self._schedule = None

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
    def schedule(self) -> RenderSchedule:
        if self._schedule is None:
            raise RuntimeError("MediaEngine.start() has not run")
        return self._schedule

    @property
    def pool(self) -> RenderPool:
        """The render workers (tests hold one up to build a backlog)."""
        return self.schedule.pool

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    @property
    def disk_low(self) -> str | None:
        """Why new calls are refused (free space below the reserve), or None; see :mod:`.disk_reserve`."""
        return self.disk.low

    @property
    def unreadable_spools(self) -> list[Path]:
        """Journals whose key could not be unwrapped at start (left untouched)."""
        return self.recovery.unreadable

    def health(self) -> dict[str, Any]:
        """The recorder's part of ``/healthz``: ``degraded`` lists what is wrong."""
        body: dict[str, Any] = {"active_calls": self.open_sessions}
        if self.disk.low:
            body["degraded"] = [f"new calls refused: {self.disk.low}"]
        return body

    @property
    def finalise_backlog(self) -> int:
        """Recordings ended but not sealed yet: rendering, sealing, or a seal to retry."""
        return self._finalising + self.recovery.in_progress + len(self.sealer.unsealed)

    def workers(self) -> dict[str, Any]:
        """The engine's workers for the health page: capture processes, render workers and their queue."""
        return {
            "capture_workers": self.settings.media_workers,
            "render_workers": self.pool.workers,
            "render_jobs_waiting": self.admission.pending_jobs,
            "render_wait_seconds": round(self.admission.backlog(), 1),
        }

    def live_loss(self, recording_id: str) -> dict[int, dict[str, int]]:
        """Packets received, expected and lost so far per stream index of a live call (see capture)."""
        return {} if self._capture is None else self._capture.live_loss(recording_id)

    def session(self, recording_id: str) -> MediaSession | None:
        return self._sessions.get(recording_id)

    def live_sessions(self) -> dict[str, MediaSession]:
        """The sessions open now, by recording id (a copy: the live calls page reads it)."""
        return dict(self._sessions)

    # -- a call's media, driven by the SIP side ------------------------------

    def open_session(self, recording_id: str, started_at: float) -> MediaSession:
        if recording_id in self._sessions:
            raise ValueError(f"recording {recording_id} already has a media session")
        session = MediaSession.open(self.keys, self.settings.spool_dir, recording_id, started_at)
        self._sessions[recording_id] = session
        key = session.spool_key
        self.capture.open_session(recording_id, session.writer, float(self.settings.rtp_timeout), key)
        self.schedule.add(recording_id, str(session.journal), key, started_at)
        self.silencer.open(session)
        metrics.SESSIONS_ACTIVE.inc()
        return session

    def _open(self, recording_id: str) -> MediaSession:
        session = self._sessions.get(recording_id)
        if session is None:
            raise InvalidInput(f"recording {recording_id} has no open media session")
        return session

    def add_stream(
        self,
        recording_id: str,
        label: str,
        codecs: list[CodecSpec],
        channel: int,
        participant_aor: str | None,
        srtp: object | None,
        sock: Any | None = None,
    ) -> int:
        """Bind an RTP port for a new stream (or use ``sock``, bound by ``ports.bind``) and start
        capturing it; returns the port. The session owns ``sock`` from here on."""
        if recording_id in self.unrecorded:
            return self.unrecorded.add_stream(
                recording_id, label, sock if sock is not None else self.ports.bind()
            )
        session = self._sessions.get(recording_id)
        problem = session.refusal(label) if session is not None else f"recording {recording_id} is not open"
        if problem is not None:
            if sock is not None:
                self.ports.release(sock)
            raise InvalidInput(problem)
        assert session is not None
        if sock is None:
            sock = self.ports.bind()
        stream = session.add_stream(label, codecs, channel, participant_aor, srtp, sock)
        self.capture.add_stream(recording_id, sock.fileno(), stream.index)
        self._watch(recording_id, stream.index, codecs, srtp is not None)
        self.silencer.streams_changed(recording_id)
        port: int = sock.getsockname()[1]
        return port

    def _watch(self, recording_id: str, index: int, codecs: list[CodecSpec], srtp: bool) -> None:
        """Have capture look for keypad digits on a stream (PCI pause, the consent digit; see .digit_watch)."""
        pauses = self.settings.pci_digit_pause
        # The consent digit is read from the event payload, which SRTP encrypts: plain RTP only.
        consent = -1 if srtp else consent_event_code(self.settings.consent_dtmf_digit)
        if pauses or consent >= 0:
            inband = pauses and self.settings.pci_inband_digits
            events, g711 = digits_to_watch(codecs, srtp, inband)
            self.capture.watch_stream(recording_id, index, events, g711, consent_event=consent, pauses=pauses)

    def update_stream(
        self,
        recording_id: str,
        label: str,
        codecs: list[CodecSpec] | None = None,
        channel: int | None = None,
        srtp: object | None = None,
        on_hold: bool | None = None,
    ) -> None:
        if recording_id in self.unrecorded:
            return  # nothing is captured: codecs, channels and holds change nothing
        session = self._open(recording_id)
        offset = max(0.0, self._clock() - session.started_at)
        session.update_stream(label, offset, codecs, channel, srtp, on_hold)
        stream = next((s for s in session.streams if s.label == label), None)
        if stream is not None and (codecs is not None or srtp is not None):
            self._watch(recording_id, stream.index, stream.codecs, stream.srtp is not None)
        if channel is not None:
            self.silencer.streams_changed(recording_id)

    def record_event(self, recording_id: str, event: CallEvent) -> None:
        if recording_id in self.unrecorded:
            self.unrecorded.record_event(recording_id, event)
            return
        self._open(recording_id).record_event(event)

    # -- calls a recording rule leaves unrecorded or keeps on demand (see .unrecorded, .on_demand) ---

    def open_unrecorded(self, recording_id: str, started_at: float) -> UnrecordedSession:
        """A call answered and watched for its end, whose audio is never written (not even spooled)."""
        return self.unrecorded.open(recording_id, started_at, self._clock())

    def record_unrecorded(
        self,
        recording_id: str,
        streams: list[tuple[str, list[CodecSpec], int, str | None, object | None, bool]],
    ) -> MediaSession:
        """Start capturing a call so far left unrecorded (a must-record agent joined), on the ports
        it already has: ``streams`` are (label, codecs, channel, participant aor, srtp, on hold)."""
        unrecorded = self.unrecorded.close(recording_id)
        if unrecorded is None:
            raise Conflict(f"recording {recording_id} is not an unrecorded live call")
        sockets = {label: stream.sock for label, stream in unrecorded.streams.items()}
        for sock in sockets.values():
            drain(sock)  # what queued before this moment stays unrecorded
        session = self.open_session(recording_id, unrecorded.started_at)
        for label, codecs, channel, aor, srtp, on_hold in streams:
            self.add_stream(recording_id, label, codecs, channel, aor, srtp, sockets.pop(label, None))
            if on_hold:
                self.update_stream(recording_id, label, on_hold=True)
        for sock in sockets.values():
            self.ports.release(sock)
        return session

    def is_unrecorded_live(self, recording_id: str) -> bool:
        return self.unrecorded.is_live(recording_id)

    async def _end_unrecorded(self, recording_id: str, ended_at: float) -> None:
        session = self.unrecorded.close(recording_id)
        if session is None:
            return
        for stream in session.streams.values():
            self.ports.release(stream.sock)
        ended = datetime.fromtimestamp(ended_at, UTC)
        try:
            await asyncio.to_thread(self._recordings.end_without_audio, recording_id, "not_recorded", ended)
        except Exception:
            log.exception("cataloguing the end of unrecorded call %s failed", recording_id)
        await self._called(recording_id)

    async def _called(self, recording_id: str) -> None:
        if self._after_call is not None:
            try:
                await asyncio.to_thread(self._after_call, recording_id)
            except Exception:
                log.exception("after-call check of %s failed", recording_id)

    # -- silencing (PCI pause, consent objection; see .silencing) ------------------------------

    def is_live(self, recording_id: str) -> bool:
        """The call's media is being captured now (not ended, not closing)."""
        session = self._sessions.get(recording_id)
        return session is not None and not session.closing

    def silence(
        self,
        recording_id: str,
        cause: str,
        *,
        channels: Channels = "all",
        by: str = "system",
        max_seconds: float | None = None,
        detail: dict[str, Any] | None = None,
    ) -> SilenceStatus:
        """Keep ``channels`` of a live call off the disk from now on, for ``cause``, until
        :meth:`unsilence` (or ``max_seconds``, or the call's end); Conflict if the call is not live."""
        if not self.is_live(recording_id):
            raise Conflict(f"recording {recording_id} is not live")
        return self.silencer.start(
            recording_id, cause, channels=channels, by=by, max_seconds=max_seconds, detail=detail
        )

    def unsilence(
        self, recording_id: str, cause: str, *, by: str = "system", reason: str = "request"
    ) -> SilenceStatus:
        """End ``cause``'s silence now; Conflict if the call is not live or not silenced for ``cause``."""
        if not self.is_live(recording_id):
            raise Conflict(f"recording {recording_id} is not live")
        return self.silencer.end(recording_id, cause, by=by, reason=reason)

    def silence_status(self, recording_id: str) -> SilenceStatus | None:
        """The live call's silences, or None when the call is not live."""
        return self.silencer.status(recording_id) if self.is_live(recording_id) else None

    def mark(self, recording_id: str, kind: str, data: dict[str, Any]) -> None:
        """Put an event on a live call's timeline now (a consent change); Conflict if it is not live."""
        if not self.is_live(recording_id):
            raise Conflict(f"recording {recording_id} is not live")
        session = self._open(recording_id)
        session.record_event(CallEvent(kind, max(0.0, self._clock() - session.started_at), data))

    def add_silence_listener(self, listener: Listener) -> None:
        """``listener(change)`` on the event loop after every silence starts or ends (audit, alerts)."""
        self.silencer.add_listener(listener)

    def _digits_in_capture(self, recording_id: str, name: str, state: str, at: float, how: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if state == CONSENT_PRESS:
                loop.call_soon_threadsafe(self._consent_press, recording_id, name)
                return
            loop.call_soon_threadsafe(self.silencer.digits, recording_id, name, state, at, how)

    def add_consent_digit_listener(self, listener: Callable[[str, str], None]) -> None:
        """``listener(recording_id, side)`` on the event loop when a party presses the consent digit."""
        self._consent_listeners.append(listener)

    def _consent_press(self, recording_id: str, name: str) -> None:
        session = self._sessions.get(recording_id)
        if session is None or session.closing:
            return
        index = name.rpartition(":")[2]
        stream = next((s for s in session.streams if str(s.index) == index), None)
        side = {AGENT_CHANNEL: "agent", CUSTOMER_CHANNEL: "customer"}.get(stream.channel if stream else -1)
        for listener in self._consent_listeners:
            try:
                listener(recording_id, side or "customer")  # a mixed stream: the side that keys is the caller
            except Exception:
                log.exception("consent digit listener failed for %s", recording_id)

    async def close(self, recording_id: str, status: Literal["complete", "interrupted"]) -> None:
        """Stop capturing and hand the journal to rendering and sealing; returns without waiting for them."""
        if recording_id in self.unrecorded:
            self._spawn(self._end_unrecorded(recording_id, self._clock()))
            return
        session = self._sessions.get(recording_id)
        if session is None or not session.hang_up():
            return
        closed = time.monotonic()
        ended_at = self._clock()
        self.silencer.close(recording_id, ended_at)
        metrics.FINALISE_BACKLOG.inc()
        self._finalising += 1
        self.schedule.hang_up(recording_id)
        loop = asyncio.get_running_loop()
        flushed: asyncio.Future[int] = loop.create_future()

        def resolve(packets: int) -> None:
            if not flushed.done():
                flushed.set_result(packets)

        def done(packets: int) -> None:  # called on the capture thread
            loop.call_soon_threadsafe(resolve, packets)

        self.capture.close_session(recording_id, done)
        self._spawn(self._finish(session, flushed, status, ended_at, closed))

    async def _finish(
        self,
        session: MediaSession,
        flushed: asyncio.Future[int],
        status: FinalStatus,
        ended_at: float,
        closed: float,
    ) -> None:
        """After capture flushed the journal: close it, render the tail, seal, delete the journal."""
        try:
            try:
                await flushed
            finally:
                sockets, lost_records = session.end()
                for sock in sockets:
                    self.ports.release(sock)
                losses = self.capture.take_losses(session.recording_id)
                if lost_records:
                    losses.append({"lost_records": lost_records})
                if self._sessions.pop(session.recording_id, None) is not None:
                    metrics.SESSIONS_ACTIVE.dec()
            try:
                rendered = await self.schedule.finish(session.recording_id, ended_at, losses)
            except Exception:
                log.exception(
                    "rendering %s failed; its journal stays for the next start", session.recording_id
                )
                return
            await self.keep_gate.wait(session.recording_id)  # on-demand calls: a keep, or the time up
            if await self.sealer.seal(session.journal, rendered, status):
                metrics.FINALISE_SECONDS.observe(time.monotonic() - closed)
                await self._called(session.recording_id)
        finally:
            metrics.FINALISE_BACKLOG.dec()
            self._finalising -= 1

    # -- journals written by passive capture (see runtime/passive) --------------

    def seal_journal(
        self, journal: Path, key: bytes, ended_at: float, status: FinalStatus
    ) -> asyncio.Future[bool]:
        """Render a closed journal whole and seal it, as recovery does; stop() waits for it."""
        return self._seal_job(journal, self.schedule.render_whole(journal, key, ended_at), status)

    def follow_journal(self, recording_id: str, journal: Path, key: bytes, started_at: float) -> None:
        """A live sniffed call's journal, written by the capture thread: rendered step by step while
        the call lasts (as a SIPREC call's is), so its BYE leaves only the tail to render."""
        self.schedule.add(recording_id, str(journal), key, started_at)

    def seal_followed(
        self, recording_id: str, journal: Path, ended_at: float, status: FinalStatus
    ) -> asyncio.Future[bool]:
        """Render the tail of a followed journal (see :meth:`follow_journal`) and seal it."""
        self.schedule.hang_up(recording_id)
        return self._seal_job(journal, self.schedule.finish(recording_id, ended_at, []), status)

    def _seal_job(
        self, journal: Path, render: Awaitable[RenderedRecording], status: FinalStatus
    ) -> asyncio.Future[bool]:
        job = asyncio.ensure_future(self._seal_journal(journal, render, status))
        self._tasks.add(job)
        job.add_done_callback(self._tasks.discard)
        return job

    async def _seal_journal(
        self, journal: Path, render: Awaitable[RenderedRecording], status: FinalStatus
    ) -> bool:
        metrics.FINALISE_BACKLOG.inc()
        self._finalising += 1
        try:
            return await self.sealer.seal(journal, await render, status)
        finally:
            metrics.FINALISE_BACKLOG.dec()
            self._finalising -= 1

    # -- every second ----------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._render_step))
            self.schedule.start_due(self._clock())
            # Once a second, never per packet: a statvfs per volume, and a retry of
            # stream/event records a full disk refused.
            self.disk.check()
            self.admission.refusing()  # keeps the backlog gauges current between INVITEs
            for session in list(self._sessions.values()):
                session.retry_spool()
            for recording_id in self.unrecorded.drain(self._clock()):
                self._unrecorded_timeout(recording_id)
            for path, rendered, status in self.sealer.due(time.monotonic()):
                self._spawn(self.sealer.seal(path, rendered, status))

    async def render_due(self) -> None:
        """Run the render step of every session due one now and wait for them (tests, benchmarks)."""
        jobs = self.schedule.start_due(self._clock())
        if jobs:
            await asyncio.gather(*jobs)

    def rendered_seconds(self, recording_id: str) -> float:
        """Seconds of an open call rendered so far (tests, benchmarks)."""
        return self.schedule.rendered_seconds(recording_id)

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- timeouts and recovery -------------------------------------------------

    def _timeout_in_capture(self, recording_id: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._rtp_timeout, recording_id)

    def _unrecorded_timeout(self, recording_id: str) -> None:
        log.info("recording %s (not recorded): no RTP for %s s", recording_id, self.settings.rtp_timeout)
        if self._on_timeout is not None:
            self._spawn(self._on_timeout(recording_id))
        else:
            self._spawn(self.close(recording_id, "complete"))

    def _rtp_timeout(self, recording_id: str) -> None:
        session = self._sessions.get(recording_id)
        if session is None or session.closing:
            return
        log.info("recording %s: no RTP for %s s", recording_id, self.settings.rtp_timeout)
        if self._on_timeout is not None:
            self._spawn(self._on_timeout(recording_id))
        else:
            self._spawn(self.close(recording_id, "complete"))


__all__ = ["MediaEngine", "MediaSession"]
