"""Playback of an archive larger than one 64 KiB envelope chunk: ranges across chunk
boundaries, and a tampered last chunk refused by playback and by ``verify``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.crypto.envelope import DEFAULT_CHUNK_SIZE, HEADER_SIZE, TAG_SIZE
from callvault.db.models import Recording
from callvault.errors import IntegrityError
from callvault.services.context import ServiceContext, open_context
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import Staff, create_staff

RATE = 16000
CHUNK = DEFAULT_CHUNK_SIZE


@pytest.fixture
def big_ctx(data_dir: Path, database_url: str) -> Iterator[ServiceContext]:
    # A high archive bitrate makes a short call span several chunks without a long encode.
    ctx = open_context(make_settings(data_dir, database_url, opus_bitrate="64000"))
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def staff(big_ctx: ServiceContext) -> Staff:
    return create_staff(big_ctx)


@pytest.fixture
def recording_id(big_ctx: ServiceContext, staff: Staff) -> str:
    wav = stereo_wav(voice(14, RATE, 130, 21), voice(14, RATE, 210, 22), RATE)
    return big_ctx.importer.import_bytes(staff.principals["carol"], wav, ImportRequest(agent="alice"))


def stored(ctx: ServiceContext, recording_id: str) -> Recording:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        session.expunge(recording)
        return recording


def test_ranges_across_chunk_boundaries_return_the_right_bytes(
    big_ctx: ServiceContext, staff: Staff, recording_id: str
) -> None:
    url = f"/api/v1/recordings/{recording_id}/audio"
    headers = auth(staff.tokens["carol"])
    with TestClient(create_app(big_ctx)) as client:
        whole = client.get(url, headers=headers).content
        size = len(whole)
        assert size > 2 * CHUNK + 1000, size  # at least three chunks, the last one partial
        assert size % CHUNK
        cases = [
            (CHUNK - 1, CHUNK + 1),  # the two bytes either side of the first boundary
            (CHUNK - 100, CHUNK + 100),
            (CHUNK, CHUNK + 1),  # first byte of the second chunk alone
            (1000, 2 * CHUNK + 10),  # three chunks
            (2 * CHUNK - 5, size),  # into the last, partial chunk up to the end
            (size - 1, size),
        ]
        for start, end in cases:
            response = client.get(url, headers={**headers, "Range": f"bytes={start}-{end - 1}"})
            assert response.status_code == 206, (start, end)
            assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
            assert response.headers["content-length"] == str(end - start)
            assert response.content == whole[start:end], (start, end)
    # The same bytes as the service decrypts them, with no HTTP in between.
    audio = big_ctx.playback.open_audio(staff.principals["carol"], recording_id)
    assert audio.read() == whole
    assert b"".join(audio.iter_range(CHUNK - 7, 2 * CHUNK + 7)) == whole[CHUNK - 7 : 2 * CHUNK + 7]


def test_tampered_last_chunk_is_refused_by_playback_and_verify(
    big_ctx: ServiceContext, staff: Staff, recording_id: str
) -> None:
    recording = stored(big_ctx, recording_id)
    assert recording.object_key and recording.audio_size
    chunks = -(-recording.audio_size // CHUNK)
    assert chunks >= 3
    blob = bytearray(big_ctx.blobs.get(recording.object_key))
    last_chunk = HEADER_SIZE + (chunks - 1) * (CHUNK + TAG_SIZE)
    blob[last_chunk + 10] ^= 0x01  # one ciphertext bit in the last, partial chunk
    big_ctx.blobs.put(recording.object_key, bytes(blob))

    audio = big_ctx.playback.open_audio(staff.principals["carol"], recording_id)
    assert len(audio.read(0, CHUNK + 1)) == CHUNK + 1  # the chunks before it still play
    failure = f"chunk {chunks - 1} of {chunks} failed authentication"
    with pytest.raises(IntegrityError, match=failure):
        audio.read(audio.size - 1)
    with pytest.raises(IntegrityError, match=failure):
        b"".join(audio.iter_range((chunks - 1) * CHUNK - 3))
    result = big_ctx.integrity.verify_one(recording_id)
    assert any(failure in problem for problem in result.problems), result.problems
    assert any(problem.startswith("decryption failed") for problem in result.problems), result.problems
