from __future__ import annotations

import random
import time

import numpy as np
import pytest
from rtp_streams import UlawDecoder, make_stream, value_of

from callvault.rtp.packet import RtpPacket
from callvault.rtp.render import render_stream
from callvault.rtp.timeline import StreamTimeline

PCMU = {0}


def feed(stream: list[tuple[float, RtpPacket]], **kwargs: object) -> StreamTimeline:
    timeline = StreamTimeline(8000, PCMU, **kwargs)  # type: ignore[arg-type]
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    return timeline


def offsets(timeline: StreamTimeline) -> list[int]:
    return [p.offset for p in timeline.placements()]


def test_in_order_stream_is_contiguous_from_zero() -> None:
    stream = make_stream(100, jitter=0.005)
    timeline = feed(stream)
    assert offsets(timeline) == [160 * i for i in range(100)]
    assert [p.payload for p in timeline.placements()] == [p.payload for _, p in stream]
    # Anchor is the least-delayed packet's estimate: at or before the first arrival, never after.
    assert 1000.03 <= timeline.anchor_wall <= stream[0][0]
    stats = timeline.stats
    assert (stats.expected, stats.received, stats.lost, stats.duplicated, stats.late) == (100, 100, 0, 0, 0)
    assert stats.gaps == []
    assert 0 < stats.jitter_ms < 10


def test_reordering_gives_identical_placements_and_counts_late_packets() -> None:
    stream = make_stream(500, jitter=0.002)
    rng = random.Random(3)
    # Reorder within 100 ms: add up to 100 ms of extra delay to a fifth of the packets.
    reordered = [(a + (rng.uniform(0, 0.1) if rng.random() < 0.2 else 0.0), p) for a, p in stream]
    reference = feed(sorted(reordered, key=lambda x: x[1].sequence_number))
    shuffled = feed(sorted(reordered, key=lambda x: x[0]))
    assert shuffled.placements() == reference.placements()
    assert shuffled.anchor_wall == reference.anchor_wall
    assert shuffled.stats.late > 20
    assert reference.stats.late == 0
    assert shuffled.stats.lost == 0


def test_duplicates_are_ignored_and_counted() -> None:
    stream = make_stream(200)
    doubled = stream + [(a + 0.05, p) for a, p in stream[::10]]
    doubled.sort(key=lambda x: x[0])
    timeline = feed(doubled)
    assert offsets(timeline) == [160 * i for i in range(200)]
    assert timeline.stats.duplicated == 20
    assert timeline.stats.received == 200


def test_random_loss_leaves_holes_of_exact_length() -> None:
    stream = make_stream(3000, jitter=0.003)
    rng = random.Random(11)
    lost = {i for i in range(1, 2999) if rng.random() < 0.05}
    for start in (1000, 1001, 1002, 1003, 1004, 1005, 1006):  # one 140 ms hole
        lost.add(start)
    kept = [x for i, x in enumerate(stream) if i not in lost]
    timeline = feed(kept)
    assert offsets(timeline) == [160 * i for i in range(3000) if i not in lost]
    stats = timeline.stats
    assert stats.lost == len(lost)
    assert stats.expected == 3000
    assert stats.loss_fraction == pytest.approx(len(lost) / 3000)
    assert (1000 * 0.02, 7 * 0.02) in [(round(s, 6), round(d, 6)) for s, d in stats.gaps]
    assert all(d >= 0.1 for _, d in stats.gaps)

    pcm = render_stream(timeline, {0: UlawDecoder()}, 8000, None, timeline.anchor_wall)
    assert len(pcm) == 3000 * 160
    assert not pcm[1000 * 160 : 1007 * 160].any()
    assert (pcm[999 * 160 : 1000 * 160] == value_of(999)).all()
    assert (pcm[1007 * 160 : 1008 * 160] == value_of(1007)).all()


def test_sequence_and_timestamp_wrap_mid_stream() -> None:
    stream = make_stream(400, seq0=65400, ts0=2**32 - 160 * 150, jitter=0.002)
    assert any(p.sequence_number < 100 for _, p in stream)
    timeline = feed(stream)
    assert offsets(timeline) == [160 * i for i in range(400)]
    assert timeline.stats.expected == 400
    assert timeline.stats.lost == 0


