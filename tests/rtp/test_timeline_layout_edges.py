"""Layout edges that the full mutation run of the timeline found unguarded (docs/mutation-testing.md):
several sources in one stream, telephone events, payload-type filtering, validation."""

from __future__ import annotations

import numpy as np
import pytest
from rtp_streams import make_stream, marker_payload

from callvault.rtp.packet import RtpPacket
from callvault.rtp.timeline import StreamTimeline

DTMF = 101
Stream = list[tuple[float, RtpPacket]]


def _feed(stream: Stream, audio: frozenset[int] | None = frozenset({0})) -> StreamTimeline:
    timeline = StreamTimeline(8000, audio, {DTMF})
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    return timeline


def _event(seq: int, ts: int, ssrc: int, digit: int, duration: int, end: bool = False) -> RtpPacket:
    payload = bytes([digit, (0x80 if end else 0) | 10]) + duration.to_bytes(2, "big")
    return RtpPacket(payload_type=DTMF, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload)


def _press(stream: Stream, first: int, digit: int, arrival_delay: float = 0.0) -> None:
    """Replace packets ``first`` .. ``first + 2`` by a key press starting at packet ``first``'s timestamp."""
    ts = stream[first][1].timestamp
    for k, (duration, end) in enumerate(((160, False), (320, False), (480, True))):
        arrival, packet = stream[first + k]
        stream[first + k] = (
            arrival + arrival_delay,
            _event(packet.sequence_number, ts, packet.ssrc, digit, duration, end),
        )


def test_only_the_configured_audio_payload_types_are_placed() -> None:
    stream = make_stream(20)
    stream[7][1].payload_type = 96  # not negotiated as audio: ignored (rule 5)
    assert [p.offset for p in _feed(stream).placements()] == [i * 160 for i in range(20) if i != 7]
    # Without a list of audio types, everything but the events is audio.
    stream[9][1].payload_type = 8
    _press(stream, 12, 5)
    placed = _feed(stream, audio=None).placements()
    assert [p.offset for p in placed] == [i * 160 for i in range(20) if i not in (12, 13, 14)]
    assert [p.payload_type for p in placed if p.payload_type != 0] == [96, 8]


def test_bad_arguments_are_refused_with_their_reason() -> None:
    with pytest.raises(ValueError, match="^drift threshold must be positive: 0$"):
        StreamTimeline(8000, drift_threshold=0)
    for wrong in (0, 51):
        with pytest.raises(ValueError, match=f"^anchor_packets must be between 1 and 50: {wrong}$"):
            StreamTimeline(8000, anchor_packets=wrong)
    for right in (1, 50):
        assert StreamTimeline(8000, anchor_packets=right).clock_rate == 8000
    with pytest.raises(ValueError, match="^stream timeline has no RTP packets$"):
        StreamTimeline(8000).placements()


def test_events_of_every_source_are_kept_in_time_order() -> None:
    """Source 1 talks 4 s with a key press at 3 s; source 2 sends only events (some gateways send
    RFC 4733 on their own SSRC), at 1 s and 2 s; source 3 takes over at 5 s with a press at 6 s."""
    first = make_stream(200, ssrc=1, seq0=10, ts0=0)
    _press(first, 150, 3)
    events_only: Stream = []
    for k, (digit, ts) in enumerate(((1, 5000), (2, 13000))):
        for j, (duration, end) in enumerate(((160, False), (320, False), (480, True))):
            packet = _event(1 + 3 * k + j, ts, 2, digit, duration, end)
            events_only.append((1001.03 + k + 0.02 * j, packet))
    third = make_stream(100, start=1005.0, ssrc=3, seq0=500, ts0=7777)
    _press(third, 50, 9)
    timeline = _feed(sorted(first + events_only + third, key=lambda x: x[0]))
    events = timeline.events()
    assert [(e.offset, e.event.digit, e.ssrc) for e in events] == [
        (8000, "1", 2),  # by arrival: the source has no audio to take a clock from
        (16000, "2", 2),
        (24000, "3", 1),
        (48000, "9", 3),
    ]
    assert all(type(e.offset) is int for e in events)
    assert len(timeline.placements()) == 197 + 97  # the third source's audio is placed too
    assert timeline.stats.lost == 0


def test_a_delayed_key_press_is_placed_by_its_timestamp_not_its_arrival() -> None:
    stream = make_stream(50)
    _press(stream, 20, 4, arrival_delay=0.03)
    assert [e.offset for e in _feed(stream).events()] == [20 * 160]


def test_two_key_presses_and_a_malformed_event_packet_between_them() -> None:
    stream = make_stream(50)
    _press(stream, 10, 4)
    _press(stream, 30, 7)
    arrival, packet = stream[20]
    stream[20] = (
        arrival,
        RtpPacket(DTMF, packet.sequence_number, packet.timestamp, packet.ssrc, b"\x01\x02\x03"),
    )
    events = _feed(stream).events()
    assert [(e.event.digit, e.offset) for e in events] == [("4", 10 * 160), ("7", 30 * 160)]


