"""Log band-energy envelopes of telephone audio: what the disclosure detector compares.

An envelope is a ``(frames, bands)`` array of band energies in dB, 50 frames
a second (32 ms Hann windows every 20 ms), in 16 bands spaced evenly on a log
scale between 300 and 3400 Hz. Those are the frequencies every telephone
codec keeps (G.711 and G.729 pass 300-3400 Hz; G.722 and Opus more), so an
announcement fingerprinted from a studio WAV and the same announcement heard
through any codec share them; frames are defined in seconds, not samples, so
8 kHz and 16 kHz audio give the same frames.

Energies are in dB relative to full scale: a level change shifts every
value by the same number of dB, and the sample rate shifts them by a
constant too (the window holds more samples); the matcher removes each
band's mean, so neither matters (:mod:`.announcement_match`).

:class:`EnvelopeFollower` computes the envelope of the first seconds of a
call from PCM handed over in pieces of any size, as the call-time renderer
produces it, and keeps nothing but the envelope (1.6 KB a second of channel
instead of 16-32 KB of PCM).

Why 50 frames a second: a sentence's energy rises and falls a few times a
second, which 20 ms steps follow closely; measured with ``bench/disclosure.py``,
100 frames a second separated played from absent announcements no better and
cost twice the CPU.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["BANDS", "FRAME_RATE", "EnvelopeFollower", "band_envelope"]

FRAME_RATE: Final = 50  # frames per second
WINDOW_SECONDS: Final = 0.032
BANDS: Final = 16
LOW_HZ: Final = 300.0
HIGH_HZ: Final = 3400.0
# Added to every band's mean power: digital silence becomes -100 dB, not -inf.
_POWER_FLOOR: Final = 1e-10
_RATES: Final = (8000, 16000, 24000, 32000, 48000)

Envelope = npt.NDArray[np.float32]


class _Analyser:
    """The framing and band edges for one sample rate."""

    def __init__(self, rate: int) -> None:
        if rate not in _RATES:
            raise ValueError(f"envelopes are taken at {', '.join(map(str, _RATES))} Hz, not {rate}")
        self.rate = rate
        self.hop = rate // FRAME_RATE
        self.window = round(WINDOW_SECONDS * rate)
        self.taper = np.hanning(self.window + 2)[1:-1]  # no zero end points
        freqs = np.fft.rfftfreq(self.window, 1.0 / rate)
        edges = np.searchsorted(freqs, np.geomspace(LOW_HZ, HIGH_HZ, BANDS + 1))
        if np.any(np.diff(edges) == 0):
            raise ValueError(f"a {self.window}-sample window leaves a band empty")
        # Bins lo..hi are all the bands need; each band's bins start at starts[b] (relative to lo).
        self.lo, self.hi = int(edges[0]), int(edges[-1])
        self.starts = edges[:-1] - self.lo
        widths = np.diff(edges).astype(np.float64)
        # Full-scale int16 in, mean power per bin of the windowed frame out.
        self.scale = 1.0 / (widths * 32768.0**2 * float(np.sum(self.taper**2)))

    def frames(self, samples: npt.NDArray[np.float64]) -> Envelope:
        """Envelope of ``samples`` (whole frames only; the caller keeps the rest)."""
        if samples.size < self.window:
            return np.zeros((0, BANDS), dtype=np.float32)
        framed = sliding_window_view(samples, self.window)[:: self.hop] * self.taper
        spectrum = np.fft.rfft(framed, axis=1)[:, self.lo : self.hi]
        power = spectrum.real**2 + spectrum.imag**2
        bands = np.add.reduceat(power, self.starts, axis=1) * self.scale
        return (10.0 * np.log10(bands + _POWER_FLOOR)).astype(np.float32)


def band_envelope(pcm: npt.NDArray[np.int16], rate: int) -> Envelope:
    """The envelope of mono int16 ``pcm`` at ``rate`` Hz."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"envelopes take mono int16 samples, got {samples.dtype} {samples.shape}")
    return _Analyser(rate).frames(samples.astype(np.float64))


class EnvelopeFollower:
    """The envelope of each channel's first ``seconds``, fed in pieces of any length."""

    def __init__(self, rate: int, channels: int, seconds: float) -> None:
        if channels < 1 or seconds <= 0:
            raise ValueError(f"a follower needs channels and seconds, got {channels}, {seconds}")
        self._analyser = _Analyser(rate)
        self._limit = int(seconds * FRAME_RATE)
        self._pending = np.zeros((channels, 0), dtype=np.float64)  # samples of frames not yet whole
        self._parts: list[npt.NDArray[np.float32]] = []  # (channels, frames, bands) pieces
        self._frames = 0

    @property
    def done(self) -> bool:
        """True once the first ``seconds`` are in: later audio is ignored."""
        return self._frames >= self._limit

    def feed(self, block: npt.NDArray[np.int16]) -> None:
        """Take the next ``(channels, n)`` samples of the call."""
        if self.done or block.shape[-1] == 0:
            return
        analyser = self._analyser
        # Only as many samples as the remaining frames need (a long call's first block is not copied).
        needed = (self._limit - self._frames - 1) * analyser.hop + analyser.window - self._pending.shape[1]
        samples = np.concatenate([self._pending, block[:, : max(0, needed)].astype(np.float64)], axis=1)
        piece = np.stack([analyser.frames(channel) for channel in samples])
        piece = piece[:, : self._limit - self._frames]
        used = piece.shape[1] * analyser.hop
        self._pending = samples[:, used:]
        if piece.shape[1]:
            self._parts.append(piece)
            self._frames += piece.shape[1]

    def envelopes(self) -> npt.NDArray[np.float16]:
        """``(channels, frames, bands)``, in dB; float16 keeps 0.06 dB steps at half the size."""
        channels = self._pending.shape[0]
        if not self._parts:
            return np.zeros((channels, 0, BANDS), dtype=np.float16)
        return np.concatenate(self._parts, axis=1).astype(np.float16)
