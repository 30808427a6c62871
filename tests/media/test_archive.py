"""The archive format: Ogg Opus, channels kept apart, rate kept, small and incremental."""

from __future__ import annotations

import numpy as np
import pytest

from callvault.media.archive import (
    ArchiveEncoder,
    archive_rate_for,
    decode_audio,
    encode_archive,
)
from callvault.media.mixing import correlate, stack_stereo, synth_speech_like, tone
from callvault.media.ogg import parse_opus_head, scan_pages


def _conversation(seconds: float, rate: int) -> np.ndarray:
    return stack_stereo(synth_speech_like(seconds, rate, seed=1), synth_speech_like(seconds, rate, seed=2))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_round_trip_keeps_channels_apart_and_rate(rate: int) -> None:
    source = _conversation(8.0, rate)
    decoded = decode_audio(encode_archive(source, rate))

    assert decoded.sample_rate == rate
    assert decoded.channels == 2
    assert abs(decoded.duration - 8.0) <= 0.02
    for own, other in ((0, 1), (1, 0)):
        assert correlate(decoded.pcm[own], source[own], rate) >= 0.9
        assert correlate(decoded.pcm[own], source[other], rate) < 0.3


def test_tones_on_each_side_round_trip() -> None:
    source = stack_stereo(tone(440, 3.0, 8000), tone(1000, 3.0, 8000))
    decoded = decode_audio(encode_archive(source, 8000))
    assert correlate(decoded.pcm[0], source[0]) >= 0.9
    assert correlate(decoded.pcm[1], source[1]) >= 0.9
    assert correlate(decoded.pcm[0], source[1]) < 0.3


def _level_db(samples: np.ndarray) -> float:
    power = float(np.mean(samples.astype(np.float64) ** 2))
    return float(10 * np.log10(max(power, 1e-12)))


@pytest.mark.parametrize("signal", ["speech", "tone"])
def test_silent_right_channel_stays_silent(signal: str) -> None:
    # Coupled stereo at this bitrate would copy the left side onto the right.
    left = synth_speech_like(5.0, 8000, seed=3) if signal == "speech" else tone(300, 5.0, 8000)
    source = stack_stereo(left, np.zeros_like(left))
    decoded = decode_audio(encode_archive(source, 8000))
    assert _level_db(decoded.pcm[0]) - _level_db(decoded.pcm[1]) >= 40


def test_uses_channel_mapping_family_255_and_records_input_rate() -> None:
    data = encode_archive(_conversation(1.0, 16000), 16000)
    head = parse_opus_head(scan_pages(data)[0].body)
    assert head is not None
    assert (head.channels, head.mapping_family, head.input_sample_rate) == (2, 255, 16000)


def test_mono_round_trip() -> None:
    source = synth_speech_like(4.0, 8000, seed=5)
    decoded = decode_audio(encode_archive(source, 8000))
    assert decoded.channels == 1
    assert decoded.sample_rate == 8000
    assert abs(decoded.duration - 4.0) <= 0.02
    assert correlate(decoded.pcm[0], source) >= 0.9


def test_stereo_minute_at_8khz_is_under_100_kilobytes() -> None:
    # A call is turn-taking: while one side talks the other mostly listens.
    rate = 8000
    left = synth_speech_like(60.0, rate, seed=11)
    right = synth_speech_like(60.0, rate, seed=12)
    turn = np.arange(left.size) // (5 * rate) % 2 == 0
    source = stack_stereo(np.where(turn, left, 0).astype(np.int16), np.where(turn, 0, right).astype(np.int16))
    data = encode_archive(source, rate)
    assert len(data) <= 100_000
    assert abs(decode_audio(data).duration - 60.0) <= 0.02


def test_incremental_equals_one_shot_and_drains_pages() -> None:
    source = _conversation(10.0, 8000)
    whole = encode_archive(source, 8000)

    encoder = ArchiveEncoder(8000, 2)
    chunks = []
    for start in range(0, source.shape[1], 160):
        encoder.write(source[:, start : start + 160])
        chunks.append(encoder.drain())
    assert encoder.samples_written == source.shape[1]
    pages_before_finish = b"".join(chunks)
    tail = encoder.finish()

    # Pages come out while the call runs (about one per second), not only at the end.
    assert pages_before_finish.startswith(b"OggS")
    assert sum(1 for chunk in chunks if chunk) >= 5
    assert len(pages_before_finish) > len(whole) // 2
    assert pages_before_finish + tail == whole


def test_finish_twice_and_write_after_finish_fail() -> None:
    encoder = ArchiveEncoder(8000, 1)
    encoder.write(tone(440, 0.5, 8000))
    encoder.finish()
    with pytest.raises(ValueError, match="already finished"):
        encoder.write(tone(440, 0.5, 8000))
    with pytest.raises(ValueError, match="already finished"):
        encoder.finish()


@pytest.mark.parametrize(
    ("rate", "expected"), [(8000, 8000), (11025, 8000), (12000, 16000), (22050, 24000), (44100, 48000)]
)
def test_other_rates_go_to_nearest_opus_rate(rate: int, expected: int) -> None:
    assert archive_rate_for(rate) == expected


def test_44100_input_is_resampled_and_keeps_duration() -> None:
    source = tone(440, 2.0, 44100)
    encoder = ArchiveEncoder(44100, 1)
    for start in range(0, source.size, 4410):
        encoder.write(source[start : start + 4410])
    decoded = decode_audio(encoder.finish())
    assert decoded.sample_rate == 48000
    assert abs(decoded.duration - 2.0) <= 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 3}, "1 or 2 channels"),
        ({"bitrate_per_channel": 1000}, "bitrate"),
        ({"complexity": 11}, "complexity"),
    ],
)
def test_invalid_encoder_settings(kwargs: dict[str, int], message: str) -> None:
    arguments = {"sample_rate": 8000, "channels": 2} | kwargs
    with pytest.raises(ValueError, match=message):
        ArchiveEncoder(**arguments)


def test_write_rejects_wrong_shape_and_dtype() -> None:
    encoder = ArchiveEncoder(8000, 2)
    with pytest.raises(ValueError, match="shape"):
        encoder.write(np.zeros((1, 160), dtype=np.int16))
    with pytest.raises(ValueError, match="int16"):
        encoder.write(np.zeros((2, 160), dtype=np.float32))
