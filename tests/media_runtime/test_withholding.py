"""What capture keeps off the disk, flush by flush: silences, keypad digits, the hold-back, the counts."""

from __future__ import annotations

import struct

import numpy as np

from callvault.media.g711 import ulaw_encode
from callvault.runtime.media.capture import CaptureLoop, CaptureSession, CaptureStream
from callvault.runtime.media.digit_watch import DigitWatch
from callvault.runtime.media.withholding import DIGIT_LEAD_SECONDS, HOLDBACK_SECONDS, Withholding

EVENT_PT = 101


def rtp(seq: int, payload: bytes, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, 0x1234) + payload


def event(seq: int, key: int = 5, end: bool = False) -> bytes:
    return rtp(seq, struct.pack("!BBH", key, (0x80 if end else 0) | 10, 800), EVENT_PT)


SILENT = bytes([0xFF]) * 160


class Reports:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float, str]] = []

    def __call__(self, name: str, state: str, at: float, how: str) -> None:
        self.seen.append((name, state, at, how))


def flush(
    w: Withholding,
    batches: dict[int, list[tuple[float, bytes]]],
    now: float,
    final: bool = False,
    watches: dict[int, DigitWatch] | None = None,
):
    records = [(i, [a for a, _ in items], [p for _, p in items]) for i, items in batches.items()]
    return {index: (arrivals, packets) for index, arrivals, packets in w.apply(records, now, final, watches)}


def seqs(packets: list[bytes]) -> list[int]:
    return [int.from_bytes(p[2:4], "big") for p in packets]


def test_a_silence_drops_its_packets_and_counts_only_those_between_stored_ones() -> None:
    w = Withholding(5.0, Reports())
    w.set_interval("api:1", None, 10.0, 10.5)
    w.set_interval("consent:2", frozenset({1}), 10.8, None)  # the customer side, open-ended
    agent = [(10.0 + 0.1 * i, rtp(i, SILENT)) for i in range(12)]
    customer = [(10.0 + 0.1 * i, rtp(100 + i, SILENT)) for i in range(12)]
    out = flush(w, {0: agent, 1: customer}, now=12.0)
    assert seqs(out[0][1]) == [5, 6, 7, 8, 9, 10, 11]
    assert seqs(out[1][1]) == [105, 106, 107]  # 10.5-10.7, then the customer's silence
    # Agent: 0-4 were before its first stored packet, outside its sequence range: not counted.
    # Customer: nothing yet lies between two stored packets.
    assert w.withheld_totals() == []
    w.set_interval("consent:2", frozenset({1}), 10.8, 12.5)
    out = flush(
        w, {0: [(12.6, rtp(12, SILENT))], 1: [(12.4, rtp(112, SILENT)), (12.6, rtp(113, SILENT))]}, 13.0
    )
    assert seqs(out[1][1]) == [113]
    # Customer 108-112 now lie between stored 107 and 113: five packets that are not lost.
    assert w.withheld_totals() == [(1, 5)]
    assert w.withheld_totals() == []  # reported once
    w.mark_unreported(1)
    assert w.withheld_totals() == [(1, 5)]  # a failed write is reported again


def test_a_first_silence_mid_call_counts_from_the_packets_already_journalled() -> None:
    w = Withholding(5.0, Reports())
    w.journalled_before([0])
    w.set_interval("api:1", None, 1.0, 1.2)
    flush(w, {0: [(1.0, rtp(50, SILENT)), (1.1, rtp(51, SILENT)), (1.3, rtp(52, SILENT))]}, 2.0)
    assert w.withheld_totals() == [(0, 2)]


def test_rfc4733_digits_silence_every_stream_from_before_the_first_until_after_the_last() -> None:
    reports = Reports()
    w = Withholding(2.0, reports)
    watches = {0: DigitWatch(bytes([EVENT_PT])), 1: DigitWatch(bytes([EVENT_PT]))}
    audio = [(20.0 + 0.02 * i, rtp(i, SILENT)) for i in range(50)]
    keyed = audio[:25] + [(20.5 + 0.02 * i, event(25 + i, end=i == 4)) for i in range(5)] + audio[30:]
    out = flush(w, {0: audio, 1: keyed}, now=21.0, watches=watches)
    start = 20.5 - DIGIT_LEAD_SECONDS
    assert reports.seen == [("dtmf:1", "start", start, "rfc4733")]
    for index in (0, 1):
        kept = out[index][0]
        assert kept and max(kept) < start  # the event packets and both sides from then on
    # The last event packet arrived at 20.58; the silence ends two seconds later.
    out = flush(w, {0: [(22.0, rtp(60, SILENT))], 1: [(22.0, rtp(60, SILENT))]}, now=22.3, watches=watches)
    assert out == {} and len(reports.seen) == 1
    later = [(22.6 + 0.02 * i, rtp(90 + i, SILENT)) for i in range(5)]
    out = flush(w, {0: later, 1: later}, now=22.8, watches=watches)
    assert reports.seen[1] == ("dtmf:1", "end", 20.58 + 2.0, "rfc4733")
    assert seqs(out[0][1]) == [90, 91, 92, 93, 94]  # all after the end (22.58)
    assert all(not p[1] & 0x7F == EVENT_PT for packets in out.values() for p in packets[1])