def test_counts_add_up_over_sources_with_duplicates_and_late_packets() -> None:
    """Source 1's last packets arrive after source 2's first ones (reordering across the switch):
    per source, duplicates and late packets are counted in arrival order, and summed."""
    old = make_stream(100, ssrc=1, seq0=10, ts0=0)
    old[60], old[61] = (old[61][0], old[60][1]), (old[60][0], old[61][1])  # 61 before 60: one late
    old[95:] = [(a + 0.2, p) for a, p in old[95:]]  # the tail arrives 200 ms late
    new = make_stream(100, start=1002.05, ssrc=2, seq0=7000, ts0=123)
    new[30], new[31] = (new[31][0], new[30][1]), (new[30][0], new[31][1])
    copies = [
        (a + 0.01, RtpPacket(0, p.sequence_number, p.timestamp, p.ssrc, b"\x00" * 160)) for a, p in old[::10]
    ]
    copies += [
        (a + 0.01, RtpPacket(0, p.sequence_number, p.timestamp, p.ssrc, b"\x00" * 160)) for a, p in new[::20]
    ]
    timeline = _feed(sorted(old + new + copies, key=lambda x: x[0]))
    stats = timeline.stats
    assert (stats.expected, stats.received, stats.duplicated, stats.late) == (200, 200, 15, 2)
    payloads = [p.payload for p in timeline.placements()]
    assert b"\x00" * 160 not in payloads  # the first copy of each packet wins
    assert payloads[:100] == [marker_payload(i) for i in range(100)]


def test_a_timestamp_wrap_in_the_last_second_keeps_the_audio_in_place() -> None:
    """Too few packets after the wrap to re-anchor: only the 32-bit unwrap keeps them in place."""
    stream = make_stream(400, ts0=2**32 - 160 * 380)
    assert [p.offset for p in _feed(stream).placements()] == [i * 160 for i in range(400)]


def test_a_stream_of_events_only_has_no_audio_and_typed_columns() -> None:
    """A lone end packet (the rest of the press lost) is still a key press."""
    timeline = _feed([(1000.0, _event(1, 4242, 77, 5, 800, end=True))])
    assert [(e.offset, e.ssrc, e.event.digit) for e in timeline.events()] == [(0, 77, "5")]
    assert timeline.placements() == []
    columns = timeline.placement_arrays()
    assert (len(columns.offset), len(columns.payload_type), len(columns.payloads)) == (0, 0, 0)
    assert (columns.offset.dtype, columns.payload_type.dtype) == (np.dtype(np.int64), np.dtype(np.int16))
    audio = _feed(make_stream(10)).placement_arrays()
    assert (audio.offset.dtype, audio.payload_type.dtype) == (np.dtype(np.int64), np.dtype(np.int16))


def test_two_packets_stamped_alike_keep_one_placement_the_first_stored() -> None:
    stream = make_stream(10)
    stream[5][1].timestamp = stream[4][1].timestamp
    placed = _feed(stream).placements()
    assert [p.offset for p in placed] == [i * 160 for i in range(10) if i != 5]
    assert placed[4].payload == marker_payload(4)


def _jumped(stream: Stream, at: int, ticks: int) -> Stream:
    return [
        (
            a,
            RtpPacket(
                p.payload_type, p.sequence_number, (p.timestamp + ticks) & 0xFFFFFFFF, p.ssrc, p.payload
            ),
        )
        if i >= at
        else (a, p)
        for i, (a, p) in enumerate(stream)
    ]


def test_timestamps_jumping_back_less_than_a_second_are_re_anchored_from_that_packet() -> None:
    stream = _jumped(make_stream(1000, jitter=0.002), 437, -2400)  # 300 ms back
    assert [p.offset for p in _feed(stream).placements()] == [i * 160 for i in range(1000)]


def test_a_jump_five_blocks_before_the_end_is_re_anchored() -> None:
    """The deviation lasts exactly the five blocks that confirm it (787 .. 999)."""
    stream = _jumped(make_stream(1000, jitter=0.002), 787, 16000)
    assert [p.offset for p in _feed(stream).placements()] == [i * 160 for i in range(1000)]


def test_a_first_packet_stamped_a_second_ahead_does_not_drag_the_next_ones() -> None:
    """The first packet carries a stale timestamp 1 s ahead of the rest: the stream is re-anchored
    from its second packet, which lands right after the first (a jump of 1 s never overlaps)."""
    stream = _jumped(make_stream(600), 1, -8000)
    timeline = _feed(stream)
    assert [p.offset for p in timeline.placements()] == [i * 160 for i in range(600)]
    assert timeline.anchor_wall == pytest.approx(1000.03)
