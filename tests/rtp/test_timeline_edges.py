"""Timeline edges that mutation testing found unguarded (docs/mutation-testing.md)."""

from __future__ import annotations

import numpy as np
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
