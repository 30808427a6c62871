"""One recording session's media: a passive handle on its journal, streams and sockets.

Everything the renderer needs later goes into the spool journal as it
happens (stream descriptions including SRTP keys, hold/resume, events), so a
journal alone is enough to render the recording after a crash. Those records
are sealed under the session's spool key (see :mod:`.spool_key`), which the
session holds in memory for its render jobs.

The session calls nothing outside itself: the engine (:mod:`.engine`) owns
capture, ports and rendering, and calls flow one way, SIP → engine → session.
"""

from __future__ import annotations

import base64
import dataclasses
import socket
from pathlib import Path
from typing import Any

from callvault.crypto.keyprovider import KeyProvider
from callvault.errors import InvalidInput
from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.spool_key import SpoolKey
from callvault.services.call_record import CallEvent
from callvault.storage.spool import SpoolStream, SpoolWriter

MAX_STREAMS = 255  # a stream's index is one byte in the journal


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
    def __init__(self, recording_id: str, started_at: float, writer: SpoolWriter, spool_key: bytes) -> None:
        self.recording_id = recording_id
        self.started_at = started_at
        self._writer = writer
        self._spool_key = spool_key
        self._streams: dict[str, SpoolStream] = {}
        self._sockets: list[socket.socket] = []
        self._closing = False

    @classmethod
    def open(cls, keys: KeyProvider, spool_dir: Path, recording_id: str, started_at: float) -> MediaSession:
        """A session with a new journal, sealed under a fresh spool key wrapped by ``keys``."""
        spool_key = SpoolKey.new(keys, recording_id)
        return cls(recording_id, started_at, spool_key.create_journal(spool_dir, started_at), spool_key.key)

    @property
    def writer(self) -> SpoolWriter:
        """The journal's writer, for capture to append packets to."""
        return self._writer

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

    @property
    def closing(self) -> bool:
        """True once the call ended: no more streams, the journal is being finished."""
        return self._closing

    def refusal(self, label: str) -> str | None:
        """Why a stream ``label`` cannot be added now, or None."""
        if self._closing:
            return f"recording {self.recording_id} is closing"
        if label in self._streams:
            return f"stream {label!r} already exists in recording {self.recording_id}"
        if len(self._streams) >= MAX_STREAMS:
            return f"a recording session holds at most {MAX_STREAMS} streams"
        return None

    def add_stream(
        self,
        label: str,
        codecs: list[CodecSpec],
        channel: int,
        participant_aor: str | None,
        srtp: object | None,
        sock: socket.socket,
    ) -> SpoolStream:
        """Describe a new stream in the journal (before any of its packets can reach it); the session owns ``sock``."""
        problem = self.refusal(label)
        if problem is not None:
            raise InvalidInput(problem)
        stream = SpoolStream(
            index=len(self._streams),
            label=label,
            codecs=list(codecs),
            channel=channel,
            participant_aor=participant_aor,
            srtp=srtp_params(srtp),
        )
        self._writer.write_stream(stream)
        self._streams[label] = stream
        self._sockets.append(sock)
        return stream

    def update_stream(
        self,
        label: str,
        offset: float,
        codecs: list[CodecSpec] | None = None,
        channel: int | None = None,
        srtp: object | None = None,
        on_hold: bool | None = None,
    ) -> None:
        """Journal a stream's new description; a hold or resume becomes an event at ``offset`` seconds."""
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
            self._writer.write_event("hold" if on_hold else "resume", offset, {"stream": label})
        self._writer.write_stream(stream)

    def record_event(self, event: CallEvent) -> None:
        self._writer.write_event(event.kind, event.offset_seconds, dict(event.data))

    def retry_spool(self) -> None:
        """Write stream/event records a full disk made the journal refuse (the engine calls it each second)."""
        if not self._closing and self._writer.deferred:
            self._writer.retry()

    def hang_up(self) -> bool:
        """Mark the call ended; False when it already was (a second close is harmless)."""
        if self._closing:
            return False
        self._closing = True
        return True

    def end(self) -> tuple[list[socket.socket], int]:
        """Close the journal once capture flushed it: the sockets to release and the records it lost."""
        sockets, self._sockets = self._sockets, []
        return sockets, self._writer.close()
