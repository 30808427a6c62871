"""Anchoring an SSRC's audio to wall time: epochs, re-anchors and SSRC switches.

The rules (2-4 of :mod:`callvault.rtp.timeline`): an SSRC's audio is placed by its
sender's clock, and that clock is tied to wall time by the least-delayed arrivals.
``delay`` below is ``arrival - rtp_time`` of each media packet in sequence order
(seconds); its minimum over the first packets is the anchor, and its minimum over
blocks of 50 packets watches for drift and discontinuities. An *epoch* is a run of
packets sharing one anchor; each epoch's *shift* is where, in RTP ticks from the
timeline's anchor, that epoch's first RTP time lands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BLOCK = 50  # packets per block whose minimum delay is watched
SUSTAIN_BLOCKS = 5  # consecutive, agreeing blocks that confirm a deviation
JUMP_SECONDS = 0.5  # a re-anchor at least this large must not overwrite earlier audio
# How late the previous SSRC's last packets may still arrive after a new SSRC's
# first one and count as "before" it (reordering across the switch).
SWITCH_REORDER_SECONDS = 0.25

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(slots=True, frozen=True)
class Epochs:
    """Where each epoch starts (index of its first media packet) and its wall anchor (seconds)."""

    starts: list[int]
    anchors: list[float]

    def of_packets(self, count: int) -> I64:
        """The epoch of each of ``count`` media packets."""
        epoch_of = np.zeros(count, dtype=np.int64)
        for e in range(1, len(self.starts)):
            epoch_of[self.starts[e] :] = e
        return epoch_of


@dataclass(slots=True, frozen=True)
class PreviousAudio:
    """What the previous SSRC of the stream placed: its arrivals and where each packet's audio ends."""

    arrival: F64
    end: I64


def find_epochs(delay: F64, anchor_packets: int, drift_threshold: float) -> Epochs:
    """Split an SSRC's media packets (sequence order) into epochs with their wall anchors."""
    n = len(delay)
    anchor = float(delay[:anchor_packets].min())
    starts = [0]
    anchors = [anchor]
    block_min = np.minimum.reduceat(delay, np.arange(0, n, BLOCK)).tolist()
    run_start: int | None = None
    run_sign = 0
    for k, low in enumerate(block_min):
        deviation = low - anchor
        if abs(deviation) <= drift_threshold:
            run_start = None
            continue
        sign = 1 if deviation > 0 else -1
        if run_start is None or sign != run_sign:
            run_start, run_sign = k, sign
        if k - run_start + 1 < SUSTAIN_BLOCKS:
            continue
        window = block_min[k - SUSTAIN_BLOCKS + 1 : k + 1]
        if max(window) - min(window) > drift_threshold:
            continue  # the blocks disagree: a burst after a stall, whose delays decay
        begin = _deviation_start(delay, anchor, run_start, sign, drift_threshold)
        if begin <= starts[-1]:
            begin = starts[-1] + 1 if starts[-1] + 1 < n else starts[-1]
        anchor = float(min(window))
        if begin == starts[-1]:
            anchors[-1] = anchor
        else:
            starts.append(begin)
            anchors.append(anchor)
        run_start = None
    return Epochs(starts, anchors)


def _deviation_start(delay: F64, anchor: float, run_block: int, sign: int, drift_threshold: float) -> int:
    """First packet of a confirmed deviation that began in block ``run_block``."""
    block_start = run_block * BLOCK
    if sign > 0:
        # The whole first block is beyond; the deviation may have begun late in the block before.
        lo = max(block_start - BLOCK, 0)
        within = np.flatnonzero(delay[lo:block_start] - anchor <= drift_threshold)
        return lo + int(within[-1]) + 1 if len(within) else lo
    beyond = np.flatnonzero(delay[block_start : block_start + BLOCK] - anchor < -drift_threshold)
    return block_start + int(beyond[0]) if len(beyond) else block_start


def epoch_shifts(
    epochs: Epochs,
    anchor_wall: float,
    clock_rate: int,
    rtp_time: I64,
    arrival: F64,
    ptime: int,
    previous: PreviousAudio | None,
) -> I64:
    """Each epoch's shift in ticks from ``anchor_wall``; ``rtp_time`` (ticks from the SSRC's first
    media packet) and ``arrival`` are per media packet. A new SSRC never lands on audio the
    previous one placed before it, nor a large re-anchor on its own earlier audio (rule 4)."""
    shifts = [round((anchor - anchor_wall) * clock_rate) for anchor in epochs.anchors]
    if previous is not None:
        shifts[0] = _after_previous_ssrc(shifts[0], rtp_time, arrival, previous)
    starts, anchors = epochs.starts, epochs.anchors
    for e in range(1, len(starts)):
        if abs(anchors[e] - anchors[e - 1]) >= JUMP_SECONDS:
            end_before = shifts[e - 1] + int(rtp_time[: starts[e]].max()) + ptime
            shifts[e] = max(shifts[e], end_before - int(rtp_time[starts[e] :].min()))
    return np.array(shifts, dtype=np.int64)


def _after_previous_ssrc(shift: int, rtp_time: I64, arrival: F64, previous: PreviousAudio) -> int:
    """The first epoch's shift, pushed after the previous SSRC's audio that arrived before this one."""
    before = previous.arrival < arrival.min() + SWITCH_REORDER_SECONDS
    if not before.any():
        return shift
    previous_end = int(previous.end[before].max())
    earliest = int(rtp_time.min())
    return previous_end - earliest if shift + earliest < previous_end else shift
