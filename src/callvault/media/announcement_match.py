"""Find a recorded announcement in the opening of a call: fingerprints and the match score.

A fingerprint is the band-energy envelope (:mod:`.band_envelope`) of the
announcement from its first to its last sound: silence an uploaded file
starts or ends with is cut, so the call need not be silent there.

The match is a normalised cross-correlation of envelopes, computed for
every frame offset at once with FFTs. Before comparing, each band's mean
over the compared stretch is removed from both sides: a level change (a
constant in dB) and a codec's frequency response (a constant per band) drop
out, and what remains is how the energy in each band rises and falls over
time, which is what tells one sentence from another. The score is 1.0 for
the same audio and near 0 for unrelated audio; speech that happens to share
a rhythm with the announcement for a moment stays low because the whole
announcement, seconds of it, has to line up.

Both sides are range-compressed the same way before the comparison: in
each band an energy more than 35 dB under the loudest of the surrounding
second is raised to that floor. The depth of a pause, which digital silence
makes -100 dB and a telephone line makes its noise level, then does not
decide the score, and the floor follows the audio's own level, so a quiet
announcement between loud talk keeps its shape.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from callvault.media.band_envelope import BANDS, FRAME_RATE, band_envelope

__all__ = [
    "MAX_ANNOUNCEMENT_SECONDS",
    "MIN_ANNOUNCEMENT_SECONDS",
    "Fingerprint",
    "Match",
    "best_match",
    "fingerprint",
]

MIN_ANNOUNCEMENT_SECONDS: Final = 1.0
MAX_ANNOUNCEMENT_SECONDS: Final = 120.0
# A frame is sound when its loudest band is within this of the file's loudest frame.
_SOUND_RANGE_DB: Final = 40.0
_RANGE_DB: Final = 35.0
_RANGE_BLOCK: Final = 25  # frames: the floor follows the loudest of the block and its neighbours
_RANGE_REACH: Final = 2  # blocks on each side
_CALL_FLOOR_DB: Final = -80.0
# Summed squared deviation per frame under which a stretch of call counts as flat.
_FLAT_DB2: Final = 0.01
_MAGIC: Final = b"CVFP"
_VERSION: Final = 1
_HEADER: Final = struct.Struct(">4sBBHIf")  # magic, version, bands, frame rate, frames, lead seconds


@dataclass(frozen=True)
class Fingerprint:
    """An announcement's envelope, ``(frames, bands)`` dB, from its first to its last sound."""

    envelope: npt.NDArray[np.float16]
    lead_seconds: float  # silence cut from the start of the file

    @property
    def duration_seconds(self) -> float:
        return int(self.envelope.shape[0]) / FRAME_RATE

    def to_bytes(self) -> bytes:
        frames = self.envelope.shape[0]
        header = _HEADER.pack(_MAGIC, _VERSION, BANDS, FRAME_RATE, frames, self.lead_seconds)
        return header + self.envelope.astype(">f2").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Fingerprint:
        if len(data) < _HEADER.size:
            raise ValueError("fingerprint is shorter than its header")
        magic, version, bands, rate, frames, lead = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _VERSION:
            raise ValueError(f"not a version {_VERSION} announcement fingerprint")
        if bands != BANDS or rate != FRAME_RATE:
            raise ValueError(
                f"fingerprint has {bands} bands at {rate} frames/s, expected {BANDS} at {FRAME_RATE}"
            )
        body = data[_HEADER.size :]
        if len(body) != frames * bands * 2:
            raise ValueError(f"fingerprint body is {len(body)} bytes, its header says {frames} frames")
        envelope = np.frombuffer(body, dtype=">f2").astype(np.float16).reshape(frames, bands)
        return cls(envelope, float(lead))


@dataclass(frozen=True)
class Match:
    score: float  # normalised cross-correlation, 1.0 = the same audio
    offset_seconds: float  # where the announcement's first sound starts in the call


