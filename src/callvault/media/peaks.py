"""Waveform peaks of an archive: the loudest sample of each channel per time bucket.

The recording page draws its two lanes (agent, customer) from these bytes,
never from the audio itself: a one-hour call at 50 ms buckets is 72,000
bytes per channel, which the browser scales to the width of the lane. Each
peak is on a 60 dB logarithmic scale (0: -60 dBFS or quieter, 255: full
scale) because speech on a linear scale is a thin line under its loudest
syllable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Final

import av
import numpy as np
import numpy.typing as npt

from callvault.media.wav_render import SeekableFile

DEFAULT_BUCKET_SECONDS: Final = 0.05
FLOOR_DB: Final = -60.0


@dataclass(frozen=True)
class Peaks:
    channels: int
    bucket_seconds: float
    duration_seconds: float
    data: bytes  # channels x buckets, channel after channel

    @property
    def buckets(self) -> int:
        return len(self.data) // self.channels if self.channels else 0

    def lanes(self) -> list[bytes]:
        n = self.buckets
        return [self.data[i * n : (i + 1) * n] for i in range(self.channels)]


def to_levels(peak: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Peak amplitudes (0..1 of full scale) to bytes on the 60 dB scale."""
    db = 20.0 * np.log10(np.maximum(peak, 1e-6))
    scaled = np.clip((db - FLOOR_DB) / -FLOOR_DB, 0.0, 1.0) * 255.0
    return np.rint(scaled).astype(np.uint8)


def _as_float(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    samples = frame.to_ndarray()
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # interleaved: (1, n * channels)
        samples = samples.reshape(-1, channels).T
    return np.abs(samples.astype(np.float32, copy=False))


def archive_peaks(source: BinaryIO | SeekableFile, bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> Peaks:
    """Decode an archive (any container FFmpeg reads) once and return its peaks;
    ValueError when it cannot be decoded. The source is read as the decoder goes (a
    file over the decrypting reader holds one window of it), and what is kept is one
    level per bucket: memory grows with the call's length by 8 bytes per 50 ms."""
    try:
        return _decode_peaks(source, bucket_seconds)
    except (av.FFmpegError, IndexError) as exc:  # IndexError: no audio stream
        raise ValueError(f"cannot decode the archive: {exc}") from None


def _decode_peaks(source: BinaryIO | SeekableFile, bucket_seconds: float) -> Peaks:
    # Each bucket becomes its byte as soon as it is whole: one bytearray per channel grows by
    # a byte per bucket (a list of per-frame arrays cost ~100 bytes of overhead per frame).
    with av.open(source, mode="r") as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or 48000
        per_bucket = max(1, round(rate * bucket_seconds))
        pending: npt.NDArray[np.float32] | None = None
        lanes: list[bytearray] = []
        total = 0
        for frame in container.decode(stream):
            samples = _as_float(frame)
            total += samples.shape[1]
            pending = samples if pending is None else np.concatenate((pending, samples), axis=1)
            whole = pending.shape[1] // per_bucket * per_bucket
            if whole:
                channels = pending.shape[0]
                _append(lanes, pending[:, :whole].reshape(channels, -1, per_bucket).max(axis=2))
                pending = pending[:, whole:]
        if pending is not None and pending.shape[1]:
            _append(lanes, pending.max(axis=1, keepdims=True))
    if not lanes:
        return Peaks(1, bucket_seconds, 0.0, b"")
    return Peaks(
        channels=len(lanes),
        bucket_seconds=per_bucket / rate,
        duration_seconds=total / rate,
        data=b"".join(lanes),
    )


def _append(lanes: list[bytearray], peak: npt.NDArray[np.float32]) -> None:
    """Buckets' peaks (channels x buckets) onto each channel's lane, as bytes."""
    levels = to_levels(peak)
    if not lanes:
        lanes.extend(bytearray() for _ in range(levels.shape[0]))
    for lane, row in zip(lanes, levels, strict=True):
        lane += row.tobytes()


class PeaksFollower:
    """Peaks of PCM as it is produced (``(channels, n)`` int16 blocks), the same buckets and
    scale as :func:`archive_peaks` of the encoded archive: the renderer takes them from the
    audio on its way to the encoder, so a sealed call's waveform never costs a decode."""

    def __init__(self, rate: int, channels: int, bucket_seconds: float = DEFAULT_BUCKET_SECONDS) -> None:
        self._rate = rate
        self._per_bucket = max(1, round(rate * bucket_seconds))
        self._channels = channels
        self._pending = np.zeros((channels, 0), dtype=np.int16)
        self._lanes: list[bytearray] = [bytearray() for _ in range(channels)]
        self._total = 0

    def feed(self, block: npt.NDArray[np.int16]) -> None:
        self._total += block.shape[1]
        pending = np.concatenate((self._pending, block), axis=1) if self._pending.shape[1] else block
        whole = pending.shape[1] // self._per_bucket * self._per_bucket
        if whole:
            # max of |x| as max(max, -min) in int32: no float copy of the block.
            shaped = pending[:, :whole].reshape(self._channels, -1, self._per_bucket)
            loud = np.maximum(shaped.max(axis=2).astype(np.int32), -shaped.min(axis=2).astype(np.int32))
            self._add(loud)
        self._pending = pending[:, whole:].copy()

    def _add(self, loud: npt.NDArray[np.int32]) -> None:
        levels = to_levels(loud.astype(np.float32) / 32768.0)
        for lane, row in zip(self._lanes, levels, strict=True):
            lane += row.tobytes()

    def peaks(self) -> Peaks:
        """The peaks of everything fed (a last partial bucket included)."""
        lanes = [bytearray(lane) for lane in self._lanes]
        if self._pending.shape[1]:
            tail = np.abs(self._pending.astype(np.int32)).max(axis=1, keepdims=True)
            for lane, row in zip(lanes, to_levels(tail.astype(np.float32) / 32768.0), strict=True):
                lane += row.tobytes()
        if self._total == 0:
            return Peaks(1, self._per_bucket / self._rate, 0.0, b"")
        return Peaks(
            channels=self._channels,
            bucket_seconds=self._per_bucket / self._rate,
            duration_seconds=self._total / self._rate,
            data=b"".join(lanes),
        )


def downsample(lane: bytes, points: int) -> list[int]:
    """At most ``points`` values: the maximum of each group of neighbouring buckets."""
    values = np.frombuffer(lane, dtype=np.uint8)
    if points <= 0 or len(values) <= points:
        return [int(v) for v in values]
    edges = np.linspace(0, len(values), points + 1).astype(np.int64)
    return [int(v) for v in np.maximum.reduceat(values, edges[:-1])]
