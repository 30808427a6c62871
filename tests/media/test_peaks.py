"""Waveform peaks of an archive: per channel, per bucket, on the 60 dB scale; scaling down keeps maxima."""

from __future__ import annotations

import io

import numpy as np
import pytest

from callvault.media.archive import encode_archive
from callvault.media.peaks import PeaksFollower, archive_peaks, downsample, to_levels


def test_each_channel_has_its_own_peaks_where_its_party_speaks() -> None:
    rate = 8000
    t = np.arange(2 * rate) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 16000).astype(np.int16)
    first_half = t < 1.0
    left = np.where(first_half, tone, 0).astype(np.int16)  # agent speaks first
    right = np.where(first_half, 0, tone).astype(np.int16)  # then the customer
    peaks = archive_peaks(io.BytesIO(encode_archive(np.stack([left, right]), rate, silence_gate_dbfs=None)))
    assert peaks.channels == 2
    assert abs(peaks.duration_seconds - 2.0) < 0.1
    agent, customer = (np.frombuffer(lane, dtype=np.uint8) for lane in peaks.lanes())
    bucket = peaks.bucket_seconds
    inner_first = slice(int(0.2 / bucket), int(0.8 / bucket))
    inner_second = slice(int(1.2 / bucket), int(1.8 / bucket))
    # -6 dBFS is 0.9 of the 60 dB scale (230); silence is at the floor.
    assert agent[inner_first].min() > 200 and customer[inner_second].min() > 200
    assert agent[inner_second].max() < 60 and customer[inner_first].max() < 60


def test_levels_are_logarithmic_and_bounded() -> None:
    levels = to_levels(np.array([0.0, 0.001, 0.01, 0.1, 1.0, 2.0], dtype=np.float32))
    assert list(levels) == [0, 0, 85, 170, 255, 255]


def test_downsampling_keeps_the_loudest_bucket_of_each_group() -> None:
    lane = bytes([0, 10, 0, 0, 200, 0, 0, 0, 0, 30])
    assert downsample(lane, 5) == [10, 0, 200, 0, 30]
    assert downsample(lane, 100) == list(lane)


def test_an_archive_that_is_not_audio_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot decode"):
        archive_peaks(io.BytesIO(b"OggS" + b"\0" * 100))


def test_peaks_taken_while_encoding_match_the_decoded_archive_whatever_the_blocks() -> None:
    rate = 8000
    t = np.arange(3 * rate) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 12000 * (t < 1.5)).astype(np.int16)
    noise = (np.random.default_rng(1).normal(0, 200, t.size) * (t >= 1.5)).astype(np.int16)
    pcm = np.stack([tone, noise])
    whole, cut = PeaksFollower(rate, 2), PeaksFollower(rate, 2)
    whole.feed(pcm)
    for start in range(0, pcm.shape[1], 1237):  # blocks that never line up with a bucket
        cut.feed(pcm[:, start : start + 1237])
    assert cut.peaks() == whole.peaks()
    taken = whole.peaks()
    decoded = archive_peaks(io.BytesIO(encode_archive(pcm, rate, silence_gate_dbfs=None)))
    assert (taken.channels, taken.bucket_seconds) == (decoded.channels, decoded.bucket_seconds)
    assert abs(taken.duration_seconds - decoded.duration_seconds) < 0.03
    ours = np.frombuffer(taken.data, dtype=np.uint8).reshape(2, -1).astype(int)
    theirs = np.frombuffer(decoded.data, dtype=np.uint8).reshape(2, -1).astype(int)
    n = min(ours.shape[1], theirs.shape[1])
    difference = np.abs(ours[:, :n] - theirs[:, :n])
    # Away from the tone's edges (codec ringing): the tone within 1.5 dB (255 is 60 dB),
    # low noise, which Opus does not keep sample for sample, within 5 dB; silence stays silent.
    assert difference[0, 2:28].max() <= 6
    assert difference[1, 32:58].max() <= 21
    assert ours[0, 32:58].max() == 0 and theirs[0, 32:58].max() < 40
