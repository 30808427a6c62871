"""Silencing spans of one channel in a WAV rendition as it streams (redacted audio).

A redacted rendition is the ordinary WAV with the samples of some spans of one
channel set to zero: the words that carried a card number, say, are gone while
the other party and the rest of the call are untouched. It works on any byte
range of the WAV (a player's Range request), so redacting costs nothing more
than the decoding playback already does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from callvault.media.wav import WAV_HEADER_SIZE


@dataclass(frozen=True)
class SilencedSpan:
    channel: int  # 0 left (agent), 1 right (customer)
    start: float  # seconds from the start of the recording
    end: float


def sample_ranges(
    spans: Sequence[SilencedSpan], rate: int, samples: int, pad_s: float
) -> list[tuple[int, int, int]]:
    """``(channel, first sample, end sample)`` of each span widened by ``pad_s`` on both sides."""
    ranges = []
    for span in spans:
        first = max(0, int((span.start - pad_s) * rate))
        last = min(samples, int(np.ceil((span.end + pad_s) * rate)))
        if last > first:
            ranges.append((span.channel, first, last))
    return ranges


def silence_chunk(chunk: bytes, offset: int, channels: int, ranges: Sequence[tuple[int, int, int]]) -> bytes:
    """``chunk`` (bytes ``offset``.. of the WAV) with the samples of ``ranges`` zeroed."""
    frame = channels * 2
    out: bytearray | None = None
    chunk_end = offset + len(chunk)
    for channel, first, last in ranges:
        if channel >= channels:
            continue
        lo = max(offset, WAV_HEADER_SIZE + first * frame)
        hi = min(chunk_end, WAV_HEADER_SIZE + last * frame)
        if hi <= lo:
            continue
        if out is None:
            out = bytearray(chunk)
        positions = np.arange(lo, hi)
        mine = positions[((positions - WAV_HEADER_SIZE) % frame) // 2 == channel] - offset
        view = np.frombuffer(out, dtype=np.uint8)
        view[mine] = 0
    return chunk if out is None else bytes(out)