def test_the_hold_back_lets_a_tone_that_began_in_the_last_flush_be_blanked_whole() -> None:
    # Capture's side: the buffers of a session whose stream is watched, flushed by hand.
    reports = Reports()
    capture = CaptureLoop(lambda key: None, on_digits=lambda *args: reports(*args[1:]), digits_resume=1.0)
    session = CaptureSession("call", None, 1.0, 60.0, 0.0)  # type: ignore[arg-type]
    written: list[tuple[int, list[float], list[bytes]]] = []
    session.backlog.write = lambda batches, now: written.extend(batches) or True  # type: ignore[method-assign]
    session.writer = type("Writer", (), {"write_event": lambda *a: None})()  # type: ignore[assignment]
    stream = CaptureStream(fd=-1, index=0, key="call")
    session.streams.append(stream)
    capture._sessions["call"] = session
    stream.watch = DigitWatch(g711={0: "PCMU"})
    session.holdback = HOLDBACK_SECONDS
    capture._withholding(session)
    t = np.arange(1200) / 8000
    tone = (6000 * (np.sin(2 * np.pi * 770 * t) + np.sin(2 * np.pi * 1336 * t))).astype(np.int16)  # key 5
    pcm = np.concatenate([np.zeros(8000, np.int16), tone, np.zeros(4000, np.int16)])
    payloads = ulaw_encode(pcm)
    packets = [(30.0 + 0.02 * i, rtp(i, payloads[160 * i : 160 * (i + 1)])) for i in range(pcm.size // 160)]

    def arrive(until: float) -> None:
        while packets and packets[0][0] < until:
            stream.buffer.extend(packets.pop(0))

    # The first flush comes 20 ms into the tone (packet 50 arrived at 31.0): too early to tell.
    arrive(31.02)
    capture._flush(session, 31.02)
    assert reports.seen == []
    assert written and max(max(a) for _, a, _ in written) < 31.02 - HOLDBACK_SECONDS
    assert stream.held and len(stream.buffer) == 2 * stream.held  # the young packets wait
    arrive(31.4)
    capture._flush(session, 31.4)
    [(_, state, start, how)] = reports.seen
    assert (state, how) == ("start", "inband")
    assert 31.0 - DIGIT_LEAD_SECONDS - 0.02 <= start <= 31.0 - DIGIT_LEAD_SECONDS + 0.001
    # Nothing of the tone reached the journal, in either flush: it starts with packet 50.
    assert max(seq for _, _, batch in written for seq in seqs(batch)) < 50
    arrive(40.0)
    capture._flush(session, 40.0, final=True)  # hang-up: nothing held back, the pause to the end
    assert not stream.buffer and not stream.held
    assert seqs([p for _, _, batch in written for p in batch]) == list(range(45))


def test_runts_and_other_payload_types_do_not_trip_the_watch() -> None:
    reports = Reports()
    w = Withholding(1.0, reports)
    watches = {0: DigitWatch(bytes([EVENT_PT]), {0: "PCMU"})}
    odd = [
        (1.0, b""),
        (1.01, b"\x80"),
        (1.02, rtp(1, b"")),
        (1.03, rtp(2, SILENT, pt=8)),
        (1.04, rtp(3, SILENT)),
    ]
    out = flush(w, {0: odd}, now=2.0, watches=watches)
    assert reports.seen == [] and len(out[0][1]) == 5  # kept as received: the renderer judges them


def test_ended_silences_are_forgotten_and_an_idle_session_costs_nothing() -> None:
    w = Withholding(1.0, Reports())
    assert w.idle
    w.set_interval("api:1", None, 1.0, 2.0)
    w.set_interval("api:1", None, 1.0, None)  # a late repeat of the start does not reopen it
    assert w.intervals["api:1"].end == 2.0
    flush(w, {0: [(2.5, rtp(1, SILENT))]}, now=6.5)
    assert w.intervals and not w.idle
    flush(w, {0: [(7.6, rtp(2, SILENT))]}, now=8.0)
    assert w.intervals == {} and w.idle
