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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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


# Journal events the capture writes about a stream (``data["stream"]`` is its index); they
# become the stream's stats, not call events.
SOURCE_EVENT = "rtp_source"  # data: {"stream", "address"}: the source the stream latched to
DROPPED_EVENT = "rtp_dropped"  # data: {"stream", "source"}: packets from other sources so far
# data: {"stream", "packets"}: packets silenced (a PCI pause) between stored ones, so far
WITHHELD_EVENT = "rtp_withheld"
GUARD_EVENTS = frozenset({SOURCE_EVENT, DROPPED_EVENT, WITHHELD_EVENT})


@dataclass(slots=True)
class StreamGuard:
    """What the recorder refused on one stream, next to its completeness figures.

    * ``dropped_source``: packets from an address other than the one the
      stream latched to (its first source); injected or stray, never audio,
      and not loss either: the call's own packets are counted by the sequence
      numbers.
    * ``srtp_auth_failed``: SRTP packets that failed authentication (a wrong
      key, tampering, garbage). Each counts as a lost packet: a stream whose
      key is wrong is silent, and must not pass for complete.
    * ``srtp_replayed``: SRTP replays (a network duplicate of a packet already
      taken); like duplicates, not loss.
    * ``withheld``: packets the recorder dropped on purpose between two stored
      ones (a pause: the audio must never be stored). Their sequence numbers
      are missing, but they are neither expected nor lost; the count itself is
      not published (with the pause's length it would tell how many keypad
      events flowed).
    """

    source: str | None = None
    dropped_source: int = 0
    srtp_auth_failed: int = 0
    srtp_replayed: int = 0
    withheld: int = 0

    def apply_event(self, kind: str, data: dict[str, object]) -> None:
        if kind == SOURCE_EVENT:
            self.source = str(data.get("address", "")) or None
        elif kind == DROPPED_EVENT:
            count = data.get("source", 0)
            # A running total per writer, so the largest one seen is the count.
            if isinstance(count, int):
                self.dropped_source = max(self.dropped_source, count)
        elif kind == WITHHELD_EVENT:
            count = data.get("packets", 0)
            if isinstance(count, int):
                self.withheld = max(self.withheld, count)

    def add_to(self, stats: dict[str, object]) -> dict[str, object]:
        """``stats`` with the guard's figures, SRTP authentication failures counted as loss."""
        failed = self.srtp_auth_failed
        received = stats.get("received", 0)
        for key in ("expected", "lost"):
            value = stats.get(key, 0)
            value = (value if isinstance(value, int) else 0) - self.withheld
            floor = received if key == "expected" and isinstance(received, int) else 0
            stats[key] = max(value, floor) + failed
        stats["source"] = self.source
        stats["dropped_source"] = self.dropped_source
        stats["srtp_auth_failed"] = failed
        stats["srtp_replayed"] = self.srtp_replayed
        return stats


def guards_from_events(
    events: Sequence[dict[str, Any]], guards: dict[int, StreamGuard] | None = None
) -> tuple[dict[int, StreamGuard], list[dict[str, Any]]]:
    """Split journal events into per-stream guards (by stream index; ``guards`` is added to)
    and the call's own events."""
    guards = {} if guards is None else guards
    rest: list[dict[str, Any]] = []
    for event in events:
        kind = str(event.get("kind", ""))
        if kind not in GUARD_EVENTS:
            rest.append(event)
            continue
        data = event.get("data")
        if not isinstance(data, dict):
            continue
        index = data.get("stream")
        if isinstance(index, int):
            guards.setdefault(index, StreamGuard()).apply_event(kind, data)
    return guards, rest
