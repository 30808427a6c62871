from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from rtp_streams import read_pcap_udp

from callvault.rtp.telephone_event import EventPayload, EventTracker, event_name
from callvault.rtp.timeline import StreamTimeline

SIPP_DIR = Path("/usr/share/sip-tester")
REFERENCE = Path(
    os.environ.get("CALLVAULT_REFERENCE_DIR", Path(__file__).parents[2].parent / "shared" / "reference")
)


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


def sipp_pcaps() -> list[tuple[str, Path]]:
    names = {str(d): f"dtmf_2833_{d}.pcap" for d in range(10)}
    names.update({"*": "dtmf_2833_star.pcap", "#": "dtmf_2833_pound.pcap"})
    folders = [SIPP_DIR, REFERENCE / "pcaps" / "sipp-rtp"]
    found = []
    for digit, name in names.items():
        path = next((f / name for f in folders if (f / name).exists()), None)
        if path is not None:
            found.append((digit, path))
    return found


def test_sipp_reference_captures_give_one_digit_each() -> None:
    assert len(sipp_pcaps()) == 12, f"SIPp DTMF captures missing under {REFERENCE} and {SIPP_DIR}"
    for digit, path in sipp_pcaps():
        datagrams = read_pcap_udp(path)
        timeline = StreamTimeline(8000, {0, 8}, {101})
        timeline.add_batch(np.array([t for t, _ in datagrams]), [d for _, d in datagrams])
        events = timeline.events()
        assert [e.event.digit for e in events] == [digit], path
        assert events[0].event.duration_ticks > 0
        assert timeline.stats.duplicated == 2  # the end packet is sent three times
