"""One recording session's media: its RTP streams, events and close.

Everything the finaliser needs later goes into the spool journal as it
happens (stream descriptions including SRTP keys, hold/resume, events), so a
journal alone is enough to render the recording after a crash. Those records
are sealed under the session's spool key (see :mod:`.spool_key`), which the
session holds in memory for its render jobs.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from callvault.errors import InvalidInput
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media import metrics
from callvault.services.call_record import CallEvent, CallRecord, FinalStatus
from callvault.storage.spool import SpoolStream, SpoolWriter

if TYPE_CHECKING:
    from callvault.runtime.media.capture import Capture
    from callvault.runtime.media.ports import PortAllocator
    from callvault.services.recordings import RecordingService

log = logging.getLogger(__name__)


class SessionOwner(Protocol):
    """What a media session needs from the engine that owns it.

    A protocol rather than the engine class itself: the engine creates
    sessions, so importing it here would make the two modules a cycle.
    """

    @property
    def ports(self) -> PortAllocator: ...

    @property
    def capture(self) -> Capture: ...

    @property
    def recordings(self) -> RecordingService: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def spawn(self, awaitable: Awaitable[Any]) -> None: ...

    def forget(self, recording_id: str) -> None: ...

    async def finalise_session(
        self, session: MediaSession, status: FinalStatus, ended_at: float, closed: float
    ) -> None: ...


def srtp_params(crypto: object | None) -> dict[str, Any] | None:
    """SDES crypto attributes as JSON-able data (bytes as base64) for the journal."""
    if crypto is None:
        return None
    if dataclasses.is_dataclass(crypto) and not isinstance(crypto, type):
        raw = {f.name: getattr(crypto, f.name) for f in dataclasses.fields(crypto)}
    else:
        raw = dict(vars(crypto))
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, bytes | bytearray):
            params[name] = {"b64": base64.b64encode(bytes(value)).decode()}
        elif isinstance(value, str | int | float | bool) or value is None:
            params[name] = value
        elif isinstance(value, list | tuple):
            params[name] = list(value)
        else:
            params[name] = str(value)
    return params


class MediaSession:
    def __init__(
        self,
        engine: SessionOwner,
        recording_id: str,
        started_at: float,
        writer: SpoolWriter,
        spool_key: bytes,
    ) -> None:
        self._engine = engine
        self.recording_id = recording_id
        self.started_at = started_at
        self._writer = writer
        self._spool_key = spool_key
        self._streams: dict[str, SpoolStream] = {}
        self._sockets: list[socket.socket] = []
        self.closing = False
        # Call-time rendering, driven by the engine.
        self.render_job: asyncio.Future[None] | None = None
        self.last_render = started_at
        self.rendered_seconds = 0.0
        # Storage failures the journal could not take (the disk stayed full), known at close.
        self.spool_losses: list[dict[str, Any]] = []

    @property
    def journal(self) -> Path:
        return self._writer.path

    @property
    def spool_key(self) -> bytes:
        """The raw key the journal is sealed under (for render jobs; never log it)."""
        return self._spool_key

    @property
    def streams(self) -> list[SpoolStream]:
        return list(self._streams.values())

    def retry_spool(self) -> None:
        """Write stream/event records a full disk made the journal refuse (the engine calls it each second)."""
        if not self.closing and self._writer.deferred:
            self._writer.retry()

    def add_stream(
        self,
        label: str,
        codecs: list[CodecSpec],
        channel: int,
        participant_aor: str | None,
        srtp: object | None,
        sock: socket.socket | None = None,
    ) -> int:
        """Bind an RTP port for a new stream (or use ``sock``, bound by ``ports.bind``) and start
        capturing it; returns the port. The session owns ``sock`` from here on."""
        problem: str | None = None
        if self.closing:
            problem = f"recording {self.recording_id} is closing"
        elif label in self._streams:
            problem = f"stream {label!r} already exists in recording {self.recording_id}"
        elif len(self._streams) >= 255:
            problem = "a recording session holds at most 255 streams"
        if problem is not None:
            if sock is not None:
                self._engine.ports.release(sock)
            raise InvalidInput(problem)
        if sock is None:
            sock = self._engine.ports.bind()
        stream = SpoolStream(
            index=len(self._streams),
            label=label,
            codecs=list(codecs),
            channel=channel,
            participant_aor=participant_aor,
            srtp=srtp_params(srtp),
        )
        # The description reaches the journal before any packet of the stream can.
        self._writer.write_stream(stream)
        self._streams[label] = stream
        self._sockets.append(sock)
        self._engine.capture.add_stream(self.recording_id, sock.fileno(), stream.index)
        port: int = sock.getsockname()[1]
        return port

    def update_stream(
        self,
        label: str,
        codecs: list[CodecSpec] | None = None,
        channel: int | None = None,
        srtp: object | None = None,
        on_hold: bool | None = None,
    ) -> None:
        stream = self._streams.get(label)
        if stream is None:
            raise InvalidInput(f"recording {self.recording_id} has no stream {label!r}")
        if codecs is not None:
            stream.codecs = list(codecs)
        if channel is not None:
            stream.channel = channel
        if srtp is not None:
            stream.srtp = srtp_params(srtp)
        if on_hold is not None and on_hold != stream.on_hold:
            stream.on_hold = on_hold
            kind = "hold" if on_hold else "resume"
            self._writer.write_event(kind, self._offset(), {"stream": label})
        self._writer.write_stream(stream)

    def record_event(self, event: CallEvent) -> None:
        self._writer.write_event(event.kind, event.offset_seconds, dict(event.data))

    def update_call(self, call: CallRecord) -> None:
        self._engine.spawn(asyncio.to_thread(self._update_call, call))

    def _update_call(self, call: CallRecord) -> None:
        try:
            self._engine.recordings.update_call(self.recording_id, call)
        except Exception:
            log.exception("updating call metadata of %s failed", self.recording_id)

    def _offset(self) -> float:
        return max(0.0, self._engine.clock() - self.started_at)

    async def close(self, status: Literal["complete", "interrupted"]) -> None:
        """Stop capturing and hand the journal to finalisation; returns without waiting for it."""
        if self.closing:
            return
        self.closing = True
        closed = time.monotonic()
        metrics.FINALISE_BACKLOG.inc()
        loop = asyncio.get_running_loop()
        flushed: asyncio.Future[int] = loop.create_future()

        def resolve(packets: int) -> None:
            if not flushed.done():
                flushed.set_result(packets)

        def done(packets: int) -> None:
            loop.call_soon_threadsafe(resolve, packets)

        ended_at = self._engine.clock()
        self._engine.capture.close_session(self.recording_id, done)
        self._engine.spawn(self._finish(flushed, status, ended_at, closed))

    async def _finish(
        self,
        flushed: asyncio.Future[int],
        status: Literal["complete", "interrupted"],
        ended_at: float,
        closed: float,
    ) -> None:
        try:
            await flushed
        finally:
            for sock in self._sockets:
                self._engine.ports.release(sock)
            self._sockets.clear()
            self.spool_losses = self._engine.capture.take_losses(self.recording_id)
            lost_records = self._writer.close()
            if lost_records:
                self.spool_losses.append({"lost_records": lost_records})
            self._engine.forget(self.recording_id)
        await self._engine.finalise_session(self, status, ended_at, closed)
