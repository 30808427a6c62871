"""Test audio made independently of callvault's own media code (stdlib ``wave`` + numpy)."""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt
import scipy.signal


def voice(seconds: float, rate: int, f0: float, seed: int) -> npt.NDArray[np.int16]:
    """A speech-like signal: a pitched harmonic source with a syllable-rate envelope,
    band-limited like the channel it travels on (300-3400 Hz telephone band at 8 kHz,
    50-7000 Hz wideband above), as the audio an SBC forks always is."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + seed))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    source = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * (3.0 + seed % 3) * t + rng.uniform(0, 6))
    signal = source * envelope**2 + 0.02 * rng.standard_normal(t.size)
    low, high = (300.0, 3400.0) if rate <= 8000 else (50.0, min(7000.0, rate / 2 - 500))
    signal = scipy.signal.sosfilt(
        scipy.signal.butter(4, [low, high], btype="band", fs=rate, output="sos"), signal
    )
    signal = signal / np.max(np.abs(signal)) * 0.6
    return (signal * 32767).astype(np.int16)


def stereo_wav(left: npt.NDArray[np.int16], right: npt.NDArray[np.int16], rate: int) -> bytes:
    frames = np.stack([left, right], axis=1).astype("<i2").tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


def mono_wav(samples: npt.NDArray[np.int16], rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple[npt.NDArray[np.int16], int]:
    """(channels, n) int16 and rate."""
    with wave.open(io.BytesIO(data), "rb") as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return pcm.reshape(-1, channels).T.copy(), rate


def correlation(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16], max_lag: int = 160) -> float:
    """Peak normalised cross-correlation within ±max_lag samples."""
    n = min(a.size, b.size)
    x = a[:n].astype(np.float64)
    y = b[:n].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    best = 0.0
    for lag in range(-max_lag, max_lag + 1, 1):
        if lag >= 0:
            xa, ya = x[lag:], y[: n - lag]
        else:
            xa, ya = x[: n + lag], y[-lag:]
        denom = np.sqrt(np.dot(xa, xa) * np.dot(ya, ya))
        if denom:
            best = max(best, float(np.dot(xa, ya) / denom))
    return best


def aligned(
    recorded: npt.NDArray[np.float64],
    reference: npt.NDArray[np.float64],
    earliest: int,
    latest: int,
    rate: int = 8000,
) -> npt.NDArray[np.float64]:
    """``recorded`` from where ``reference`` starts in it, searched from sample ``earliest`` to ``latest``.

    Where the audio starts in a recording depends on delivery delays between the SRC and the
    recorder, which a loaded machine stretches to hundreds of milliseconds: searching for it
    keeps the comparison about the audio, not about the machine's load.
    """
    from scipy.signal import correlate as cross

    head = reference[: min(reference.size, rate)]  # its first second
    window = recorded[earliest : latest + head.size]
    if window.size < head.size:
        return recorded[earliest:]
    scores = cross(window - window.mean(), head - head.mean(), mode="valid", method="fft")
    return recorded[earliest + int(np.argmax(scores)) :]
