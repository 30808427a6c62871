"""Keypad digits on one captured stream, found before the stream's packets are journalled.

Capture hands each flush's packets of a watched stream to its
:class:`DigitWatch`, which answers when digits sounded in them (arrival
times), never which digits:

* RFC 4733 telephone events: the payload type byte of each packet, read in C
  (``bytes(map(...))``, ``translate``, ``find``) without a Python step per
  packet; SRTP leaves the header, and so the payload type, in the clear.
* In-band tones (:mod:`callvault.media.dtmf_detect`) in G.711 audio: the
  payloads decoded by table lookup and run through the Goertzel detector. Only
  plain RTP: an SRTP payload cannot be read without the key and the rollover
  state, which stay with the renderer, so SRTP calls rely on RFC 4733 (an SBC
  converts in-band digits to events). G.722, G.729 and Opus are not decoded
  here either: a codec built for speech mangles keypad tones, which is why
  SBCs send them as RFC 4733 events.

What the watch finds is an activity span; the capture session
(:mod:`.withholding`) turns it into a silence of the whole call.

One digit is also read for what it is: the consent digit
(``CALLVAULT_CONSENT_DTMF_DIGIT``). Where one is set, the RFC 4733 events of a
watched stream are read for their event code, and a press of that key (once
per event, however many packets repeat it) is noted in :attr:`DigitWatch.pressed`
for capture to report; no other key is ever read. The event payload of SRTP is
encrypted, so the consent digit is read on plain RTP only. A watch that only
looks for the consent digit (``pauses`` False: PCI digit pauses are off)
reports no activity spans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from callvault.media.codec_spec import CodecSpec
from callvault.media.dtmf_detect import BLOCK, RATE, DtmfDetector, KeyActivity, classify
from callvault.media.g711 import ALAW_DECODE, ULAW_DECODE
from callvault.rtp.packet import RTP_HEADER_LENGTH, parse_headers

_FIRST_BYTE = itemgetter(0)
_SECOND_BYTE = itemgetter(1)
_NO_MARKER = bytes(b & 0x7F for b in range(256))  # payload type: the second byte less the marker bit
# Decoded straight to the detector's float32, in one lookup.
_LAWS = {"PCMU": ULAW_DECODE.astype(np.float32), "PCMA": ALAW_DECODE.astype(np.float32)}


# RFC 4733 section 3.2: the event codes of the keypad.
_KEYPAD_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11}


def consent_event_code(digit: str) -> int:
    """The RFC 4733 event code of a keypad digit (``9`` → 9, ``*`` → 10, ``#`` → 11); -1 for none."""
    return _KEYPAD_EVENTS.get(digit, -1)


def digits_to_watch(codecs: list[CodecSpec], srtp: bool, inband: bool) -> tuple[list[int], dict[int, str]]:
    """What to look for on a stream offering ``codecs``: its telephone-event payload types, and
    (``inband``, plain RTP only) its G.711 payload types to decode."""
    events = [c.payload_type for c in codecs if c.is_telephone_event]
    g711 = {c.payload_type: c.encoding for c in codecs if c.encoding in _LAWS} if inband and not srtp else {}
    return events, g711


@dataclass(frozen=True)
class DigitSpan:
    """Digits sounded from ``first`` to ``last`` (arrival times, seconds); ``how`` found them."""

    first: float
    last: float
    how: str  # "rfc4733" or "inband"

    def join(self, other: DigitSpan | None) -> DigitSpan:
        if other is None:
            return self
        how = self.how if self.first <= other.first else other.how
        return DigitSpan(min(self.first, other.first), max(self.last, other.last), how)


@dataclass
class DigitWatch:
    """What to look for on one stream: telephone-event payload types, G.711 payload types to decode."""

    event_types: bytes = b""  # payload type numbers, one byte each
    g711: dict[int, str] = field(default_factory=dict)  # payload type -> "PCMU" | "PCMA"
    detector: DtmfDetector | None = None
    pauses: bool = True  # digit activity pauses the call (PCI); False: only the consent digit is looked for
    consent_event: int = -1  # the RFC 4733 event code of the consent digit; -1: none
    stream: int = -1  # the stream's index in its session (for reports)
    pressed: float | None = None  # arrival of a consent-digit press not yet reported
    _consent_stamp: int = -1  # RTP timestamp of the last press seen (one event, many packets)

    def __post_init__(self) -> None:
        if self.g711 and self.detector is None:
            self.detector = DtmfDetector()

    @property
    def inband(self) -> bool:
        return bool(self.g711)

    def scan(self, arrivals: list[float], packets: list[bytes]) -> DigitSpan | None:
        """Digit activity in one flush's packets of the stream (in arrival order)."""
        return scan_many([(self, arrivals, packets)])[0]

    def _events(self, arrivals: list[float], types: bytes) -> DigitSpan | None:
        span: DigitSpan | None = None
        for event_type in self.event_types:
            first = types.find(event_type)
            if first >= 0:
                found = DigitSpan(arrivals[first], arrivals[types.rfind(event_type)], "rfc4733")
                span = found.join(span)
        return span

    def _consent(self, arrivals: list[float], packets: list[bytes], types: bytes) -> None:
        """Note a new press of the consent digit among this flush's telephone events."""
        for event_type in self.event_types:
            at = types.find(event_type)
            while at >= 0:
                press = _event_press(packets[at])
                if press is not None and press[0] == self.consent_event and press[1] != self._consent_stamp:
                    self._consent_stamp = press[1]
                    if self.pressed is None:
                        self.pressed = arrivals[at]
                at = types.find(event_type, at + 1)

    def _block_law(self, packets: list[bytes], types: bytes) -> str | None:
        """The law of ``packets`` when they are one block each (20 ms of G.711 behind a bare
        header) and the detector is at a block boundary: then they join the batch of all streams."""
        law = self.g711.get(types[0])
        if (
            law is None
            or self.detector is None
            or not self.detector.aligned
            or len(packets[0]) != RTP_HEADER_LENGTH + BLOCK
            or types.count(types[0]) != len(packets)  # one payload type
            or bytes(map(_FIRST_BYTE, packets)).count(0x80) != len(packets)  # no padding, extension, CSRCs
            or len(set(map(len, packets))) != 1
        ):
            return None
        return law

    def _tones(self, arrivals: list[float], packets: list[bytes]) -> DigitSpan | None:
        """In-band keys in packets of any shape (the general path, one stream at a time)."""
        assert self.detector is not None
        pcm, sizes = self._decode_each(packets)
        if pcm.size == 0:
            return None
        start = self.detector.fed
        return _span(self.detector.feed(pcm), start, arrivals, np.cumsum(sizes))

    def _decode_each(self, packets: list[bytes]) -> tuple[npt.NDArray[np.float32], list[int]]:
        headers = parse_headers(packets)
        parts: list[npt.NDArray[np.float32]] = []
        sizes: list[int] = []
        for i, packet in enumerate(packets):
            law = _LAWS.get(self.g711.get(int(headers.payload_type[i]), "")) if headers.valid[i] else None
            if law is None:
                sizes.append(0)  # events, comfort noise, another codec, not RTP
                continue
            payload = packet[int(headers.payload_start[i]) : int(headers.payload_end[i])]
            parts.append(law.take(np.frombuffer(payload, dtype=np.uint8)))
            sizes.append(len(payload))
        if not parts:
            return np.zeros(0, dtype=np.float32), sizes
        return np.concatenate(parts), sizes


def _span(
    activity: KeyActivity | None, start: int, arrivals: list[float], ends: npt.NDArray[np.int64]
) -> DigitSpan | None:
    """``activity`` (sample positions) as arrival times; ``ends``: where each packet's samples end,
    counted from ``start``, the position of this flush's first sample."""
    if activity is None:
        return None

    def when(sample: int) -> float:
        offset = sample - start
        if offset < 0:  # in an earlier flush's packets: count back from this one's first
            return arrivals[0] + offset / RATE
        return arrivals[min(int(np.searchsorted(ends, offset, side="right")), len(arrivals) - 1)]

    return DigitSpan(when(activity.first), when(max(activity.last - 1, activity.first)), "inband")


def _event_press(packet: bytes) -> tuple[int, int] | None:
    """(event code, RTP timestamp) of an RFC 4733 packet; None when it is too short to hold one."""
    first = packet[0]
    start = RTP_HEADER_LENGTH + 4 * (first & 0x0F)
    if first & 0x10 and len(packet) >= start + 4:  # a header extension: skip it
        start += 4 + 4 * int.from_bytes(packet[start + 2 : start + 4], "big")
    if len(packet) < start + 4:
        return None
    return packet[start], int.from_bytes(packet[4:8], "big")


def _usable(arrivals: list[float], packets: list[bytes]) -> tuple[list[float], list[bytes], bytes]:
    """The packets long enough to be RTP and their payload types (runts are left out, not read past)."""
    try:
        return arrivals, packets, bytes(map(_SECOND_BYTE, packets)).translate(_NO_MARKER)
    except IndexError:
        keep = [i for i, p in enumerate(packets) if len(p) >= RTP_HEADER_LENGTH]
        arrivals, packets = [arrivals[i] for i in keep], [packets[i] for i in keep]
        return arrivals, packets, bytes(map(_SECOND_BYTE, packets)).translate(_NO_MARKER)


def scan_many(items: list[tuple[DigitWatch, list[float], list[bytes]]]) -> list[DigitSpan | None]:
    """:meth:`DigitWatch.scan` of many streams' flushes at once.

    The common in-band case, 20 ms of plain G.711 per packet, goes through one
    decode and one Goertzel matrix product for all the streams together: numpy's
    cost per call, not per sample, dominates a single stream's second of audio,
    so the capture loop hands over every session due in one flush tick.
    """
    spans: list[DigitSpan | None] = []
    batches: dict[str, list[tuple[int, DigitWatch, list[float], list[bytes]]]] = {}
    for position, (watch, arrivals, packets) in enumerate(items):
        arrivals, packets, types = _usable(arrivals, packets) if packets else (arrivals, packets, b"")
        if packets and watch.consent_event >= 0:
            watch._consent(arrivals, packets, types)
        spans.append(watch._events(arrivals, types) if packets and watch.pauses else None)
        if not packets or watch.detector is None:
            continue
        law = watch._block_law(packets, types)
        if law is not None:
            batches.setdefault(law, []).append((position, watch, arrivals, packets))
            continue
        found = watch._tones(arrivals, packets)
        if found is not None:
            spans[position] = found.join(spans[position])
    for law, members in batches.items():
        joined = b"".join(b"".join(packets) for _, _, _, packets in members)
        codes = np.frombuffer(joined, dtype=np.uint8).reshape(-1, RTP_HEADER_LENGTH + BLOCK)
        keys = classify(_LAWS[law].take(codes[:, RTP_HEADER_LENGTH:]))
        at = 0
        for position, watch, arrivals, packets in members:
            detector = watch.detector
            assert detector is not None
            start = detector.fed
            activity = detector.feed_keys(keys[at : at + len(packets)])
            at += len(packets)
            if activity is not None:
                found = _span(activity, start, arrivals, np.arange(1, len(packets) + 1) * BLOCK)
                spans[position] = found.join(spans[position]) if found is not None else spans[position]
    return spans
