"""Where each received RTP packet belongs on the recording's wall-clock timeline.

A recorder must "keep real time": a minute of call is a minute of recording,
whatever the network did. The rules, applied per SSRC of one stream:

1. **Position inside an SSRC comes from the sender's clock.** A packet's place
   is its RTP timestamp relative to the SSRC's first packet (32-bit wrap and
   16-bit sequence wrap unwrapped). Network jitter, reordering and bursts
   therefore never move audio; a timestamp jump with contiguous sequence
   numbers (silence suppression, marker bit) stays a silent gap of the same
   length; lost packets leave a hole of their duration.
2. **Each SSRC is anchored to wall time by its arrivals.** The anchor is the
   minimum of ``arrival - rtp_time`` over its first ``anchor_packets`` audio
   packets: the least-delayed packet shows the path delay best, so jitter does
   not leak into the anchor.
3. **Drift and discontinuities re-anchor.** ``arrival - rtp_time`` is watched
   through its minimum over blocks of 50 packets (again removing jitter). When
   it stays more than ``drift_threshold`` (default 20 ms) away from the anchor
   for 5 consecutive blocks that agree with each other (so a burst after a
   network stall, whose delays decay, does not count), the SSRC is re-anchored
   from the packet where the deviation began. A sender clock 10 ppm off drifts
   36 ms per hour, so the recording is re-anchored about once every half hour
   and never more than ~20 ms off wall time; a re-anchor toward earlier time
   overwrites at most ``drift_threshold`` of audio, toward later time it
   inserts that much silence. The same rule catches a sender that resets its
   timestamps without changing SSRC.
4. **A new SSRC is anchored afresh, never over previous audio.** Its start is
   pushed after the end of the previous SSRC's audio that arrived before the
   new one's first packet (or up to 250 ms after it, to allow reordering across
   the switch); likewise after a re-anchor jump of 0.5 s or more.
5. Comfort noise (payload type 13) is placed like audio and rendered as
   silence; telephone events are kept out of the audio and reported through
   :meth:`StreamTimeline.events`; other payload types are ignored.

Offsets are integers in RTP clock ticks from :attr:`StreamTimeline.anchor_wall`,
the wall time (seconds) of the first SSRC's first audio sample (its anchor,
which is at or before that packet's arrival). Within one anchoring epoch the
offset differences are exact RTP timestamp differences.

Packets are only stored by :meth:`~StreamTimeline.add` and
:meth:`~StreamTimeline.add_batch`; the work is done in numpy when placements or
statistics are asked for, so a call-hour of packets is processed in a fraction
of a second.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callvault.rtp.anchoring import BLOCK
from callvault.rtp.layout import COMFORT_NOISE_PT, Layout, LayoutRules, Packets, PlacedEvent, lay_out
from callvault.rtp.packet import RtpPacket, parse_headers
from callvault.rtp.stats import StreamStats

__all__ = ["COMFORT_NOISE_PT", "PlacedEvent", "Placement", "PlacementArrays", "StreamTimeline"]

# Placements this close to the newest arrival may still move (a re-anchor): never drained.
_DRAIN_HOLDBACK_SECONDS = 15.0

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(slots=True, frozen=True)
class Placement:
    offset: int
    payload_type: int
    payload: bytes


@dataclass(slots=True, frozen=True)
class PlacementArrays:
    """The same as a list of :class:`Placement`, column-wise (no per-packet objects)."""

    offset: npt.NDArray[np.int64]
    payload_type: npt.NDArray[np.int16]
    payloads: list[bytes]

    def __len__(self) -> int:
        return len(self.offset)

    def to_list(self) -> list[Placement]:
        return [
            Placement(o, p, b)
            for o, p, b in zip(self.offset.tolist(), self.payload_type.tolist(), self.payloads, strict=True)
        ]


class StreamTimeline:
    """Packets of one recorded stream (one SDP m-line / label) and their wall-clock placement."""

    def __init__(
        self,
        clock_rate: int,
        audio_payload_types: Collection[int] | None = None,
        event_payload_types: Collection[int] = (),
        *,
        drift_threshold: float = 0.020,
        anchor_packets: int = 25,
    ) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive: {clock_rate}")
        if drift_threshold <= 0:
            raise ValueError(f"drift threshold must be positive: {drift_threshold}")
        if not 1 <= anchor_packets <= BLOCK:
            raise ValueError(f"anchor_packets must be between 1 and {BLOCK}: {anchor_packets}")
        self.clock_rate = clock_rate
        self._rules = LayoutRules(
            clock_rate=clock_rate,
            audio_payload_types=None
            if audio_payload_types is None
            else np.array(sorted(audio_payload_types), dtype=np.int64),
            event_payload_types=np.array(sorted(event_payload_types), dtype=np.int64),
            drift_threshold=drift_threshold,
            anchor_packets=anchor_packets,
        )
        self._arrival: list[float] = []
        self._ssrc: list[int] = []
        self._seq: list[int] = []
        self._ts: list[int] = []
        self._pt: list[int] = []
        self._chunks: list[tuple[F64, I64, I64, I64, I64]] = []
        self._payloads: list[bytes] = []
        self._malformed = 0
        self._layout: Layout | None = None
        self._drained_until: int | None = None

    # -- feeding -------------------------------------------------------------------------------

    def add(self, arrival: float, packet: RtpPacket) -> None:
        """Store one packet that arrived at ``arrival`` (wall-clock seconds)."""
        self._arrival.append(arrival)
        self._ssrc.append(packet.ssrc)
        self._seq.append(packet.sequence_number)
        self._ts.append(packet.timestamp)
        self._pt.append(packet.payload_type)
        self._payloads.append(packet.payload)
        self._layout = None

    def add_batch(self, arrivals: npt.ArrayLike, datagrams: Sequence[bytes]) -> None:
        """Store raw datagrams (plain RTP) with their arrival times; malformed ones and RTCP are skipped."""
        times = np.asarray(arrivals, dtype=np.float64)
        if times.shape != (len(datagrams),):
            raise ValueError(f"{times.shape} arrival times for {len(datagrams)} datagrams")
        self._flush_scalars()
        headers = parse_headers(datagrams)
        self._malformed += int(np.count_nonzero(~headers.valid & ~headers.rtcp))
        keep = headers.valid
        if keep.all():
            payloads = headers.payloads(datagrams)
        else:
            payloads = [p for p, ok in zip(headers.payloads(datagrams), keep.tolist(), strict=True) if ok]
        self._chunks.append(
            (
                times[keep],
                headers.ssrc[keep],
                headers.sequence_number[keep],
                headers.timestamp[keep],
                headers.payload_type[keep].astype(np.int64),
            )
        )
        self._payloads.extend(payloads)
        self._layout = None

    def _flush_scalars(self) -> None:
        if not self._arrival:
            return
        self._chunks.append(
            (
                np.array(self._arrival, dtype=np.float64),
                np.array(self._ssrc, dtype=np.int64),
                np.array(self._seq, dtype=np.int64),
                np.array(self._ts, dtype=np.int64),
                np.array(self._pt, dtype=np.int64),
            )
        )
        self._arrival, self._ssrc, self._seq, self._ts, self._pt = [], [], [], [], []

    # -- results -------------------------------------------------------------------------------

    @property
    def anchor_wall(self) -> float:
        """Wall time (seconds) of offset 0."""
        return self._compute().anchor_wall

    @property
    def stats(self) -> StreamStats:
        return self._compute().stats

    @property
    def last_arrival(self) -> float:
        return self._compute().last_arrival

    def placements(self) -> list[Placement]:
        """Audio and comfort-noise placements sorted by offset, one per offset (first arrival wins).

        After :meth:`drain_until`, only what was not drained yet.
        """
        return self._select(self._compute(), None).to_list()

    def placement_arrays(self) -> PlacementArrays:
        """:meth:`placements` as arrays: what renderers and encoders of long calls should use."""
        return self._select(self._compute(), None)

    def events(self) -> list[PlacedEvent]:
        return list(self._compute().events)

    def drain_until(self, offset: int) -> PlacementArrays:
        """Take out the placements before ``offset`` that can no longer change.

        Placements within ~15 s of the newest arrival are held back, since a
        re-anchor may still move them. Drained payloads are released from memory;
        packets arriving later for an already drained position are dropped.
        """
        layout = self._compute()
        horizon = int((layout.last_arrival - layout.anchor_wall - _DRAIN_HOLDBACK_SECONDS) * self.clock_rate)
        limit = min(offset, horizon)
        taken = self._select(layout, limit)
        if self._drained_until is None or limit > self._drained_until:
            self._drained_until = limit
            keep = layout.offset >= limit
            for i in layout.index[~keep].tolist():
                self._payloads[i] = b""
        return taken

    def _select(self, layout: Layout, limit: int | None) -> PlacementArrays:
        lo = 0 if self._drained_until is None else int(np.searchsorted(layout.offset, self._drained_until))
        hi = len(layout.offset) if limit is None else int(np.searchsorted(layout.offset, limit))
        hi = max(hi, lo)
        payloads = self._payloads
        return PlacementArrays(
            layout.offset[lo:hi],
            layout.payload_type[lo:hi],
            [payloads[i] for i in layout.index[lo:hi].tolist()],
        )

    # -- the work ------------------------------------------------------------------------------

    def _compute(self) -> Layout:
        if self._layout is not None:
            return self._layout
        self._flush_scalars()
        if not self._chunks:
            raise ValueError("stream timeline has no RTP packets")
        if len(self._chunks) > 1:
            merged = tuple(np.concatenate(parts) for parts in zip(*self._chunks, strict=True))
            self._chunks = [merged]  # type: ignore[list-item]
        arrival, ssrc, seq, ts, pt = self._chunks[0]
        packets = Packets(arrival, ssrc, seq, ts, pt, self._payloads)
        self._layout = lay_out(packets, self._rules, self._malformed)
        return self._layout
