"""16-bit PCM WAV writer.

The header is written by hand: it is 44 fixed bytes, and doing it here keeps
the output exact (no LIST/INFO chunks, no float conversion) for players,
tests that compare bytes, and the API's download-as-WAV path.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

__all__ = ["WAV_HEADER_SIZE", "to_wav"]

WAV_HEADER_SIZE = 44
_MAX_DATA_BYTES = 0xFFFFFFFF - 36


def to_wav(pcm: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    """Encode int16 samples, shape ``(channels, n)`` or ``(n,)`` for mono, as a WAV file."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        raise ValueError(f"WAV samples must be int16, got {samples.dtype}")
    if samples.ndim == 1:
        samples = samples[np.newaxis, :]
    if samples.ndim != 2 or samples.shape[0] < 1:
        raise ValueError(f"WAV samples must have shape (channels, n), got {samples.shape}")
    if not 1 <= sample_rate <= 0xFFFFFFFF:
        raise ValueError(f"invalid WAV sample rate {sample_rate}")
    channels = samples.shape[0]
    # WAV interleaves frames; transposing (channels, n) to (n, channels) does exactly that.
    data = np.ascontiguousarray(samples.T).astype("<i2", copy=False).tobytes()
    if len(data) > _MAX_DATA_BYTES:
        raise ValueError(f"{len(data)} bytes of samples do not fit a WAV file (4 GiB limit)")
    block_align = channels * 2
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        len(data),
    )
    return header + data