def test_silence_suppression_keeps_the_gap() -> None:
    first = make_stream(100, seq0=1, ts0=0)
    # Sender stops for 2 s; the next talk spurt continues the sequence, timestamp moved on 2 s.
    second = make_stream(100, start=1000.0 + 2.0 + 2.0, seq0=101, ts0=100 * 160 + 16000)
    second[0][1].marker = True
    timeline = feed(first + second)
    got = offsets(timeline)
    assert got[99] == 99 * 160
    assert got[100] == 100 * 160 + 16000
    assert timeline.stats.lost == 0
    assert timeline.stats.gaps == []
    assert len(timeline.placements()) == 200


def test_ssrc_change_is_anchored_at_arrival_and_never_overlaps() -> None:
    first = make_stream(100, ssrc=1, seq0=10, ts0=0)
    # The new SSRC arrives 1 s after the first ends, with an unrelated timestamp base.
    second = make_stream(100, start=1000.0 + 3.0, ssrc=2, seq0=50000, ts0=777777)
    timeline = feed(first + second)
    got = offsets(timeline)
    assert got[:100] == [160 * i for i in range(100)]
    assert got[100:] == [3 * 8000 + 160 * i for i in range(100)]
    assert timeline.stats.ssrc_count == 2
    assert timeline.stats.expected == 200

    # A replacement SSRC whose first packets are early (the old one's tail was delayed) starts after it.
    late_tail = [(a + 0.1, p) if i >= 90 else (a, p) for i, (a, p) in enumerate(first)]
    overlap = make_stream(50, start=1000.0 + 1.9, ssrc=3, seq0=1, ts0=0)
    timeline = feed(sorted(late_tail + overlap, key=lambda x: x[0]))
    got = offsets(timeline)
    assert got[100] >= 100 * 160
    assert len(set(got)) == 150


def test_comfort_noise_is_placed_and_events_are_not_audio() -> None:
    stream = make_stream(10)
    stream[5][1].payload_type = 13
    stream[5][1].payload = b"\x40"
    stream[6][1].payload_type = 101
    stream[6][1].payload = bytes([5, 0x8A, 0, 160])
    timeline = StreamTimeline(8000, {0}, {101})
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    placed = timeline.placements()
    assert [p.payload_type for p in placed] == [0, 0, 0, 0, 0, 13, 0, 0, 0]
    assert timeline.stats.lost == 0
    events = timeline.events()
    assert len(events) == 1
    assert events[0].event.digit == "5"
    assert events[0].offset == 6 * 160
    pcm = render_stream(timeline, {0: UlawDecoder()}, 8000, None, timeline.anchor_wall)
    assert not pcm[5 * 160 : 7 * 160].any()


def test_add_batch_matches_add() -> None:
    stream = make_stream(1000, jitter=0.004, seed=7)
    datagrams = [p.serialize() for _, p in stream] + [b"\x80\xc8" + bytes(26), b"junk"]
    arrivals = np.array([a for a, _ in stream] + [1100.0, 1100.0])
    batch = StreamTimeline(8000, PCMU)
    batch.add_batch(arrivals[:400], datagrams[:400])
    batch.add_batch(arrivals[400:], datagrams[400:])
    assert batch.placements() == feed(stream).placements()
    assert batch.anchor_wall == feed(stream).anchor_wall
    assert batch.stats.malformed == 1  # the RTCP packet is not malformed
    with pytest.raises(ValueError, match="arrival times"):
        batch.add_batch(arrivals[:3], datagrams[:2])


def test_empty_timeline_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="no RTP packets"):
        StreamTimeline(8000).placements()
    with pytest.raises(ValueError, match="clock rate"):
        StreamTimeline(0)


def test_timestamp_reset_without_ssrc_change_is_reanchored() -> None:
    first = make_stream(500, seq0=1, ts0=0, jitter=0.002)
    # Same SSRC, sequence continues, timestamps restart near zero 10 s later (e.g. after a re-INVITE).
    second = make_stream(500, start=1010.0, seq0=501, ts0=320, jitter=0.002, seed=2)
    timeline = feed(first + second)
    got = offsets(timeline)
    assert got[:500] == [160 * i for i in range(500)]
    assert abs(got[500] - 10 * 8000) <= 0.02 * 8000
    assert np.all(np.diff(got[500:]) == 160)


