"""Laying out one stream's packets: the steps behind :class:`callvault.rtp.timeline.StreamTimeline`.

All packets of the stream arrive here as column arrays (:class:`Packets`). They are
split by SSRC, in the order the SSRCs first arrived (:func:`split_by_ssrc`); each
SSRC is then worked through in named steps:

1. :class:`Track`: its sequence numbers and timestamps unwrapped, the first copy of
   each sequence number picked (duplicates dropped), and counted
   (:func:`count_packets`: expected, received, duplicated, late).
2. :class:`Media`: the audio and comfort-noise packets among those, with their RTP
   time from the SSRC's first one and their delay (``arrival - rtp_time``).
3. Anchoring (:mod:`callvault.rtp.anchoring`): epochs, their shifts, and so each
   packet's offset on the stream's timeline.
4. Loss gaps, jitter and telephone events of the SSRC.

Finally :func:`merge_placements` puts every SSRC's placements in offset order, one
per offset (the first arrival wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from callvault.rtp.anchoring import PreviousAudio, epoch_shifts, find_epochs
from callvault.rtp.stats import StreamStats, interarrival_jitter, loss_gaps
from callvault.rtp.telephone_event import EventTracker, TelephoneEvent

COMFORT_NOISE_PT = 13

I64 = npt.NDArray[np.int64]
I16 = npt.NDArray[np.int16]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


@dataclass(slots=True, frozen=True)
class PlacedEvent:
    offset: int
    ssrc: int
    event: TelephoneEvent


@dataclass(slots=True, frozen=True)
class LayoutRules:
    """What a stream's timeline was configured with."""

    clock_rate: int
    audio_payload_types: I64 | None  # None: anything that is not an event is media
    event_payload_types: I64
    drift_threshold: float
    anchor_packets: int

    def is_media(self, payload_type: I64) -> Mask:
        if self.audio_payload_types is None:
            return ~np.isin(payload_type, self.event_payload_types)
        mask: Mask = np.isin(payload_type, self.audio_payload_types) | (payload_type == COMFORT_NOISE_PT)
        return mask


@dataclass(slots=True, frozen=True)
class Packets:
    """Every stored packet of the stream, column-wise, in the order they were stored."""

    arrival: F64
    ssrc: I64
    seq: I64
    ts: I64
    payload_type: I64
    payloads: list[bytes]


@dataclass(slots=True)
class Layout:
    anchor_wall: float
    offset: I64
    payload_type: I16
    index: I64  # of each placement's packet in :class:`Packets`
    events: list[PlacedEvent]
    stats: StreamStats
    last_arrival: float


def unwrap(values: I64, bits: int) -> I64:
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


def split_by_ssrc(ssrc: I64, arrival: F64) -> list[I64]:
    """Packet indices of each SSRC (in storage order), the SSRCs in order of first arrival."""
    unique_ssrc, inverse = np.unique(ssrc, return_inverse=True)
    by_ssrc = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[by_ssrc], np.arange(len(unique_ssrc) + 1))
    groups = [by_ssrc[bounds[k] : bounds[k + 1]] for k in range(len(unique_ssrc))]
    groups.sort(key=lambda index: float(arrival[index].min()))
    return groups


@dataclass(slots=True, frozen=True)
class Track:
    """One SSRC's packets; ``first`` picks the first copy of each sequence number (sequence order)."""

    index: I64  # into :class:`Packets`, storage order
    arrival: F64
    ext_seq: I64
    ext_ts: I64
    unique_seq: I64
    first: I64  # positions in this track
    payload_type: I64  # of the first copies

    @classmethod
    def of(cls, packets: Packets, index: I64) -> Track:
        ext_seq = unwrap(packets.seq[index], 16)
        unique_seq, first = np.unique(ext_seq, return_index=True)
        return cls(
            index=index,
            arrival=packets.arrival[index],
            ext_seq=ext_seq,
            ext_ts=unwrap(packets.ts[index], 32),
            unique_seq=unique_seq,
            first=first,
            payload_type=packets.payload_type[index][first],
        )