def fingerprint(pcm: npt.NDArray[np.int16], rate: int) -> Fingerprint:
    """The fingerprint of a mono announcement; ``ValueError`` if it is silent, too short or too long."""
    envelope = band_envelope(pcm, rate)
    if envelope.shape[0] == 0:
        raise ValueError("the announcement is shorter than one 32 ms frame")
    loudest = envelope.max(axis=1)
    if float(loudest.max()) < _CALL_FLOOR_DB + _SOUND_RANGE_DB:
        raise ValueError("the announcement is silent (no sound between 300 and 3400 Hz)")
    sound = np.flatnonzero(loudest >= loudest.max() - _SOUND_RANGE_DB)
    first, last = int(sound[0]), int(sound[-1])
    trimmed = envelope[first : last + 1]
    seconds = trimmed.shape[0] / FRAME_RATE
    if seconds < MIN_ANNOUNCEMENT_SECONDS:
        raise ValueError(
            f"the announcement has {seconds:.2f} s of sound; at least {MIN_ANNOUNCEMENT_SECONDS:.0f} s is "
            "needed to recognise it reliably"
        )
    if seconds > MAX_ANNOUNCEMENT_SECONDS:
        raise ValueError(
            f"the announcement is {seconds:.0f} s long; at most {MAX_ANNOUNCEMENT_SECONDS:.0f} s"
        )
    return Fingerprint(trimmed.astype(np.float16), first / FRAME_RATE)


def best_match(opening: npt.NDArray[np.floating], template: Fingerprint) -> Match | None:
    """The best-scoring place of ``template`` in ``opening`` (``(frames, bands)``); None if it cannot fit."""
    call = _compress(np.asarray(opening, dtype=np.float64))
    reference = _compress(template.envelope.astype(np.float64))
    length = reference.shape[0]
    positions = call.shape[0] - length + 1
    if positions <= 0 or call.shape[1] != reference.shape[1]:
        return None
    reference -= reference.mean(axis=0)
    reference_energy = float(np.sum(reference**2))
    if reference_energy == 0.0:
        return None
    products = _sliding_products(call, reference)[:positions]
    variance = _sliding_variance(call, length)[:positions]
    # A flat stretch (digital silence at the floor) has no shape to compare: score 0.
    flat = variance < _FLAT_DB2 * length
    scores = products / np.sqrt(np.where(flat, 1.0, variance) * reference_energy)
    scores[flat] = 0.0
    best = int(np.argmax(scores))
    return Match(float(scores[best]), best / FRAME_RATE)


def _compress(envelope: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Raise every energy to at least ``_RANGE_DB`` under the loudest nearby (same band), and the floor."""
    frames, bands = envelope.shape
    blocks = -(-frames // _RANGE_BLOCK)
    padded = np.full((blocks * _RANGE_BLOCK, bands), -np.inf)
    padded[:frames] = envelope
    loudest = padded.reshape(blocks, _RANGE_BLOCK, bands).max(axis=1)
    reach = loudest.copy()
    for shift in range(1, _RANGE_REACH + 1):
        reach[shift:] = np.maximum(reach[shift:], loudest[:-shift])
        reach[:-shift] = np.maximum(reach[:-shift], loudest[shift:])
    floor = np.repeat(reach, _RANGE_BLOCK, axis=0)[:frames] - _RANGE_DB
    return np.maximum(np.maximum(envelope, floor), _CALL_FLOOR_DB)


def _sliding_products(
    call: npt.NDArray[np.float64], reference: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``sum(call[l : l + n] * reference)`` for every offset ``l``, summed over bands (FFT correlation)."""
    size = 1 << int(np.ceil(np.log2(call.shape[0] + reference.shape[0])))
    spectrum = np.fft.rfft(call, size, axis=0) * np.conj(np.fft.rfft(reference, size, axis=0))
    correlation: npt.NDArray[np.float64] = np.fft.irfft(spectrum.sum(axis=1), size)
    return correlation


def _sliding_variance(call: npt.NDArray[np.float64], length: int) -> npt.NDArray[np.float64]:
    """``sum over bands of sum((x - mean(x))**2)`` over every window of ``length`` frames."""
    zero = np.zeros((1, call.shape[1]))
    first = np.concatenate([zero, np.cumsum(call, axis=0)])
    second = np.concatenate([zero, np.cumsum(call**2, axis=0)])
    window_sum = first[length:] - first[:-length]
    window_squares = second[length:] - second[:-length]
    variance: npt.NDArray[np.float64] = (window_squares - window_sum**2 / length).sum(axis=1)
    return variance
