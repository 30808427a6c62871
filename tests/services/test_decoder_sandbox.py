"""Untrusted audio is decoded in a limited worker process: crashes, bombs and runaways fail one request.

Also: damaged files (cut short, undecodable packets) are kept as ``incomplete``
with the damage counted, never passed as ``complete``.
"""

from __future__ import annotations

import io
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.errors import PayloadTooLarge, UnprocessableMedia
from callvault.services.context import ServiceContext, open_context
from callvault.services.decoder_sandbox import DecoderSandbox
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, create_staff

RATE = 8000
GIB = 2**30


def eight_channel_wav(seconds: float = 1.0) -> bytes:
    rng = np.random.default_rng(8)
    frames = (rng.standard_normal((int(seconds * RATE), 8)) * 3000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(8)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames.tobytes())
    return buffer.getvalue()


@pytest.fixture(scope="module")
def flac_bomb() -> bytes:
    """~100 KB of FLAC that decodes to 10 minutes of 48 kHz stereo (110 MB of samples)."""
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as container:
        stream = container.add_stream("flac", rate=48000, layout="stereo")
        assert isinstance(stream, av.audio.stream.AudioStream)
        block = np.zeros((1, 2 * 65536), np.int16)
        for start in range(0, 48000 * 600, 65536):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="stereo")
            frame.sample_rate = 48000
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = out.getvalue()
    assert len(data) < 300_000
    return data


def _mp3(seconds: float) -> bytes:
    pcm = np.stack([voice(seconds, 16000, 130, 1), voice(seconds, 16000, 210, 2)])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=16000, layout="stereo")
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.T).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = 16000
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def test_the_eight_channel_wav_fails_one_upload_and_the_server_keeps_serving(
    data_dir: Path, database_url: str
) -> None:
    ctx = open_context(make_settings(data_dir, database_url))
    try:
        staff = create_staff(ctx)
        headers = auth(staff.tokens["carol"])
        with TestClient(create_app(ctx)) as client:
            crashing = client.post(
                "/api/v1/recordings", headers=headers, files={"file": ("8ch.wav", eight_channel_wav())}
            )
            # In-process, this file killed the server (SIGSEGV in PyAV's sample conversion).
            if crashing.status_code != 201:
                assert crashing.status_code == 422, crashing.text
                assert "decoder failed" in crashing.json()["detail"]
                assert "SIGSEGV" in crashing.json()["detail"]
            fine = client.post(
                "/api/v1/recordings",
                headers=headers,
                files={"file": ("ok.wav", stereo_wav(voice(1, RATE, 120, 1), voice(1, RATE, 200, 2), RATE))},
            )
            assert fine.status_code == 201, fine.text
            assert client.get("/healthz").status_code == 200
    finally:
        ctx.close()


def test_a_decoder_killed_by_a_signal_fails_cleanly() -> None:
    segfaulting = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    sandbox = DecoderSandbox(GIB, 30, command=segfaulting)
    with pytest.raises(UnprocessableMedia, match="killed by SIGSEGV"):
        sandbox.transcode(b"RIFF....WAVE", 60, 10000, None)


def test_a_runaway_decoder_is_stopped_at_the_timeout() -> None:
    sandbox = DecoderSandbox(GIB, 2, command=[sys.executable, "-c", "while True: pass"])
    with pytest.raises(UnprocessableMedia, match="longer than 2 s"):
        sandbox.transcode(b"RIFF....WAVE", 60, 10000, None)


def test_a_decompression_bomb_stops_at_the_duration_cap(flac_bomb: bytes) -> None:
    with pytest.raises(
        PayloadTooLarge, match=r"longer than the limit of 120 s.*CALLVAULT_MAX_UPLOAD_SECONDS"
    ):
        DecoderSandbox(2 * GIB, 120).transcode(flac_bomb, 120, 10000, None)


def test_a_decompression_bomb_stops_at_the_memory_limit(flac_bomb: bytes) -> None:
    with pytest.raises(PayloadTooLarge, match="CALLVAULT_DECODER_MEMORY_MB"):
        DecoderSandbox(320 * 2**20, 120).transcode(flac_bomb, 6 * 3600, 10000, None)


def test_the_worker_hands_back_the_archive_not_the_samples() -> None:
    wav = stereo_wav(voice(3, 16000, 120, 1), voice(3, 16000, 200, 2), 16000)
    result = DecoderSandbox(GIB, 60).transcode(wav, 60, 10000, None)
    assert result.archive.startswith(b"OggS")
    assert (result.sample_rate, result.channels, result.samples) == (16000, 2, 48000)
    assert len(result.archive) < len(wav) / 10
    assert result.damage == ()


def test_damaged_files_import_as_incomplete_with_the_damage_counted(ctx: ServiceContext) -> None:
    mp3 = _mp3(6.0)
    cut = mp3[: len(mp3) // 2]
    holed = bytearray(mp3)
    holed[len(holed) // 2 : len(holed) // 2 + 600] = bytes(600)
    wav = stereo_wav(voice(4, RATE, 120, 3), voice(4, RATE, 200, 4), RATE)
    cases = {"clean.mp3": mp3, "cut.mp3": cut, "holed.mp3": bytes(holed), "cut.wav": wav[: len(wav) * 2 // 3]}
    results = {
        name: ctx.importer.import_file(ADMIN, data, ImportRequest(filename=name))
        for name, data in cases.items()
    }
    assert results["clean.mp3"].status == "complete"
    assert results["clean.mp3"].damage == ()
    for name in ("cut.mp3", "holed.mp3", "cut.wav"):
        assert results[name].status == "incomplete", name
        detail = ctx.search.get(ADMIN, results[name].recording_id)
        assert detail["status"] == "incomplete"
        assert all(s["stats"].get("damage") for s in detail["streams"]), name
    assert "truncated audio at" in " ".join(results["cut.mp3"].damage)
    holed_detail = ctx.search.get(ADMIN, results["holed.mp3"].recording_id)
    assert holed_detail["completeness"]["decode_errors"] >= 1
    assert "undecodable audio packets skipped" in " ".join(results["holed.mp3"].damage)
    assert all(r.ok for r in ctx.integrity.verify(ADMIN))