def count_packets(track: Track, stats: StreamStats) -> None:
    """Add the SSRC's expected, received, duplicated and late packets to ``stats``."""
    stats.expected += int(track.unique_seq[-1] - track.unique_seq[0] + 1)
    stats.received += len(track.unique_seq)
    stats.duplicated += len(track.index) - len(track.unique_seq)
    is_first = np.zeros(len(track.index), dtype=bool)
    is_first[track.first] = True
    highest_so_far = np.maximum.accumulate(track.ext_seq)
    stats.late += int(np.count_nonzero(is_first[1:] & (track.ext_seq[1:] < highest_so_far[:-1])))


@dataclass(slots=True, frozen=True)
class Media:
    """An SSRC's audio and comfort-noise packets (first copies, sequence order)."""

    mask: Mask  # over the track's first copies
    positions: I64  # in the track
    rtp_time: I64  # ticks from the first media packet's timestamp
    arrival: F64
    seq: I64  # extended
    delay: F64  # arrival - rtp_time, seconds

    @classmethod
    def of(cls, track: Track, rules: LayoutRules) -> Media | None:
        mask = rules.is_media(track.payload_type)
        positions = track.first[mask]
        if len(positions) == 0:
            return None
        rtp_time = track.ext_ts[positions] - track.ext_ts[positions[0]]
        arrival = track.arrival[positions]
        return cls(
            mask,
            positions,
            rtp_time,
            arrival,
            track.ext_seq[positions],
            arrival - rtp_time / rules.clock_rate,
        )

    def __len__(self) -> int:
        return len(self.positions)


def typical_ptime(media: Media, clock_rate: int) -> int:
    """Ticks per packet: the median timestamp step between consecutive sequence numbers."""
    step = np.diff(media.rtp_time)[np.diff(media.seq) == 1]
    step = step[step > 0]
    return int(np.median(step[:1000])) if len(step) else clock_rate // 50


def media_loss_gaps(
    track: Track, media: Media, offset: I64, ptime: int, clock_rate: int
) -> list[tuple[float, float]]:
    """Holes left by lost packets between consecutive media packets, net of events received between."""
    position = np.searchsorted(track.unique_seq, media.seq)
    lossy = (np.diff(media.seq) - np.diff(position)) > 0
    return loss_gaps(offset, offset + ptime, lossy, clock_rate)


def media_jitter(media: Media, clock_rate: int) -> float:
    """RFC 3550 interarrival jitter (ms) of the SSRC's media packets, taken in arrival order."""
    order = np.argsort(media.arrival, kind="stable")
    return interarrival_jitter(media.arrival[order], media.rtp_time[order], clock_rate)


@dataclass(slots=True, frozen=True)
class MediaPlacement:
    """Where an SSRC's media packets went: their epochs' shifts and each packet's epoch."""

    shifts: I64
    epoch_of: I64


def place_events(
    track: Track,
    media: Media | None,
    placement: MediaPlacement | None,
    anchor_wall: float,
    rules: LayoutRules,
    packets: Packets,
) -> list[PlacedEvent]:
    """The SSRC's telephone events (RFC 4733), placed with the media epoch they fall in, or by
    arrival when the SSRC has no media."""
    if len(rules.event_payload_types) == 0:
        return []
    is_event = np.isin(track.payload_type, rules.event_payload_types)
    if not is_event.any():
        return []
    positions = track.first[is_event]
    if media is None or placement is None:
        offsets = np.round((track.arrival[positions] - anchor_wall) * rules.clock_rate).astype(np.int64)
    else:
        # An event takes the epoch of the media packet before it in sequence (or the first one's).
        media_before = np.searchsorted(media.seq, track.ext_seq[positions], side="right") - 1
        epoch = placement.epoch_of[np.clip(media_before, 0, len(media) - 1)]
        media_first_ts = track.ext_ts[media.positions[0]]
        offsets = placement.shifts[epoch] + (track.ext_ts[positions] - media_first_ts)
    tracker = EventTracker()
    offset_of: dict[int, int] = {}
    raw_ts = (track.ext_ts[positions] & 0xFFFFFFFF).tolist()
    ssrc = int(packets.ssrc[track.index[0]])
    for position, raw, offset in zip(positions.tolist(), raw_ts, offsets.tolist(), strict=True):
        offset_of.setdefault(raw, offset)
        try:
            tracker.feed(raw, packets.payloads[int(track.index[position])])
        except ValueError:
            continue
    return [PlacedEvent(offset_of[event.start_rtp_ts], ssrc, event) for event in tracker.finish()]