def test_one_hour_with_fast_sender_clock_stays_on_wall_time() -> None:
    count = 180_000
    rng = np.random.default_rng(9)
    ptime = 0.02
    send = 5000.0 + np.arange(count) * ptime
    arrival = send + 0.04 + rng.exponential(0.004, count)
    ts = np.round(np.arange(count) * 160 * (1 + 10e-6)).astype(np.int64) & 0xFFFFFFFF
    seq = np.arange(count) & 0xFFFF
    header = np.zeros((count, 12), dtype=np.uint8)
    header[:, 0] = 0x80
    header[:, 2], header[:, 3] = seq >> 8, seq & 0xFF
    for k in range(4):
        header[:, 4 + k] = (ts >> (24 - 8 * k)) & 0xFF
    header[:, 8:12] = [0, 0, 0x12, 0x34]
    payload = bytes(160)
    datagrams = [h.tobytes() + payload for h in header]

    timeline = StreamTimeline(8000, PCMU)
    timeline.add_batch(arrival, datagrams)
    placed = timeline.placements()  # how fast: bench/timeline.py, against a baseline
    assert len(placed) == count
    # Sender's 3600 s of timestamps are 36 ms too long; re-anchoring keeps every packet within 20 ms.
    error = timeline.anchor_wall + np.array([p.offset for p in placed]) / 8000 - (send + 0.04)
    assert abs(error[-1]) < 0.020
    assert np.abs(error).max() < 0.022
    assert timeline.stats.lost == 0


def test_slow_sender_clock_inserts_silence_rather_than_drifting() -> None:
    stream = make_stream(60_000, skew_ppm=-40, jitter=0.003)  # 20 minutes, 48 ms behind at the end
    timeline = feed(stream)
    placed = timeline.placements()
    last = timeline.anchor_wall + placed[-1].offset / 8000
    assert abs(last - (1000.0 + 59_999 * 0.02 + 0.03)) < 0.022


def test_network_stall_burst_does_not_move_audio() -> None:
    stream = make_stream(1500, jitter=0.002)
    # 8 s stall: everything sent in [10 s, 18 s) arrives at once at 18 s.
    stalled = [(max(a, 1018.05) if 1010.0 <= a - 0.03 < 1018.0 else a, p) for a, p in stream]
    assert offsets(feed(stalled)) == [160 * i for i in range(1500)]


def test_drain_until_hands_out_final_placements_once() -> None:
    stream = make_stream(6000, jitter=0.004)  # two minutes
    whole = feed(stream).placements()
    timeline = StreamTimeline(8000, PCMU)
    drained = []
    for i, (arrival, packet) in enumerate(stream):
        timeline.add(arrival, packet)
        if i % 1000 == 999:
            drained.extend(timeline.drain_until(10**12).to_list())
    # The last 15 s are held back until the caller takes the rest.
    assert len(drained) < 6000 - 700
    drained.extend(timeline.placements())
    assert drained == whole


def test_two_streams_starting_at_different_times_render_aligned() -> None:
    caller = feed(make_stream(250, start=1000.0, ssrc=1, jitter=0.003))
    callee = feed(make_stream(100, start=1002.0, ssrc=2, ts0=99, jitter=0.003, seed=4))
    start = min(caller.anchor_wall, callee.anchor_wall)
    a = render_stream(caller, {0: UlawDecoder()}, 8000, 5.0, start)
    b = render_stream(callee, {0: UlawDecoder()}, 8000, 5.0, start)
    assert len(a) == len(b) == 40_000
    begin = int(np.flatnonzero(b)[0])
    assert abs(begin - 2 * 8000) <= 8  # callee's first sample 2 s after caller's, within 1 ms
    assert (b[begin : begin + 160] == value_of(0)).all()
    assert not b[:begin].any()
    assert (a[2 * 8000 : 2 * 8000 + 160] == value_of(100)).all()


def test_add_throughput_is_recorded() -> None:
    stream = make_stream(20_000, jitter=0.004)
    timeline = StreamTimeline(8000, PCMU)
    began = time.perf_counter()
    for arrival, packet in stream:
        timeline.add(arrival, packet)
    timeline.placements()
    elapsed = time.perf_counter() - began
    # ~180k packets/s measured on a quiet core; the bound leaves room for a busy CI machine.
    assert 20_000 / elapsed > 10_000, f"{20_000 / elapsed:.0f} packets/s"
