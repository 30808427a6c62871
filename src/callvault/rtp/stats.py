"""Completeness figures of one recorded RTP stream (RFC 3550 section 6.4 and A.3, A.8).

Definitions, all per SSRC and then summed over the SSRCs of the stream:

* ``expected``: extended highest sequence number minus extended lowest plus one
  (telephone-event and comfort-noise packets share the sequence space and count).
* ``received``: distinct sequence numbers received; ``duplicated``: extra copies.
* ``lost``: ``expected - received`` (never negative, duplicates are not counted).
* ``late``: packets that arrived after a packet with a higher sequence number
  (out of order), counted once per distinct packet.
* ``jitter_ms``: RFC 3550 interarrival jitter at the end of the stream, for the
  SSRC with the most packets.
* ``gaps``: holes caused by lost packets, as ``(start_seconds, duration_seconds)``
  from the timeline's anchor, where the hole is at least ``GAP_MIN_SECONDS``.
  Silence suppression (a timestamp jump with contiguous sequence numbers) and
  the pause between two SSRCs are intentional and not gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

GAP_MIN_SECONDS = 0.1


@dataclass(slots=True)
class StreamStats:
    expected: int = 0
    received: int = 0
    duplicated: int = 0
    late: int = 0
    malformed: int = 0
    jitter_ms: float = 0.0
    ssrc_count: int = 0
    gaps: list[tuple[float, float]] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return max(self.expected - self.received, 0)

    @property
    def loss_fraction(self) -> float:
        return self.lost / self.expected if self.expected else 0.0

    @property
    def missing_seconds(self) -> float:
        return sum(duration for _, duration in self.gaps)


def interarrival_jitter(
    arrival: npt.NDArray[np.float64], rtp_ts: npt.NDArray[np.int64], clock_rate: int
) -> float:
    """Final RFC 3550 jitter estimate in milliseconds over packets in arrival order.

    The recurrence ``J += (|D| - J) / 16`` is a first-order filter, so its final
    value is a geometrically weighted sum of ``|D|`` that numpy computes at once.
    """
    if len(arrival) < 2:
        return 0.0
    transit = arrival * clock_rate - rtp_ts.astype(np.float64)
    d = np.abs(np.diff(transit))
    # Weights beyond ~2000 steps are below 1e-56 and only cost time.
    d = d[-2048:]
    weights = (15.0 / 16.0) ** np.arange(len(d) - 1, -1, -1, dtype=np.float64) / 16.0
    return float(np.dot(weights, d)) / clock_rate * 1000.0


def loss_gaps(
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    lossy: npt.NDArray[np.bool_],
    clock_rate: int,
    min_seconds: float = GAP_MIN_SECONDS,
) -> list[tuple[float, float]]:
    """Holes after packets (sequence order) that are followed by lost packets.

    ``start``/``end`` are each packet's placement in ticks from the anchor;
    ``lossy[i]`` says packets were lost between packet ``i`` and ``i + 1``.
    """
    after = np.flatnonzero(lossy)
    if len(after) == 0:
        return []
    hole_start = end[after]
    hole_len = start[after + 1] - hole_start
    keep = hole_len >= min_seconds * clock_rate
    return [
        (float(s) / clock_rate, float(n) / clock_rate)
        for s, n in zip(hole_start[keep].tolist(), hole_len[keep].tolist(), strict=True)
    ]
