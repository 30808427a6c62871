"""WAV renditions are decoded while they are sent: right bytes for any range, bounded memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import numpy as np
import pytest

from callvault.media.archive import decode_audio, encode_archive, to_wav
from callvault.services.call_record import ArchiveAudio, CallRecord, StreamRecord
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN

RATE = 8000
MINUTES = 10


@pytest.fixture(scope="module")
def long_archive() -> tuple[bytes, bytes]:
    """Ten minutes of stereo as an archive, and its reference rendition from the whole-file
    decoder (what a WAV download always was). Encoding and decoding it cost seconds: made once
    per module, read-only to the tests."""
    t = np.arange(MINUTES * 60 * RATE) / RATE
    left = (np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * t)) * 9000).astype(np.int16)
    right = (np.sin(2 * np.pi * 330 * t) * (0.5 + 0.5 * np.cos(2 * np.pi * 0.2 * t)) * 9000).astype(np.int16)
    archive = encode_archive(np.stack([left, right]), RATE)
    return archive, to_wav(decode_audio(archive).pcm, RATE)


@pytest.fixture
def long_recording(ctx: ServiceContext, long_archive: tuple[bytes, bytes]) -> tuple[str, bytes]:
    archive, reference = long_archive
    audio = ArchiveAudio(data=archive, sample_rate=RATE, channels=2, duration_seconds=MINUTES * 60.0)
    call = CallRecord(started_at=datetime.now(UTC), source="import")
    streams = [StreamRecord("left", "import", 0), StreamRecord("right", "import", 1)]
    return ctx.recordings.store_new(call, audio, streams), reference


def test_a_range_near_the_end_of_a_long_wav_is_right_and_memory_stays_bounded(
    ctx: ServiceContext, long_recording: tuple[str, bytes]
) -> None:
    recording_id, reference = long_recording
    size = len(reference)
    assert size > 9_000_000
    start, end = size - 300_000, size - 1_000
    # Sealing queued the waveform peaks in a background thread; wait for them (compute returns
    # the stored peaks, or waits for the computation under way) so that tracemalloc measures
    # the range read alone, not another thread's decoding.
    ctx.waveforms.compute(recording_id)
    tracemalloc.start()
    try:
        audio = ctx.playback.open_audio(ADMIN, recording_id, "wav")
        pieces = list(audio.iter_range(start, end))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert audio.size == size
    assert b"".join(pieces) == reference[start:end]
    # Streamed: many bounded pieces, never the rendition (or the archive) at once.
    assert len(pieces) > 3
    assert max(len(p) for p in pieces) <= 2 * 65536
    assert peak < size / 8, f"peak {peak} bytes for a {size}-byte rendition"


def test_the_whole_wav_streams_identical_to_the_reference(
    ctx: ServiceContext, long_recording: tuple[str, bytes]
) -> None:
    recording_id, reference = long_recording
    audio = ctx.playback.open_audio(ADMIN, recording_id, "wav")
    assert audio.read(0, audio.size) == reference
    assert audio.read(0, 44) == reference[:44]
    assert audio.read(44, 46) == reference[44:46]
