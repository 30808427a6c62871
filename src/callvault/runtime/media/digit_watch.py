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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from callvault.media.dtmf_detect import RATE, DtmfDetector
from callvault.media.g711 import ALAW_DECODE, ULAW_DECODE
from callvault.rtp.packet import RTP_HEADER_LENGTH, parse_headers

_FIRST_BYTE = itemgetter(0)
_SECOND_BYTE = itemgetter(1)
_NO_MARKER = bytes(b & 0x7F for b in range(256))  # payload type: the second byte less the marker bit
_LAWS = {"PCMU": ULAW_DECODE, "PCMA": ALAW_DECODE}


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

    def __post_init__(self) -> None:
        if self.g711 and self.detector is None:
            self.detector = DtmfDetector()

    @property
    def inband(self) -> bool:
        return bool(self.g711)

    def scan(self, arrivals: list[float], packets: list[bytes]) -> DigitSpan | None:
        """Digit activity in one flush's packets of the stream (in arrival order)."""
        if not packets:
            return None
        if min(map(len, packets)) < RTP_HEADER_LENGTH:
            # Runts (a peer may send anything) are no RTP: left out rather than read past their end.
            keep = [i for i, p in enumerate(packets) if len(p) >= RTP_HEADER_LENGTH]
            arrivals, packets = [arrivals[i] for i in keep], [packets[i] for i in keep]
            if not packets:
                return None
        span: DigitSpan | None = None
        if self.event_types:
            types = bytes(map(_SECOND_BYTE, packets)).translate(_NO_MARKER)
            for event_type in self.event_types:
                first = types.find(event_type)
                if first >= 0:
                    found = DigitSpan(arrivals[first], arrivals[types.rfind(event_type)], "rfc4733")
                    span = found.join(span)
        if self.detector is not None:
            inband = self._tones(arrivals, packets)
            if inband is not None:
                span = inband.join(span)
        return span

    def _tones(self, arrivals: list[float], packets: list[bytes]) -> DigitSpan | None:
        assert self.detector is not None
        pcm, owners = self._decode(packets)
        if pcm.size == 0:
            return None
        start = self.detector.fed
        activity = self.detector.feed(pcm)
        if activity is None:
            return None

        def when(sample: int) -> float:
            offset = sample - start
            if offset < 0:  # in an earlier flush's packets: count back from this one's first
                return arrivals[int(owners[0])] + offset / RATE
            return arrivals[int(owners[min(offset, owners.size - 1)])]

        return DigitSpan(when(activity.first), when(max(activity.last - 1, activity.first)), "inband")

    def _decode(self, packets: list[bytes]) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64]]:
        """The G.711 audio of ``packets`` and, per sample, the index of its packet."""
        size = len(packets[0])
        types = bytes(map(_SECOND_BYTE, packets)).translate(_NO_MARKER)
        law = _LAWS.get(self.g711.get(types[0], ""))
        if (
            law is not None
            and size > RTP_HEADER_LENGTH
            and types.count(types[0]) == len(packets)  # one payload type
            and bytes(map(_FIRST_BYTE, packets)).count(0x80) == len(packets)  # no padding, extension, CSRCs
            and all(len(p) == size for p in packets)
        ):
            # The common case: equal packets with a bare header, decoded in one lookup.
            codes = np.frombuffer(b"".join(packets), dtype=np.uint8).reshape(len(packets), size)
            pcm = law.take(codes[:, RTP_HEADER_LENGTH:]).reshape(-1)
            per = size - RTP_HEADER_LENGTH
            return pcm, np.repeat(np.arange(len(packets), dtype=np.int64), per)
        return self._decode_each(packets)

    def _decode_each(self, packets: list[bytes]) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64]]:
        headers = parse_headers(packets)
        parts: list[npt.NDArray[np.int16]] = []
        owners: list[npt.NDArray[np.int64]] = []
        for i, packet in enumerate(packets):
            if not headers.valid[i]:
                continue
            law = _LAWS.get(self.g711.get(int(headers.payload_type[i]), ""))
            if law is None:
                continue  # events, comfort noise, another codec
            payload = packet[int(headers.payload_start[i]) : int(headers.payload_end[i])]
            parts.append(law.take(np.frombuffer(payload, dtype=np.uint8)))
            owners.append(np.full(len(payload), i, dtype=np.int64))
        if not parts:
            return np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int64)
        return np.concatenate(parts), np.concatenate(owners)
