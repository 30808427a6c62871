from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rtp_streams import read_pcap_udp
from tests.support.pcap import DTMF_DIR, DTMF_EVENTS, dtmf_pcaps

from callvault.rtp.telephone_event import EventPayload, EventTracker, event_name
from callvault.rtp.timeline import StreamTimeline


def block(event: int, end: bool, duration: int, volume: int = 10) -> bytes:
    return bytes([event, (0x80 if end else 0) | volume]) + duration.to_bytes(2, "big")


def test_payload_fields() -> None:
    parsed = EventPayload.parse(block(11, True, 1280, volume=7))
    assert parsed == EventPayload(event=11, end=True, volume=7, duration=1280)
    with pytest.raises(ValueError, match="shorter than 4 bytes: 3"):
        EventPayload.parse(b"\x01\x02\x03")
    assert [event_name(e) for e in (0, 9, 10, 11, 12, 15, 16, 40)] == [
        "0", "9", "*", "#", "A", "D", "flash", "event-40",
    ]  # fmt: skip


def test_retransmitted_end_packets_report_once() -> None:
    tracker = EventTracker()
    done = [tracker.feed(1000, block(5, False, d)) for d in (160, 320, 480)]
    assert done == [None, None, None]
    first_end = tracker.feed(1000, block(5, True, 640))
    assert first_end is not None and first_end.digit == "5" and first_end.duration_ticks == 640
    assert tracker.feed(1000, block(5, True, 640)) is None
    assert tracker.feed(1000, block(5, True, 640)) is None
    # Next key press lost its end packets entirely; the one after closes it.
    tracker.feed(9000, block(7, False, 160))
    tracker.feed(9000, block(7, False, 320))
    tracker.feed(20000, block(11, True, 800))
    tracker.feed(1000, block(5, True, 640))  # very late retransmission of the first
    events = tracker.finish()
    assert [(e.digit, e.start_rtp_ts, e.duration_ticks) for e in events] == [
        ("5", 1000, 640),
        ("7", 9000, 320),
        ("#", 20000, 800),
    ]


def _one_digit_each(captures: list[tuple[str, Path]]) -> None:
    for digit, path in captures:
        datagrams = read_pcap_udp(path)
        timeline = StreamTimeline(8000, {0, 8}, {101})
        timeline.add_batch(np.array([t for t, _ in datagrams]), [d for _, d in datagrams])
        events = timeline.events()
        assert [e.event.digit for e in events] == [digit], path
        assert events[0].event.duration_ticks > 0
        assert timeline.stats.duplicated == 2  # the end packet is sent three times


def test_own_dtmf_captures_give_one_digit_each() -> None:
    captures = [(digit, DTMF_DIR / f"rfc4733_{name}.pcap") for digit, (_, name) in DTMF_EVENTS.items()]
    assert len(captures) == 12
    _one_digit_each(captures)
    # The last end packet says how long the key was held: 9 updates of 20 ms.
    datagrams = read_pcap_udp(DTMF_DIR / "rfc4733_pound.pcap")
    tracker = EventTracker()
    ends = [tracker.feed(80_000 + 16_000 * 11, d[12:]) for _, d in datagrams]  # RTP header is 12 bytes
    assert [(e.digit, e.duration_ticks) for e in ends if e is not None] == [("#", 1440)]


def test_own_dtmf_captures_are_what_the_generator_writes() -> None:
    written = dtmf_pcaps()
    assert sorted(written) == sorted(p.name for p in DTMF_DIR.glob("*.pcap"))
    for name, data in written.items():
        assert (DTMF_DIR / name).read_bytes() == data, (
            f"regenerate with: python -m tests.support.pcap ({name})"
        )


def test_sipp_captures_from_the_corpus_give_one_digit_each(reference_dir: Path) -> None:
    folder = reference_dir / "pcaps" / "sipp-rtp"
    captures = [(digit, folder / f"dtmf_2833_{name}.pcap") for digit, (_, name) in DTMF_EVENTS.items()]
    assert all(path.exists() for _, path in captures), f"SIPp DTMF captures missing under {folder}"
    _one_digit_each(captures)
