"""Playback and download: decrypt a recording on the fly, by byte range.

Ogg Opus is served straight from the encrypted object: only the chunks a
range touches are fetched and decrypted, so the first byte comes back after
one small read whatever the length of the call. WAV is decoded while it is
sent (:mod:`callvault.media.wav_render`): its size comes from the archive's
last Ogg page, and a range is produced by decoding up to its end and keeping
only its bytes, so memory stays bounded whatever the length of the call (the
whole rendition of a 30-minute call used to be built per request, +168 MB).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from callvault.crypto.envelope import EncryptedObjectReader
from callvault.crypto.keyprovider import KeyProvider, WrappedKey
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import (
    Conflict,
    IntegrityError,
    InvalidInput,
    KeyUnavailable,
    NotFound,
    UnsupportedMedia,
)
from callvault.media.wav import WAV_HEADER_SIZE
from callvault.media.wav_render import WavLayout, iter_samples, iter_wav, wav_header, wav_layout
from callvault.media.wav_silence import SilencedSpan, sample_ranges, silence_chunk
from callvault.services.access import Action, Principal, check_recording
from callvault.services.audit import AccessLog
from callvault.services.recordings import RecordingService
from callvault.storage.blobstore import BlobStore

AudioFormat = Literal["ogg", "wav"]
CONTENT_TYPES = {"ogg": "audio/ogg", "wav": "audio/wav"}
_CHUNK = 65536
# Recognisers' word times are approximate (tens to a few hundred ms): a silenced span is widened
# by this much on each side so no edge of a redacted word is heard.
SILENCE_PAD_S = 0.35
# The last Ogg page (at most 65,307 bytes) holds the archive's length.
_TAIL = 65536 + 512


class _RangeSource(Protocol):
    def read(self, start: int, end_exclusive: int) -> bytes: ...

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...


class _ReaderFile:
    """A seekable, read-only file over the decrypting reader, for the demuxer.

    It decrypts one window at a time (a few envelope chunks), so decoding a
    long archive never holds more than that window of it.
    """

    _WINDOW = 4 * _CHUNK

    def __init__(self, reader: EncryptedObjectReader) -> None:
        self._reader = reader
        self._size = reader.plaintext_size
        self._pos = 0
        self._window_start = 0
        self._window = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1, /) -> bytes:
        if self._pos >= self._size:
            return b""
        want = self._size - self._pos if size is None or size < 0 else min(size, self._size - self._pos)
        offset = self._pos - self._window_start
        if not 0 <= offset < len(self._window):
            self._window_start = self._pos
            self._window = self._reader.read(self._pos, min(self._size, self._pos + self._WINDOW))
            offset = 0
        data = self._window[offset : offset + want]
        self._pos += len(data)
        return data


# The archive as a seekable file, decrypted a window at a time (transcription decodes it whole).
ArchiveFile = _ReaderFile


class _WavSource:
    def __init__(self, reader: EncryptedObjectReader, layout: WavLayout) -> None:
        self._reader = reader
        self.layout = layout

    def read(self, start: int, end_exclusive: int) -> bytes:
        return b"".join(self.iter_chunks(start, end_exclusive))

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        stop = self.layout.size if end is None else end
        pending = bytearray()
        # Decoded blocks are small (one 60 ms frame); send them in 64 KiB pieces.
        for piece in iter_wav(_ReaderFile(self._reader), self.layout, start, stop):
            pending += piece
            if len(pending) >= _CHUNK:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)


class _LaidOut(_RangeSource, Protocol):
    layout: WavLayout


class _SilencedSource:
    """A WAV source with spans of one channel zeroed as it streams (redacted audio)."""

    def __init__(self, inner: _LaidOut, ranges: list[tuple[int, int, int]]) -> None:
        self._inner = inner
        self._ranges = ranges

    def read(self, start: int, end_exclusive: int) -> bytes:
        return b"".join(self.iter_chunks(start, end_exclusive))

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        at = start
        for chunk in self._inner.iter_chunks(start, end):
            yield silence_chunk(chunk, at, self._inner.layout.channels, self._ranges)
            at += len(chunk)


class _SpanSource:
    """The WAV of samples ``first:last`` of a rendition (coaching clips): its own header, then
    those samples, decoded from just before the span (not from the start of the call)."""

    def __init__(self, reader: EncryptedObjectReader, whole: WavLayout, first: int, last: int) -> None:
        self._reader = reader
        self._whole = whole
        self._first = first
        self.layout = WavLayout(whole.channels, whole.sample_rate, last - first)
        self._frame = whole.channels * 2

    def read(self, start: int, end_exclusive: int) -> bytes:
        return b"".join(self.iter_chunks(start, end_exclusive))

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        stop = self.layout.size if end is None else min(end, self.layout.size)
        if start < WAV_HEADER_SIZE:
            yield wav_header(self.layout)[start:stop]
        body_start, body_end = max(start, WAV_HEADER_SIZE) - WAV_HEADER_SIZE, stop - WAV_HEADER_SIZE
        if body_end <= body_start:
            return
        # Whole sample frames around the byte range, then its exact bytes.
        first = self._first + body_start // self._frame
        last = self._first + -(-body_end // self._frame)
        skip = body_start % self._frame
        wanted = body_end - body_start
        pending = bytearray()
        for piece in iter_samples(_ReaderFile(self._reader), self._whole, first, last):
            pending += piece
            if len(pending) - skip >= _CHUNK:
                chunk = bytes(pending[skip : skip + wanted])
                wanted -= len(chunk)
                skip = 0
                pending.clear()
                yield chunk
        if wanted > 0 and len(pending) > skip:
            yield bytes(pending[skip : skip + wanted])


@dataclass
class PlaybackAudio:
    recording_id: str
    content_type: str
    size: int
    filename: str
    _source: _RangeSource

    def read(self, start: int = 0, end_exclusive: int | None = None) -> bytes:
        return self._source.read(start, self.size if end_exclusive is None else end_exclusive)

    def iter_range(self, start: int = 0, end_exclusive: int | None = None) -> Iterator[bytes]:
        return self._source.iter_chunks(start, self.size if end_exclusive is None else end_exclusive)


def require_audio(recording: Recording) -> None:
    """KeyUnavailable (410) once the audio is destroyed; NotFound when the call never had any."""
    if recording.key_destroyed_at is not None or recording.status == "deleted":
        raise KeyUnavailable("recording audio has been destroyed")
    if not recording.object_key or recording.wrapped_key is None or recording.kek_id is None:
        raise NotFound("recording has no audio")


class PlaybackService:
    def __init__(
        self,
        catalog: Catalog,
        blobs: BlobStore,
        keys: KeyProvider,
        access_log: AccessLog,
        recordings: RecordingService,
    ) -> None:
        self._recordings = recordings
        self._catalog = catalog
        self._blobs = blobs
        self._keys = keys
        self._log = access_log

    def open_audio(
        self,
        principal: Principal,
        recording_id: str,
        fmt: str = "ogg",
        download: bool = False,
        silence: Sequence[SilencedSpan] | None = None,
    ) -> PlaybackAudio:
        """The recording's audio; with ``silence`` (redacted audio, even an empty list) the WAV
        rendition with those spans zeroed, whatever ``fmt`` asked for."""
        if silence is not None:
            fmt = "wav"
        if fmt not in CONTENT_TYPES:
            raise UnsupportedMedia(f"format must be one of {', '.join(CONTENT_TYPES)}")
        action = Action.RECORDING_DOWNLOAD if download else Action.RECORDING_PLAY
        verb = "download" if download else "play"
        with self._catalog.read() as session:
            try:
                recording = check_recording(principal, action, session.get(Recording, recording_id))
            except NotFound:
                self._log.record(principal, verb, recording_id, outcome="not_found")
                raise
        if recording.status == "recording":
            raise Conflict("recording is still in progress")
        if recording.key_destroyed_at is not None or recording.status == "deleted":
            raise KeyUnavailable("recording audio has been destroyed")
        if not recording.object_key or recording.wrapped_key is None or recording.kek_id is None:
            raise NotFound("recording has no audio")
        reader = self.open_reader(recording)
        redacted = "" if silence is None else f" redacted={len(silence)}"
        self._log.record(principal, verb, recording_id, detail=f"format={fmt}{redacted}")
        if fmt == "ogg":
            return PlaybackAudio(
                recording_id, CONTENT_TYPES[fmt], reader.plaintext_size, f"{recording_id}.ogg", reader
            )
        size = reader.plaintext_size
        try:
            layout = wav_layout(reader.read(0, min(size, 8192)), reader.read(max(0, size - _TAIL), size))
        except ValueError as exc:
            raise IntegrityError(f"recording {recording_id} archive cannot be decoded: {exc}") from None
        source: _RangeSource = _WavSource(reader, layout)
        if silence is not None:
            ranges = sample_ranges(silence, layout.sample_rate, layout.samples, SILENCE_PAD_S)
            source = _SilencedSource(_WavSource(reader, layout), ranges)
        name = f"{recording_id}{'-redacted' if silence is not None else ''}.wav"
        return PlaybackAudio(recording_id, CONTENT_TYPES[fmt], layout.size, name, source)

    def open_span(
        self, recording: Recording, start: float, end: float, silence: Sequence[SilencedSpan] | None = None
    ) -> PlaybackAudio:
        """WAV of ``start``..``end`` seconds of a sealed recording, cut while it is decoded
        (coaching clips; no access check or audit here: the caller has done both); with
        ``silence``, the redacted rendition's span (those spans zeroed, times from the call's start)."""
        require_audio(recording)
        reader = self.open_reader(recording)
        size = reader.plaintext_size
        try:
            layout = wav_layout(reader.read(0, min(size, 8192)), reader.read(max(0, size - _TAIL), size))
        except ValueError as exc:
            raise IntegrityError(f"recording {recording.id} archive cannot be decoded: {exc}") from None
        first = min(layout.samples, round(start * layout.sample_rate))
        last = min(layout.samples, max(first, round(end * layout.sample_rate)))
        span = _SpanSource(reader, layout, first, last)
        source: _RangeSource = span
        if silence is not None:
            # The whole call's sample ranges, shifted to the span's own first sample.
            ranges = sample_ranges(silence, layout.sample_rate, layout.samples, SILENCE_PAD_S)
            shifted = [
                (ch, max(0, lo - first), hi - first) for ch, lo, hi in ranges if hi > first and lo < last
            ]
            source = _SilencedSource(span, shifted)
        return PlaybackAudio(
            recording.id, CONTENT_TYPES["wav"], span.layout.size, f"clip-{recording.id}.wav", source
        )

    def destroy_audio(self, principal: Principal, recording_id: str, reason: str) -> bool:
        """Crypto-shred one recording's audio (erasure requests, retention): see
        :meth:`RecordingService.destroy_audio_key`. The reason goes into the access trail."""
        if not reason.strip():
            raise InvalidInput("a reason is required to destroy a recording's audio")
        with self._catalog.read() as session:
            check_recording(principal, Action.RECORDING_DESTROY, session.get(Recording, recording_id))
        destroyed = self._recordings.destroy_audio_key(recording_id)
        self._log.record(principal, "destroy_audio", recording_id, detail=reason[:500])
        return destroyed

    def open_reader(self, recording: Recording) -> EncryptedObjectReader:
        """Decrypting reader of a recording's archive (no access check: callers have done it)."""
        assert recording.object_key and recording.wrapped_key is not None and recording.kek_id
        data_key = self._keys.unwrap(
            WrappedKey(recording.kek_id, recording.wrapped_key), recording.id.encode()
        )
        key = recording.object_key
        return EncryptedObjectReader(
            lambda start, length: self._blobs.get_range(key, start, length), data_key, recording.id
        )
