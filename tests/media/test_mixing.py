"""Mixing helpers, test signals and the WAV writer."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from callvault.media.mixing import (
    correlate,
    interleave,
    mix_down,
    resample,
    stack_stereo,
    synth_speech_like,
    tone,
)
from callvault.media.wav import to_wav


def test_resample_keeps_length_alignment_and_content() -> None:
    source = synth_speech_like(3.0, 8000, 1)
    up = resample(source, 8000, 16000)
    assert up.size == 2 * source.size
    back = resample(up, 16000, 8000)
    assert back.size == source.size
    assert correlate(back, source, 8000, max_lag_s=0.0) >= 0.97  # no lag allowed: filter delay removed


def test_resample_stereo_and_odd_rates() -> None:
    stereo = stack_stereo(tone(440, 1.0, 44100), tone(880, 1.0, 44100))
    out = resample(stereo, 44100, 8000)
    assert out.shape == (2, 8000)
    assert correlate(out[1], tone(880, 1.0, 8000), 8000) > 0.99


def test_mix_down_pads_and_clips() -> None:
    loud = np.full(4, 30000, dtype=np.int16)
    short = np.full(2, 10000, dtype=np.int16)
    assert mix_down([loud, short]).tolist() == [32767, 32767, 30000, 30000]
    assert mix_down([np.full(3, -30000, dtype=np.int16)] * 2).tolist() == [-32768] * 3
    assert mix_down([]).size == 0


def test_stack_stereo_pads_shorter_side() -> None:
    out = stack_stereo(np.ones(3, dtype=np.int16), np.full(5, 2, dtype=np.int16))
    assert out.tolist() == [[1, 1, 1, 0, 0], [2, 2, 2, 2, 2]]
    assert interleave(out).tolist() == [1, 2, 1, 2, 1, 2, 0, 2, 0, 2]


def test_correlate_finds_small_lags_only() -> None:
    speech = synth_speech_like(2.0, 8000, 2)
    assert correlate(speech, speech) == pytest.approx(1.0)
    delayed = np.concatenate([np.zeros(80, dtype=np.int16), speech])  # 10 ms
    assert correlate(speech, delayed) > 0.95
    assert correlate(speech, delayed, max_lag_s=0.0) < 0.5
    assert abs(correlate(speech, synth_speech_like(2.0, 8000, 3))) < 0.2
    assert correlate(speech, np.zeros_like(speech)) == 0.0


def test_speech_like_is_deterministic_and_speechy() -> None:
    a = synth_speech_like(5.0, 8000, 42)
    assert np.array_equal(a, synth_speech_like(5.0, 8000, 42))
    assert not np.array_equal(a, synth_speech_like(5.0, 8000, 43))
    frames = a[: a.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    energy = np.sqrt((frames**2).mean(axis=1))
    # Syllables and pauses: a good share of quiet frames and of loud ones.
    assert 0.1 < (energy < energy.max() * 0.01).mean() < 0.6
    assert (energy > energy.max() * 0.1).mean() > 0.3


def test_tone_amplitude() -> None:
    assert np.abs(tone(1000, 0.1, 8000, amplitude=0.5)).max() == pytest.approx(16383, abs=2)


def test_wav_header_is_exact() -> None:
    pcm = np.array([[1, -2, 3], [4, 5, -6]], dtype=np.int16)
    wav = to_wav(pcm, 8000)
    assert wav[:4] == b"RIFF" and wav[8:16] == b"WAVEfmt "
    riff_size, fmt_size, kind, channels, rate, byte_rate, align, bits = struct.unpack_from(
        "<I4x4xIHHIIHH", wav, 4
    )
    assert (riff_size, fmt_size, kind, channels, rate, byte_rate, align, bits) == (
        48,
        16,
        1,
        2,
        8000,
        32000,
        4,
        16,
    )
    assert wav[36:40] == b"data" and struct.unpack_from("<I", wav, 40)[0] == 12
    assert np.frombuffer(wav[44:], "<i2").tolist() == [1, 4, -2, 5, 3, -6]


def test_wav_rejects_non_int16() -> None:
    with pytest.raises(ValueError, match="int16"):
        to_wav(np.zeros(4, dtype=np.float32), 8000)
