"""Playback and download: decrypt a recording on the fly, by byte range.

Ogg Opus is served straight from the encrypted object: only the chunks a
range touches are fetched and decrypted, so the first byte comes back after
one small read whatever the length of the call. WAV is produced by decoding
the archive in memory (archives are small: ~1 MB per stereo hour per kbit).
"""

from __future__ import annotations

from collections.abc import Iterator
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
from callvault.media.archive import decode_audio
from callvault.media.wav import to_wav
from callvault.services.access import Action, Principal, check_recording
from callvault.services.audit import AccessLog
from callvault.services.recordings import RecordingService
from callvault.storage.blobstore import BlobStore

AudioFormat = Literal["ogg", "wav"]
CONTENT_TYPES = {"ogg": "audio/ogg", "wav": "audio/wav"}


class _RangeSource(Protocol):
    def read(self, start: int, end_exclusive: int) -> bytes: ...

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...


class _MemorySource:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, start: int, end_exclusive: int) -> bytes:
        return self._data[start:end_exclusive]

    def iter_chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        stop = len(self._data) if end is None else end
        for offset in range(start, stop, 65536):
            yield self._data[offset : min(offset + 65536, stop)]


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
        self, principal: Principal, recording_id: str, fmt: str = "ogg", download: bool = False
    ) -> PlaybackAudio:
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
        self._log.record(principal, verb, recording_id, detail=f"format={fmt}")
        if fmt == "ogg":
            return PlaybackAudio(
                recording_id, CONTENT_TYPES[fmt], reader.plaintext_size, f"{recording_id}.ogg", reader
            )
        try:
            decoded = decode_audio(reader.read(0, reader.plaintext_size))
        except ValueError as exc:
            raise IntegrityError(f"recording {recording_id} archive cannot be decoded: {exc}") from None
        wav = to_wav(decoded.pcm, decoded.sample_rate)
        return PlaybackAudio(
            recording_id, CONTENT_TYPES[fmt], len(wav), f"{recording_id}.wav", _MemorySource(wav)
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
