"""TCP stream reassembly for SIP over TCP: segments back into each direction's byte stream.

Each direction of a connection is followed by sequence number: retransmitted
bytes are dropped, out-of-order segments wait (bounded) for the hole before
them to fill. A capture that starts mid-connection takes its first segment
as the start. A hole that never fills (the sniffer lost a segment) is given
up on once more than ``max_buffered`` bytes wait behind it: the stream
restarts there and the caller is told (``gap``) to discard any partial
message, since the SIP framing cannot be trusted across a hole.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from callvault.wire.packets import Datagram

SYN, FIN, RST = 0x02, 0x01, 0x04
_MOD = 1 << 32

Direction = tuple[tuple[str, int], tuple[str, int]]


@dataclass
class _Stream:
    next_seq: int
    waiting: dict[int, bytes] = field(default_factory=dict)
    buffered: int = 0


@dataclass(frozen=True, slots=True)
class StreamData:
    direction: Direction
    data: bytes  # in-order bytes newly available
    gap: bool  # bytes were lost before ``data``: drop any partial message
    closed: bool  # FIN or RST: the direction ended


class TcpStreams:
    def __init__(self, max_streams: int = 10_000, max_buffered: int = 256 * 1024) -> None:
        self._streams: OrderedDict[Direction, _Stream] = OrderedDict()
        self._max_streams = max_streams
        self._max_buffered = max_buffered
        self.gaps = 0

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, segment: Datagram) -> StreamData | None:
        """In-order bytes this segment makes available (or a close), else None."""
        direction = (segment.src, segment.dst)
        if segment.flags & (RST | FIN) and not segment.payload:
            self._streams.pop(direction, None)
            return StreamData(direction, b"", False, True)
        stream = self._streams.get(direction)
        if segment.flags & SYN:
            self._track(direction, _Stream((segment.seq + 1) % _MOD))
            return None
        if stream is None:
            if not segment.payload:
                return None
            stream = self._track(direction, _Stream(segment.seq))
        self._streams.move_to_end(direction)
        return self._accept(direction, stream, segment)

    def _track(self, direction: Direction, stream: _Stream) -> _Stream:
        if direction not in self._streams and len(self._streams) >= self._max_streams:
            self._streams.popitem(last=False)
        self._streams[direction] = stream
        return stream

    def _accept(self, direction: Direction, stream: _Stream, segment: Datagram) -> StreamData | None:
        ahead = (segment.seq - stream.next_seq) % _MOD
        payload = segment.payload
        if ahead >= _MOD // 2:  # starts before what we have: a retransmission, maybe with new bytes
            behind = _MOD - ahead
            if behind >= len(payload):
                return None
            payload, ahead = payload[behind:], 0
        if ahead > 0:
            if stream.buffered + len(payload) <= self._max_buffered:
                if segment.seq not in stream.waiting:
                    stream.waiting[segment.seq] = payload
                    stream.buffered += len(payload)
                return None
            return self._skip_hole(direction, stream, segment)
        out = bytearray(payload)
        stream.next_seq = (stream.next_seq + len(payload)) % _MOD
        self._drain(stream, out)
        closed = bool(segment.flags & (FIN | RST))
        if closed:
            self._streams.pop(direction, None)
        return StreamData(direction, bytes(out), False, closed) if out or closed else None

    def _drain(self, stream: _Stream, out: bytearray) -> None:
        while stream.waiting:
            progressed = False
            for seq in list(stream.waiting):
                offset = (stream.next_seq - seq) % _MOD
                data = stream.waiting[seq]
                if offset < _MOD // 2:  # starts at or before next_seq
                    del stream.waiting[seq]
                    stream.buffered -= len(data)
                    if offset < len(data):
                        out += data[offset:]
                        stream.next_seq = (stream.next_seq + len(data) - offset) % _MOD
                    progressed = True
            if not progressed:
                return

    def _skip_hole(self, direction: Direction, stream: _Stream, segment: Datagram) -> StreamData:
        """Give up on a hole that never filled: restart at the earliest waiting byte."""
        self.gaps += 1
        waiting = dict(stream.waiting)
        waiting.setdefault(segment.seq, segment.payload)
        start = min(waiting, key=lambda seq: (seq - stream.next_seq) % _MOD)
        fresh = _Stream(start, waiting, sum(len(d) for d in waiting.values()))
        self._streams[direction] = fresh
        out = bytearray()
        self._drain(fresh, out)
        return StreamData(direction, bytes(out), True, False)
