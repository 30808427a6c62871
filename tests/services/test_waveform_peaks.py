"""Waveform peaks: computed from the archive as it streams (bounded memory however long the
call), and gone with the audio when it is destroyed by any path."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from callvault.db.web_models import RecordingPeaks
from callvault.errors import KeyUnavailable
from callvault.media.archive import encode_archive
from callvault.media.peaks import Peaks, archive_peaks
from callvault.services import waveform
from callvault.services.call_record import ArchiveAudio, CallRecord, StreamRecord
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN

RATE = 8000
MINUTES = 20


def _tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * hz * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.25 * t)) * 9000).astype(np.int16)


@pytest.fixture(scope="module")
def long_archive() -> bytes:
    """Twenty minutes of stereo: encoding it costs seconds, so it is made once per module."""
    seconds = MINUTES * 60.0
    return encode_archive(np.stack([_tone(seconds, 220), _tone(seconds, 330)]), RATE)


def _store(ctx: ServiceContext, archive: bytes, seconds: float) -> str:
    audio = ArchiveAudio(data=archive, sample_rate=RATE, channels=2, duration_seconds=seconds)
    call = CallRecord(started_at=datetime.now(UTC), source="import")
    streams = [StreamRecord("left", "import", 0), StreamRecord("right", "import", 1)]
    return ctx.recordings.store_new(call, audio, streams)


def _cached(ctx: ServiceContext, recording_id: str) -> bool:
    with ctx.catalog.read() as session:
        return session.get(RecordingPeaks, recording_id) is not None


def test_peaks_of_a_long_call_stream_from_the_archive_in_bounded_memory(
    ctx: ServiceContext, long_archive: bytes
) -> None:
    recording_id = _store(ctx, long_archive, MINUTES * 60.0)
    # Sealing queued a computation in the background thread: let it finish and stop, so that
    # tracemalloc measures this computation alone, then drop what it stored.
    ctx.waveforms.close()
    ctx.waveforms.forget(recording_id)
    assert not _cached(ctx, recording_id)
    tracemalloc.start()
    try:
        peaks = ctx.waveforms.compute(recording_id)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peaks == archive_peaks(io.BytesIO(long_archive))  # the same as from the whole file
    assert peaks.channels == 2 and abs(peaks.duration_seconds - MINUTES * 60.0) < 0.1
    assert _cached(ctx, recording_id)
    # Reading the archive whole held it at least once (the plaintext, then its BytesIO). Streamed: the reader's window (a 256 KiB read: ciphertext, chunks and
    # plaintext, ~1 MB whatever the length) and the peaks (2 bytes per 50 ms bucket).
    size = len(long_archive)
    assert size > 2_000_000
    assert peak < size / 2, f"peak {peak} bytes for a {size}-byte archive"


def test_cached_peaks_go_when_the_audio_is_crypto_shredded(ctx: ServiceContext) -> None:
    archive = encode_archive(np.stack([_tone(3.0, 220), _tone(3.0, 330)]), RATE)
    recording_id = _store(ctx, archive, 3.0)
    ctx.waveforms.compute(recording_id)
    assert _cached(ctx, recording_id)
    assert ctx.playback.destroy_audio(ADMIN, recording_id, reason="erasure request 7")
    assert not _cached(ctx, recording_id)
    with pytest.raises(KeyUnavailable):
        ctx.waveforms.peaks(ADMIN, recording_id)
    assert not _cached(ctx, recording_id)


@pytest.mark.parametrize("reason", ["retention", "erasure"])
def test_cached_peaks_go_when_the_recording_is_deleted(ctx: ServiceContext, reason: str) -> None:
    archive = encode_archive(np.stack([_tone(3.0, 220), _tone(3.0, 330)]), RATE)
    kept, doomed = _store(ctx, archive, 3.0), _store(ctx, archive, 3.0)
    for recording_id in (kept, doomed):
        ctx.waveforms.compute(recording_id)
    outcome = ctx.deletion.delete(ADMIN, [doomed], reason, "test")
    assert outcome.deleted == [doomed]
    assert not _cached(ctx, doomed) and _cached(ctx, kept)


def test_a_computation_that_ends_after_the_audio_was_destroyed_stores_nothing(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = encode_archive(np.stack([_tone(3.0, 220), _tone(3.0, 330)]), RATE)
    recording_id = _store(ctx, archive, 3.0)
    ctx.waveforms.close()
    ctx.waveforms.forget(recording_id)

    def decode_then_shred(source: Any) -> Peaks:
        peaks = archive_peaks(source)  # decoded...
        ctx.recordings.destroy_audio_key(recording_id)  # ...and the audio destroyed meanwhile
        return peaks

    monkeypatch.setattr(waveform, "archive_peaks", decode_then_shred)
    with pytest.raises(KeyUnavailable):
        ctx.waveforms.compute(recording_id)
    assert not _cached(ctx, recording_id)


def test_peaks_that_come_with_the_audio_are_kept_at_sealing_and_the_archive_is_not_decoded(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[object] = []
    monkeypatch.setattr(waveform, "archive_peaks", lambda source, *a: decoded.append(source))
    rendered = Peaks(2, 0.05, 1.0, bytes(range(40)))  # as the renderer took them from the PCM
    archive = encode_archive(np.stack([_tone(1.0, 220), _tone(1.0, 330)]), RATE)
    audio = ArchiveAudio(data=archive, sample_rate=RATE, channels=2, duration_seconds=1.0, peaks=rendered)
    call = CallRecord(started_at=datetime.now(UTC), source="import")
    recording_id = ctx.recordings.store_new(call, audio, [StreamRecord("left", "import", 0)])
    ctx.waveforms.close()  # the seal's background job, if any, is done
    assert ctx.waveforms.compute(recording_id) == rendered
    assert decoded == []
