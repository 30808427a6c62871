"""From a captured frame to SIP messages and RTP datagrams: IP fragments and TCP streams put back together.

The first step of the passive recorder, free of calls and journals: link
layer, IP (fragments reassembled), UDP, and SIP over TCP re-framed from the
reassembled byte stream. Damage is counted by cause, never raised: one bad
frame must not stop a capture.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from callvault.sip.framing import frame_stream_message
from callvault.sip.message import SipRequest, SipResponse, parse_message
from callvault.wire.fragments import Reassembler
from callvault.wire.packets import UDP, Datagram, Fragment, decode_frame
from callvault.wire.tcp_streams import TcpStreams

_SIP_REQUEST_LINE = re.compile(rb"[A-Z]{3,12} [^ \r\n]{3,} SIP/2\.0\r?\n")
MAX_TCP_BUFFER = 256 * 1024


def looks_like_sip(payload: bytes) -> bool:
    # RTP's first byte is 0x80-0xBF; SIP starts with a capital letter: most packets stop here.
    if not payload or not 65 <= payload[0] <= 90:
        return False
    return payload.startswith(b"SIP/2.0 ") or _SIP_REQUEST_LINE.match(payload[:300]) is not None


@dataclass(frozen=True, slots=True)
class SipSeen:
    message: SipRequest | SipResponse
    src: tuple[str, int]
    dst: tuple[str, int]


class Demux:
    """Frames in; UDP datagrams (RTP candidates) and parsed SIP messages out."""

    def __init__(self, max_message: int = 65_535) -> None:
        self._fragments = Reassembler()
        self._tcp = TcpStreams()
        self._tcp_buffers: dict[tuple[tuple[str, int], tuple[str, int]], bytearray] = {}
        self._max_message = max_message
        self.damage: Counter[str] = Counter()

    def frame(self, at: float, linktype: int, data: bytes) -> Datagram | list[SipSeen] | None:
        """A UDP datagram that is not SIP, the SIP messages the frame completes, or None."""
        try:
            decoded = decode_frame(linktype, data)
            while isinstance(decoded, Fragment):  # a tunnel's inner packet may be fragmented too
                decoded = self._fragments.add(decoded, at)
        except ValueError as exc:
            self._count(exc)
            return None
        if decoded is None:
            return None
        if decoded.protocol == UDP:
            if looks_like_sip(decoded.payload):
                return self._sip(decoded.payload, decoded.src, decoded.dst, stream=False)
            return decoded
        return self._tcp_segment(decoded)

    def _count(self, exc: ValueError) -> None:
        # The cause without numbers, so counters stay few ("UDP length … does not fit …").
        words = [w for w in str(exc).split() if not any(ch.isdigit() for ch in w)]
        self.damage[" ".join(words[:6])] += 1

    def _sip(self, data: bytes, src: tuple[str, int], dst: tuple[str, int], *, stream: bool) -> list[SipSeen]:
        try:
            message = parse_message(data, stream=stream, max_size=self._max_message)
            message.call_id  # noqa: B018 - a message without Call-ID cannot belong to a dialog
        except ValueError:
            self.damage["SIP message does not parse"] += 1
            return []
        return [SipSeen(message, src, dst)]

    def _tcp_segment(self, segment: Datagram) -> list[SipSeen] | None:
        data = self._tcp.add(segment)
        if data is None:
            return None
        direction = data.direction
        if data.gap:
            self.damage["TCP bytes lost (SIP stream resynchronised)"] += 1
            self._tcp_buffers.pop(direction, None)
        buffer = self._tcp_buffers.get(direction)
        if buffer is None:
            if not looks_like_sip(data.data.lstrip(b"\r\n")):
                return None  # not SIP (or joined mid-message): wait for a message start
            buffer = self._tcp_buffers[direction] = bytearray()
        buffer += data.data
        seen: list[SipSeen] = []
        while buffer:
            try:
                message = frame_stream_message(buffer, self._max_message)
            except ValueError:
                self.damage["SIP over TCP cannot be framed"] += 1
                buffer.clear()
                break
            if message is None:
                break
            seen += self._sip(message, direction[0], direction[1], stream=True)
        if data.closed or not buffer or len(buffer) > MAX_TCP_BUFFER:
            self._tcp_buffers.pop(direction, None)
        return seen
