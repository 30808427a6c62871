"""Timeline edges that mutation testing found unguarded (docs/mutation-testing.md)."""

from __future__ import annotations

import numpy as np
import pytest
from rtp_streams import make_stream, marker_payload

from callvault.rtp.packet import RtpPacket
from callvault.rtp.timeline import StreamTimeline

PCMU = {0}
RTCP_SENDER_REPORT = b"\x80\xc8" + bytes(26)


def _feed(stream: list[tuple[float, RtpPacket]]) -> StreamTimeline:
    timeline = StreamTimeline(8000, PCMU)
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    return timeline


def test_malformed_datagrams_add_up_over_batches_and_rtcp_is_not_one() -> None:
    stream = make_stream(100)
    datagrams = [p.serialize() for _, p in stream]
    arrivals = np.array([a for a, _ in stream])
    timeline = StreamTimeline(8000, PCMU)
    timeline.add_batch(np.append(arrivals[:50], 1001.0), [*datagrams[:50], b"junk"])
    timeline.add_batch(
        np.append(arrivals[50:], [1002.0, 1002.0, 1002.0]),
        [*datagrams[50:], b"\x00", RTCP_SENDER_REPORT, b"more junk"],
    )
    assert timeline.stats.malformed == 3
    assert len(timeline.placements()) == 100


def test_draining_holds_back_the_last_15_seconds() -> None:
    timeline = _feed(make_stream(3000))  # one minute
    drained = timeline.drain_until(10**12)
    horizon = (timeline.last_arrival - timeline.anchor_wall - 15.0) * 8000
    assert len(drained) > 0 and int(drained.offset[-1]) < horizon
    assert len(drained) + len(timeline.placements()) == 3000
    assert len(timeline.placements()) >= 15 * 50  # the held-back part is still there


def test_draining_up_to_a_placement_keeps_that_placement_s_audio() -> None:
    timeline = _feed(make_stream(3000))
    drained = timeline.drain_until(50 * 160)  # exactly the offset of packet 50
    assert [int(o) for o in drained.offset] == [i * 160 for i in range(50)]
    rest = timeline.placement_arrays()
    assert int(rest.offset[0]) == 50 * 160
    assert rest.payloads[0] == marker_payload(50)  # not released with the drained ones


def test_timestamps_jumping_ahead_mid_block_are_re_anchored_from_that_very_packet() -> None:
    """A sender that jumps its timestamps 2 s ahead while packets keep coming every 20 ms: the
    arrivals say no time was skipped, so the audio stays contiguous from the packet of the jump
    (rule 3), and no 2 s silence is inserted before it."""
    jumped = [
        (arrival, _with_timestamp(packet, packet.timestamp + 16000) if i >= 437 else packet)
        for i, (arrival, packet) in enumerate(make_stream(1000, jitter=0.002))
    ]
    offsets = [p.offset for p in _feed(jumped).placements()]
    assert offsets == [i * 160 for i in range(1000)]


def test_timestamps_jumping_back_mid_block_are_re_anchored_from_that_very_packet() -> None:
    """The same, 2 s back: the packets after the jump must not land on the audio before it."""
    jumped = [
        (arrival, _with_timestamp(packet, packet.timestamp - 16000) if i >= 437 else packet)
        for i, (arrival, packet) in enumerate(make_stream(1000, jitter=0.002))
    ]
    offsets = [p.offset for p in _feed(jumped).placements()]
    assert offsets == [i * 160 for i in range(1000)]


def _with_timestamp(packet: RtpPacket, timestamp: int) -> RtpPacket:
    return RtpPacket(
        payload_type=packet.payload_type,
        sequence_number=packet.sequence_number,
        timestamp=timestamp & 0xFFFFFFFF,
        ssrc=packet.ssrc,
        payload=packet.payload,
    )


def test_a_new_source_stepping_back_after_its_first_packet_starts_where_the_old_one_ended() -> None:
    """Rule 4 with a new SSRC whose timestamps go backwards right after the switch: its first
    packet is stamped 50 ms ahead of the packets after it. By its arrival the new source
    would start 20 ms after the old one's audio ends, but its second packet (50 ms earlier on
    its clock) would then overwrite the old one's last 30 ms: the whole new source is pushed so
    that its earliest audio begins exactly where the old one's ends, keeping its own spacing."""
    old = make_stream(100, ssrc=1, seq0=10, ts0=0)  # audio at 0 .. 16000 ticks
    new = [
        (
            1002.05 + j * 0.02,  # the old source's last packet arrived at 1002.01
            RtpPacket(
                payload_type=0,
                sequence_number=700 + j,
                timestamp=90000 + (400 if j == 0 else (j - 1) * 160),
                ssrc=2,
                payload=marker_payload(100 + j),
            ),
        )
        for j in range(50)
    ]
    placed = {p.payload: p.offset for p in _feed(old + new).placements()}
    assert [placed[marker_payload(i)] for i in range(100)] == [i * 160 for i in range(100)]
    old_end = 100 * 160
    assert placed[marker_payload(101)] == old_end
    assert placed[marker_payload(100)] == old_end + 400
    assert [placed[marker_payload(100 + j)] for j in range(1, 50)] == [old_end + i * 160 for i in range(49)]


def test_a_30_ms_stream_s_loss_gap_is_measured_in_30_ms_packets() -> None:
    """Five lost 30 ms packets are a 150 ms hole right after the packet before them."""
    stream = make_stream(200, ptime=0.03)
    timeline = _feed(stream[:100] + stream[105:])
    assert timeline.stats.gaps == [(100 * 0.03, 0.15)]


def test_a_lost_120_ms_packet_is_a_gap() -> None:
    """One lost packet is a gap when it alone lasts the gap minimum (100 ms): large packets."""
    stream = make_stream(50, ptime=0.12)
    timeline = _feed(stream[:20] + stream[21:])
    assert timeline.stats.gaps == [(20 * 0.12, 0.12)]


@pytest.mark.parametrize("clock_rate", [8000, 11025])  # PCMU; DVI4 at 11025 Hz (RFC 3551)
def test_without_two_consecutive_packets_a_packet_is_taken_as_20_ms(clock_rate: int) -> None:
    """Only every 10th packet gets through, so no packet's duration can be measured: each is
    taken as 20 ms in whole ticks, and each gap runs from there to the next packet."""
    ticks = round(0.02 * clock_rate)  # per packet sent
    assumed = int(0.02 * clock_rate)  # 20 ms, rounded down to whole ticks
    stream = make_stream(100, ptime=0.02, clock_rate=clock_rate)[::10]
    timeline = StreamTimeline(clock_rate, PCMU)
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    assert [p.offset for p in timeline.placements()] == [k * 10 * ticks for k in range(10)]
    assert timeline.stats.gaps == [
        ((k * 10 * ticks + assumed) / clock_rate, (10 * ticks - assumed) / clock_rate) for k in range(9)
    ]
