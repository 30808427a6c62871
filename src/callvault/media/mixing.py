"""Sample-level helpers: resampling, mixing, stereo stacking, similarity.

All functions take and return int16 numpy arrays (mono ``(n,)`` or
``(channels, n)``), the recorder's working format.
"""

from __future__ import annotations

from collections.abc import Sequence

import av
import numpy as np
import numpy.typing as npt

from callvault.media.signals import synth_speech_like, tone

__all__ = [
    "correlate",
    "interleave",
    "mix_down",
    "resample",
    "stack_stereo",
    "synth_speech_like",
    "tone",
]

Pcm = npt.NDArray[np.int16]


def resample(pcm: Pcm, from_rate: int, to_rate: int) -> Pcm:
    """Convert the sample rate of ``(n,)`` or ``(channels, n)`` int16 audio.

    Uses FFmpeg's swresample (windowed sinc, C speed). The result has exactly
    ``round(n * to_rate / from_rate)`` samples per channel, the delay of the
    filter removed, so resampled audio stays time-aligned with its source.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"invalid sample rates {from_rate} -> {to_rate}")
    samples = _as_int16(pcm)
    if from_rate == to_rate:
        return samples.copy()
    if samples.ndim == 1:
        return _resample_mono(samples, from_rate, to_rate)
    return np.stack([_resample_mono(channel, from_rate, to_rate) for channel in samples])


def _resample_mono(samples: Pcm, from_rate: int, to_rate: int) -> Pcm:
    expected = round(samples.size * to_rate / from_rate)
    if samples.size == 0:
        return np.zeros(0, dtype=np.int16)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = from_rate
    frame.pts = 0
    parts = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    if out.size >= expected:
        return out[:expected].astype(np.int16, copy=False)
    return np.concatenate([out, np.zeros(expected - out.size, dtype=np.int16)])


def mix_down(tracks: Sequence[Pcm]) -> Pcm:
    """Sum mono tracks into one, padding short ones with silence and clipping to int16."""
    if not tracks:
        return np.zeros(0, dtype=np.int16)
    arrays = [_as_mono(track) for track in tracks]
    total = np.zeros(max(a.size for a in arrays), dtype=np.int32)
    for array in arrays:
        total[: array.size] += array
    return np.clip(total, -32768, 32767).astype(np.int16)


def stack_stereo(left: Pcm, right: Pcm) -> Pcm:
    """Two mono tracks as ``(2, n)``, the shorter padded with trailing silence."""
    a, b = _as_mono(left), _as_mono(right)
    out = np.zeros((2, max(a.size, b.size)), dtype=np.int16)
    out[0, : a.size] = a
    out[1, : b.size] = b
    return out


def interleave(pcm: Pcm) -> Pcm:
    """``(channels, n)`` planar samples as one interleaved ``(n * channels,)`` array."""
    samples = _as_int16(pcm)
    if samples.ndim == 1:
        return samples.copy()
    return np.ascontiguousarray(samples.T).reshape(-1)


def correlate(a: Pcm, b: Pcm, sample_rate: int = 8000, max_lag_s: float = 0.02) -> float:
    """Peak normalised cross-correlation of two mono signals within ``±max_lag_s``.

    1.0 means identical up to gain and a small shift; values near 0 mean
    unrelated. Codecs delay and reshape audio slightly, so a small lag is
    searched rather than comparing sample by sample.
    """
    x = _as_mono(a).astype(np.float64)
    y = _as_mono(b).astype(np.float64)
    n = min(x.size, y.size)
    if n == 0:
        return 0.0
    x = x[:n] - x[:n].mean()
    y = y[:n] - y[:n].mean()
    norm = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    if norm == 0.0:
        return 0.0
    max_lag = min(n - 1, int(round(max_lag_s * sample_rate)))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size))
    full = np.fft.irfft(spectrum, size)
    # full[k] is sum x[i] * y[i + k]; negative lags wrap to the end.
    window = np.concatenate([full[: max_lag + 1], full[size - max_lag :] if max_lag else full[:0]])
    return float(window.max() / norm)


def _as_int16(pcm: Pcm) -> Pcm:
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        raise ValueError(f"samples must be int16, got {samples.dtype}")
    if samples.ndim not in (1, 2):
        raise ValueError(f"samples must have shape (n,) or (channels, n), got {samples.shape}")
    return samples


def _as_mono(pcm: Pcm) -> Pcm:
    samples = _as_int16(pcm)
    if samples.ndim == 2:
        if samples.shape[0] != 1:
            raise ValueError(f"expected mono samples, got shape {samples.shape}")
        mono: Pcm = samples[0]
        return mono
    return samples