@dataclass(slots=True)
class Placements:
    """Each SSRC's placements, in SSRC order, before the merge."""

    offsets: list[I64] = field(default_factory=list)
    payload_types: list[I16] = field(default_factory=list)
    indices: list[I64] = field(default_factory=list)


def merge_placements(placed: Placements) -> tuple[I64, I16, I64]:
    """All placements by offset, one per offset: the first stored packet wins."""
    if not placed.offsets:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int64)
    offset = np.concatenate(placed.offsets)
    payload_type = np.concatenate(placed.payload_types)
    index = np.concatenate(placed.indices)
    order = np.lexsort((index, offset))
    offset, payload_type, index = offset[order], payload_type[order], index[order]
    unique = np.ones(len(offset), dtype=bool)
    unique[1:] = offset[1:] != offset[:-1]
    return offset[unique], payload_type[unique], index[unique]


def lay_out(packets: Packets, rules: LayoutRules, malformed: int) -> Layout:
    """Place every packet of the stream; see the module's steps."""
    clock = rules.clock_rate
    tracks = [Track.of(packets, index) for index in split_by_ssrc(packets.ssrc, packets.arrival)]
    stats = StreamStats(malformed=malformed, ssrc_count=len(tracks))
    anchor_wall: float | None = None
    previous: PreviousAudio | None = None
    placed = Placements()
    events: list[PlacedEvent] = []
    gaps: list[tuple[float, float]] = []
    jitter_from = -1  # media packets of the SSRC the jitter was taken from (the one with most)
    for track in tracks:
        count_packets(track, stats)
        media = Media.of(track, rules)
        if media is None:
            if anchor_wall is None:
                anchor_wall = float(track.arrival.min())
            events += place_events(track, None, None, anchor_wall, rules, packets)
            continue
        epochs = find_epochs(media.delay, rules.anchor_packets, rules.drift_threshold)
        if anchor_wall is None:
            anchor_wall = epochs.anchors[0]
        ptime = typical_ptime(media, clock)
        shifts = epoch_shifts(epochs, anchor_wall, clock, media.rtp_time, media.arrival, ptime, previous)
        epoch_of = epochs.of_packets(len(media))
        offset = shifts[epoch_of] + media.rtp_time
        placed.offsets.append(offset)
        placed.payload_types.append(track.payload_type[media.mask].astype(np.int16))
        placed.indices.append(track.index[media.positions])
        previous = PreviousAudio(media.arrival, offset + ptime)
        gaps.extend(media_loss_gaps(track, media, offset, ptime, clock))
        if len(media) > jitter_from:
            jitter_from = len(media)
            stats.jitter_ms = media_jitter(media, clock)
        events += place_events(track, media, MediaPlacement(shifts, epoch_of), anchor_wall, rules, packets)
    assert anchor_wall is not None
    stats.gaps = sorted(gaps)
    events.sort(key=lambda placed_event: placed_event.offset)
    offset, payload_type, index = merge_placements(placed)
    return Layout(anchor_wall, offset, payload_type, index, events, stats, float(packets.arrival.max()))
