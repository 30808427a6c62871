"""Silence gate for the archive: a party's line noise between their words becomes digital silence.

In a conversation one side is quiet most of the time, yet Opus spends nearly
its full bitrate (and CPU) on a quiet channel's line noise. Zeroing 20 ms
frames whose level stays below the threshold — with a 60 ms look-ahead and a
200 ms hang-over so no word onset or tail is clipped — cuts a turn-taking
call's archive by about a quarter and keeps the encoder above 500x real time
(``bench/storage.py``). Speech is never touched: only frames quieter than
``threshold_dbfs`` (default -50 dBFS, far under speech at -30 to -10 dBFS)
and not within the hang-over of speech are zeroed.

Streaming: :meth:`SilenceGate.process` returns audio delayed by the look-ahead;
:meth:`SilenceGate.flush` returns the rest, so the total length is unchanged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FRAME_SECONDS = 0.020
LOOKAHEAD_FRAMES = 3
HANGOVER_FRAMES = 10


class SilenceGate:
    def __init__(self, channels: int, sample_rate: int, threshold_dbfs: float) -> None:
        if threshold_dbfs >= 0:
            raise ValueError(f"silence gate threshold must be below 0 dBFS, got {threshold_dbfs}")
        self.channels = channels
        self.frame = max(1, round(sample_rate * FRAME_SECONDS))
        # Mean square of int16 samples at the threshold level.
        self._threshold = (10 ** (threshold_dbfs / 20) * 32768.0) ** 2
        self._pending = np.zeros((channels, 0), dtype=np.int16)  # < one frame, not yet judged
        self._held = np.zeros((channels, 0, self.frame), dtype=np.int16)  # judged, awaiting look-ahead
        self._held_active = np.zeros((channels, 0), dtype=bool)
        self._held_start = 0  # global index of the first held frame
        self._last_active = np.full(channels, -(10**9), dtype=np.int64)

    def process(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        samples = np.concatenate([self._pending, pcm], axis=1) if self._pending.size else pcm
        whole = samples.shape[1] // self.frame
        self._pending = samples[:, whole * self.frame :].copy()
        if whole == 0:
            return np.zeros((self.channels, 0), dtype=np.int16)
        frames = samples[:, : whole * self.frame].reshape(self.channels, whole, self.frame)
        power = np.mean(frames.astype(np.float32) ** 2, axis=2)
        self._held = np.concatenate([self._held, frames], axis=1)
        self._held_active = np.concatenate([self._held_active, power > self._threshold], axis=1)
        decidable = self._held.shape[1] - LOOKAHEAD_FRAMES
        return self._emit(decidable) if decidable > 0 else np.zeros((self.channels, 0), dtype=np.int16)

    def flush(self) -> npt.NDArray[np.int16]:
        """Everything still held; the partial last frame passes ungated."""
        gated = self._emit(self._held.shape[1])
        tail, self._pending = self._pending, np.zeros((self.channels, 0), dtype=np.int16)
        return np.concatenate([gated, tail], axis=1)

    def _emit(self, count: int) -> npt.NDArray[np.int16]:
        active = self._held_active
        total = active.shape[1]
        index = self._held_start + np.arange(total)
        # Distance back to the latest active frame (carried over from earlier calls) ...
        last = np.maximum.accumulate(np.where(active, index, -(10**9)), axis=1)
        last = np.maximum(last, self._last_active[:, None])
        # ... and forward to the next active frame among those held.
        upcoming = np.where(active, index, 10**12)[:, ::-1]
        following = np.minimum.accumulate(upcoming, axis=1)[:, ::-1]
        keep = ((index - last) <= HANGOVER_FRAMES) | ((following - index) <= LOOKAHEAD_FRAMES)
        out = np.where(keep[:, :count, None], self._held[:, :count], 0).astype(np.int16)
        self._last_active = last[:, count - 1] if count else self._last_active
        self._held = self._held[:, count:]
        self._held_active = self._held_active[:, count:]
        self._held_start += count
        return out.reshape(self.channels, count * self.frame)
