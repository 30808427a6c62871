"""Waveform peaks of a recording, computed once and kept in the catalog.

A recording's peaks are computed when it is sealed (the service subscribes to
``recording.sealed`` and works in one background thread, so sealing never
waits for it) and, for recordings sealed before this existed or while the
server was down, the first time someone asks. Decoding a one-hour call takes
seconds; reading its cached peaks takes milliseconds.

Peaks reveal when each party spoke, so they are served to those who may play
the recording (auditors, who never hear audio, get none) and are dropped when
its audio is destroyed, in the transaction that destroys it: crypto-shredding
(``RecordingService.destroy_audio_key``) and deletion by retention or erasure
(``DeletionService``, with the rest of the call's personal data). A computation
that was under way then stores nothing.

Computing decodes the archive as it is read (:class:`~.playback.ArchiveFile`,
one window of the decrypted archive at a time), so memory stays bounded
however long the call.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy import delete

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.web_models import RecordingPeaks
from callvault.errors import CallvaultError, Conflict, IntegrityError, KeyUnavailable, NotFound
from callvault.media.peaks import Peaks, archive_peaks
from callvault.services.access import Action, Principal, check_recording
from callvault.services.events import DomainEvent
from callvault.services.playback import ArchiveFile, PlaybackService

log = logging.getLogger(__name__)


class WaveformService:
    def __init__(self, catalog: Catalog, playback: PlaybackService) -> None:
        self._catalog = catalog
        self._playback = playback
        self._background = ThreadPoolExecutor(1, thread_name_prefix="peaks")
        self._computing: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def peaks(self, principal: Principal, recording_id: str) -> Peaks:
        """The recording's peaks, computed now if no one has yet (404 out of scope, 409 still live)."""
        with self._catalog.read() as session:
            recording = check_recording(
                principal, Action.RECORDING_PLAY, session.get(Recording, recording_id)
            )
            if recording.status == "recording":
                raise Conflict("recording is still in progress")
            if recording.key_destroyed_at is not None or recording.status == "deleted":
                raise KeyUnavailable("recording audio has been destroyed")
            if not recording.object_key:
                raise NotFound("recording has no audio")
            cached = session.get(RecordingPeaks, recording_id)
            if cached is not None:
                return _from_row(cached)
        return self.compute(recording_id)

    def compute(self, recording_id: str) -> Peaks:
        """Decode the archive and store its peaks (no access check: callers have done it).
        One computation per recording at a time: a second asker waits for the first."""
        with self._guard:
            lock = self._computing.setdefault(recording_id, threading.Lock())
        with lock:
            with self._catalog.read() as session:
                cached = session.get(RecordingPeaks, recording_id)
                if cached is not None:
                    return _from_row(cached)
                recording = session.get(Recording, recording_id)
                if recording is None or not recording.object_key or recording.wrapped_key is None:
                    raise NotFound("recording has no audio")
                reader = self._playback.open_reader(recording)
            try:
                # Streamed through a window of the decrypted archive, never the archive whole.
                peaks = archive_peaks(ArchiveFile(reader))
            except (ValueError, OSError) as exc:
                raise IntegrityError(f"recording {recording_id} archive cannot be decoded: {exc}") from None
            with self._catalog.write() as session:
                # The audio may have been destroyed while it was decoded: then nothing is kept.
                current = session.get(Recording, recording_id)
                destroyed = current is None or current.wrapped_key is None or current.status == "deleted"
                if destroyed:
                    raise KeyUnavailable("recording audio has been destroyed")
                if session.get(RecordingPeaks, recording_id) is None:
                    session.add(
                        RecordingPeaks(
                            recording_id=recording_id,
                            channels=peaks.channels,
                            bucket_seconds=peaks.bucket_seconds,
                            duration_seconds=peaks.duration_seconds,
                            peaks=peaks.data,
                            computed_at=datetime.now(UTC),
                        )
                    )
        with self._guard:
            self._computing.pop(recording_id, None)
        return peaks

    def forget(self, recording_id: str) -> None:
        """Drop a recording's peaks (its audio was destroyed)."""
        with self._catalog.write() as session:
            session.execute(delete(RecordingPeaks).where(RecordingPeaks.recording_id == recording_id))

    # -- domain events ---------------------------------------------------------------------

    def handle(self, event: DomainEvent) -> None:
        recording_id = event.data.get("recording_id")
        if not isinstance(recording_id, str):
            return
        if event.type == "recording.sealed" and event.data.get("format"):
            self._background.submit(self._compute_quietly, recording_id)
        elif event.type == "recording.deleted":
            self._background.submit(self.forget, recording_id)

    def _compute_quietly(self, recording_id: str) -> None:
        try:
            self.compute(recording_id)
        except CallvaultError as exc:
            log.warning("waveform of recording %s not computed: %s", recording_id, exc.message)

    def close(self) -> None:
        self._background.shutdown(wait=True, cancel_futures=True)


def _from_row(row: RecordingPeaks) -> Peaks:
    return Peaks(row.channels, row.bucket_seconds, row.duration_seconds, bytes(row.peaks))
