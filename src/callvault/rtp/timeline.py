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

from callvault.rtp.packet import RtpPacket, parse_headers
from callvault.rtp.stats import StreamStats, interarrival_jitter, loss_gaps
from callvault.rtp.telephone_event import EventTracker, TelephoneEvent

COMFORT_NOISE_PT = 13

_BLOCK = 50
_SUSTAIN_BLOCKS = 5
_JUMP_SECONDS = 0.5
# How late the previous SSRC's last packets may still arrive after a new SSRC's
# first one and count as "before" it (reordering across the switch).
_SWITCH_REORDER_SECONDS = 0.25
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


@dataclass(slots=True, frozen=True)
class PlacedEvent:
    offset: int
    ssrc: int
    event: TelephoneEvent


@dataclass(slots=True)
class _Layout:
    anchor_wall: float
    offset: I64
    payload_type: npt.NDArray[np.int16]
    index: I64
    events: list[PlacedEvent]
    stats: StreamStats
    last_arrival: float


def _unwrap(values: I64, bits: int) -> I64:
    """Extend wrapping counters by assuming consecutive values differ by less than half the range."""
    if len(values) == 0:
        return values.astype(np.int64)
    span = 1 << bits
    half = span >> 1
    steps = ((np.diff(values) + half) & (span - 1)) - half
    out = np.empty(len(values), dtype=np.int64)
    out[0] = values[0]
    np.cumsum(steps, out=out[1:])
    out[1:] += values[0]
    return out


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
        if not 1 <= anchor_packets <= _BLOCK:
            raise ValueError(f"anchor_packets must be between 1 and {_BLOCK}: {anchor_packets}")
        self.clock_rate = clock_rate
        self._audio_pts = None if audio_payload_types is None else np.array(sorted(audio_payload_types))
        self._event_pts = np.array(sorted(event_payload_types), dtype=np.int64)
        self._drift_threshold = drift_threshold
        self._anchor_packets = anchor_packets
        self._arrival: list[float] = []
        self._ssrc: list[int] = []
        self._seq: list[int] = []
        self._ts: list[int] = []
        self._pt: list[int] = []
        self._chunks: list[tuple[F64, I64, I64, I64, I64]] = []
        self._payloads: list[bytes] = []
        self._malformed = 0
        self._layout: _Layout | None = None
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

    def _select(self, layout: _Layout, limit: int | None) -> PlacementArrays:
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

    def _compute(self) -> _Layout:
        if self._layout is not None:
            return self._layout
        self._flush_scalars()
        if not self._chunks:
            raise ValueError("stream timeline has no RTP packets")
        if len(self._chunks) > 1:
            merged = tuple(np.concatenate(parts) for parts in zip(*self._chunks, strict=True))
            self._chunks = [merged]  # type: ignore[list-item]
        arrival, ssrc, seq, ts, pt = self._chunks[0]
        layout = self._layout_all(arrival, ssrc, seq, ts, pt)
        self._layout = layout
        return layout

    def _media_mask(self, pt: I64) -> npt.NDArray[np.bool_]:
        if self._audio_pts is None:
            return ~np.isin(pt, self._event_pts)
        mask: npt.NDArray[np.bool_] = np.isin(pt, self._audio_pts) | (pt == COMFORT_NOISE_PT)
        return mask

    def _layout_all(self, arrival: F64, ssrc: I64, seq: I64, ts: I64, pt: I64) -> _Layout:
        clock = self.clock_rate
        uniq_ssrc, inverse = np.unique(ssrc, return_inverse=True)
        by_track = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[by_track], np.arange(len(uniq_ssrc) + 1))
        tracks = [by_track[bounds[k] : bounds[k + 1]] for k in range(len(uniq_ssrc))]
        tracks.sort(key=lambda idx: float(arrival[idx].min()))

        stats = StreamStats(malformed=self._malformed, ssrc_count=len(tracks))
        anchor_wall: float | None = None
        prev_track: tuple[F64, I64, int] | None = None  # arrivals, ends of previous SSRC's media
        offsets: list[I64] = []
        pts: list[npt.NDArray[np.int16]] = []
        indices: list[I64] = []
        events: list[PlacedEvent] = []
        best_jitter_count = -1
        gaps: list[tuple[float, float]] = []

        for idx in tracks:
            t_arr = arrival[idx]
            ext_seq = _unwrap(seq[idx], 16)
            ext_ts = _unwrap(ts[idx], 32)
            uniq_seq, first = np.unique(ext_seq, return_index=True)
            stats.expected += int(uniq_seq[-1] - uniq_seq[0] + 1)
            stats.received += len(uniq_seq)
            stats.duplicated += len(idx) - len(uniq_seq)
            is_first = np.zeros(len(idx), dtype=bool)
            is_first[first] = True
            run_max = np.maximum.accumulate(ext_seq)
            stats.late += int(np.count_nonzero(is_first[1:] & (ext_seq[1:] < run_max[:-1])))

            t_pt = pt[idx][first]
            media = self._media_mask(t_pt)
            m = first[media]
            if len(m) == 0:
                if anchor_wall is None:
                    anchor_wall = float(t_arr.min())
                self._place_events(idx, first, t_pt, ext_seq, ext_ts, t_arr, None, None, anchor_wall, events)
                continue
            rel = ext_ts[m] - ext_ts[m[0]]
            m_arr = t_arr[m]
            delta = m_arr - rel / clock
            starts, anchors = self._epochs(delta)
            if anchor_wall is None:
                anchor_wall = anchors[0]
            shifts = [round((a - anchor_wall) * clock) for a in anchors]
            m_seq = ext_seq[m]
            step = np.diff(rel)[np.diff(m_seq) == 1]
            step = step[step > 0]
            ptime = int(np.median(step[:1000])) if len(step) else clock // 50
            # Keep each SSRC's audio after the audio the previous one placed before it.
            if prev_track is not None:
                before = prev_track[0] < m_arr.min() + _SWITCH_REORDER_SECONDS
                if before.any():
                    prev_end = int(prev_track[1][before].max())
                    if shifts[0] + int(rel.min()) < prev_end:
                        shifts[0] = prev_end - int(rel.min())
            for e in range(1, len(starts)):
                if abs(anchors[e] - anchors[e - 1]) >= _JUMP_SECONDS:
                    prev_end = shifts[e - 1] + int(rel[: starts[e]].max()) + ptime
                    shifts[e] = max(shifts[e], prev_end - int(rel[starts[e] :].min()))
            epoch_of = np.zeros(len(m), dtype=np.int64)
            for e in range(1, len(starts)):
                epoch_of[starts[e] :] = e
            shift_arr = np.array(shifts, dtype=np.int64)
            off = shift_arr[epoch_of] + rel
            offsets.append(off)
            pts.append(t_pt[media].astype(np.int16))
            indices.append(idx[m])
            prev_track = (m_arr, off + ptime, ptime)

            # Lost packets between consecutive media packets, net of received events in between.
            pos = np.searchsorted(uniq_seq, m_seq)
            lossy = (np.diff(m_seq) - np.diff(pos)) > 0
            gaps.extend(loss_gaps(off, off + ptime, lossy, clock))

            if len(m) > best_jitter_count:
                best_jitter_count = len(m)
                order = np.argsort(m_arr, kind="stable")
                stats.jitter_ms = interarrival_jitter(m_arr[order], rel[order], clock)

            self._place_events(
                idx, first, t_pt, ext_seq, ext_ts, t_arr, (m_seq, epoch_of), shift_arr, anchor_wall, events
            )

        assert anchor_wall is not None
        stats.gaps = sorted(gaps)
        events.sort(key=lambda pe: pe.offset)
        if offsets:
            all_off = np.concatenate(offsets)
            all_pt = np.concatenate(pts)
            all_idx = np.concatenate(indices)
            order = np.lexsort((all_idx, all_off))
            all_off, all_pt, all_idx = all_off[order], all_pt[order], all_idx[order]
            unique = np.ones(len(all_off), dtype=bool)
            unique[1:] = all_off[1:] != all_off[:-1]
            all_off, all_pt, all_idx = all_off[unique], all_pt[unique], all_idx[unique]
        else:
            all_off = np.zeros(0, dtype=np.int64)
            all_pt = np.zeros(0, dtype=np.int16)
            all_idx = np.zeros(0, dtype=np.int64)
        return _Layout(anchor_wall, all_off, all_pt, all_idx, events, stats, float(arrival.max()))

    def _epochs(self, delta: F64) -> tuple[list[int], list[float]]:
        """Split an SSRC's media packets (sequence order) into epochs with their wall anchors."""
        n = len(delta)
        anchor = float(delta[: self._anchor_packets].min())
        starts = [0]
        anchors = [anchor]
        block_min = np.minimum.reduceat(delta, np.arange(0, n, _BLOCK)).tolist()
        threshold = self._drift_threshold
        run_start: int | None = None
        run_sign = 0
        for k, low in enumerate(block_min):
            dev = low - anchor
            if abs(dev) <= threshold:
                run_start = None
                continue
            sign = 1 if dev > 0 else -1
            if run_start is None or sign != run_sign:
                run_start, run_sign = k, sign
            if k - run_start + 1 < _SUSTAIN_BLOCKS:
                continue
            window = block_min[k - _SUSTAIN_BLOCKS + 1 : k + 1]
            if max(window) - min(window) > threshold:
                continue
            begin = self._deviation_start(delta, anchor, run_start, sign)
            if begin <= starts[-1]:
                begin = starts[-1] + 1 if starts[-1] + 1 < n else starts[-1]
            anchor = float(min(window))
            if begin == starts[-1]:
                anchors[-1] = anchor
            else:
                starts.append(begin)
                anchors.append(anchor)
            run_start = None
        return starts, anchors

    def _deviation_start(self, delta: F64, anchor: float, run_block: int, sign: int) -> int:
        """First packet of a confirmed deviation that began in block ``run_block``."""
        threshold = self._drift_threshold
        block_start = run_block * _BLOCK
        if sign > 0:
            # The whole first block is beyond; the deviation may have begun late in the block before.
            lo = max(block_start - _BLOCK, 0)
            within = np.flatnonzero(delta[lo:block_start] - anchor <= threshold)
            return lo + int(within[-1]) + 1 if len(within) else lo
        beyond = np.flatnonzero(delta[block_start : block_start + _BLOCK] - anchor < -threshold)
        return block_start + int(beyond[0]) if len(beyond) else block_start

    def _place_events(
        self,
        idx: I64,
        first: I64,
        t_pt: I64,
        ext_seq: I64,
        ext_ts: I64,
        t_arr: F64,
        media: tuple[I64, I64] | None,
        shifts: I64 | None,
        anchor_wall: float,
        out: list[PlacedEvent],
    ) -> None:
        if len(self._event_pts) == 0:
            return
        is_event = np.isin(t_pt, self._event_pts)
        if not is_event.any():
            return
        ev = first[is_event]
        if media is None or shifts is None:
            ev_off = np.round((t_arr[ev] - anchor_wall) * self.clock_rate).astype(np.int64)
        else:
            m_seq, epoch_of = media
            where = np.clip(np.searchsorted(m_seq, ext_seq[ev], side="right") - 1, 0, len(m_seq) - 1)
            media_first_ts = ext_ts[first[self._media_mask(t_pt)][0]]
            ev_off = shifts[epoch_of[where]] + (ext_ts[ev] - media_first_ts)
        tracker = EventTracker()
        offset_of: dict[int, int] = {}
        raw_ts = (ext_ts[ev] & 0xFFFFFFFF).tolist()
        ssrc = int(self._chunks[0][1][idx[0]])
        for j, raw, o in zip(ev.tolist(), raw_ts, ev_off.tolist(), strict=True):
            offset_of.setdefault(raw, o)
            try:
                tracker.feed(raw, self._payloads[int(idx[j])])
            except ValueError:
                continue
        for event in tracker.finish():
            out.append(PlacedEvent(offset_of[event.start_rtp_ts], ssrc, event))
