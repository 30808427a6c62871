"""decode_audio: every container PyAV reads, and precise refusals of damaged input."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from callvault.media.archive import encode_archive
from callvault.media.decoding import decode_audio
from callvault.media.mixing import correlate, stack_stereo, synth_speech_like, tone
from callvault.media.wav import to_wav


def _stereo(seconds: float, rate: int) -> np.ndarray:
    return stack_stereo(tone(440, seconds, rate), tone(1000, seconds, rate))


def _encode_with_pyav(fmt: str, codec: str, pcm: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo", options={"strict": "experimental"})
        assert isinstance(stream, av.audio.stream.AudioStream)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.T).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive() -> bytes:
    return encode_archive(
        stack_stereo(synth_speech_like(6.0, 8000, 1), synth_speech_like(6.0, 8000, 2)), 8000
    )


@pytest.mark.parametrize(
    ("fmt", "codec", "rate"),
    [("flac", "flac", 8000), ("mp3", "mp3", 16000), ("ogg", "vorbis", 16000)],
)
def test_decodes_other_containers(fmt: str, codec: str, rate: int) -> None:
    source = _stereo(2.0, rate)
    decoded = decode_audio(_encode_with_pyav(fmt, codec, source, rate))
    assert decoded.sample_rate == rate
    assert decoded.channels == 2
    assert abs(decoded.duration - 2.0) < 0.1
    assert correlate(decoded.pcm[0], source[0], rate) > 0.9
    assert correlate(decoded.pcm[1], source[1], rate) > 0.9


def test_wav_decodes_back_exactly() -> None:
    source = stack_stereo(synth_speech_like(1.5, 16000, 4), tone(300, 1.0, 16000))
    decoded = decode_audio(to_wav(source, 16000))
    assert decoded.sample_rate == 16000
    assert np.array_equal(decoded.pcm, source)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "zero-length"),
        (b"this is a text file, not audio at all\n" * 20, "not an audio file"),
        (bytes(range(256)) * 8, "not an audio file"),
        (b"OggS", "truncated or corrupt audio"),
    ],
)
def test_refuses_non_audio(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_audio(data)


def test_refuses_video_only_or_audio_less_container() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream("ffv1", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    with pytest.raises(ValueError, match="no audio stream"):
        decode_audio(buffer.getvalue())


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.99])
def test_refuses_truncated_archive_naming_the_time(archive: bytes, keep: float) -> None:
    with pytest.raises(ValueError, match=r"truncated or corrupt audio at \d+\.\d\d s"):
        decode_audio(archive[: int(len(archive) * keep)])


def test_refuses_archive_cut_at_a_page_boundary(archive: bytes) -> None:
    last_page = archive.rindex(b"OggS")
    with pytest.raises(ValueError, match="no end-of-stream page"):
        decode_audio(archive[:last_page])


def test_refuses_flipped_bit_in_archive(archive: bytes) -> None:
    damaged = bytearray(archive)
    damaged[len(archive) // 2] ^= 0x10
    with pytest.raises(ValueError, match="CRC mismatch"):
        decode_audio(bytes(damaged))


def test_salvages_truncated_archive_when_asked(archive: bytes) -> None:
    salvaged = decode_audio(archive[: len(archive) // 2], allow_truncated=True)
    full = decode_audio(archive)
    assert 1.5 < salvaged.duration < full.duration
    assert correlate(salvaged.pcm[0], full.pcm[0, : salvaged.samples]) > 0.99


def test_refuses_truncated_wav() -> None:
    wav = to_wav(_stereo(2.0, 8000), 8000)
    with pytest.raises(ValueError, match=r"truncated audio at 1\.00 s"):
        decode_audio(wav[: 44 + 32000])


def test_refuses_truncated_flac() -> None:
    flac = _encode_with_pyav("flac", "flac", _stereo(3.0, 8000), 8000)
    with pytest.raises(ValueError, match="truncated"):
        decode_audio(flac[: len(flac) // 2])


def test_max_seconds_stops_decompression_bombs(archive: bytes) -> None:
    with pytest.raises(ValueError, match="longer than the limit of 5 s"):
        decode_audio(archive, max_seconds=5)
    assert decode_audio(archive, max_seconds=7).duration == pytest.approx(6.0, abs=0.02)


def test_silence_bomb_is_refused_while_decoding() -> None:
    # Three minutes of silence compress to a few dozen kilobytes; the limit must hit
    # before all of it is expanded.
    silence = np.zeros((2, 180 * 8000), dtype=np.int16)
    data = encode_archive(silence, 8000)
    assert len(data) < 3 * 40_000
    with pytest.raises(ValueError, match="longer than the limit"):
        decode_audio(data, max_seconds=60)
