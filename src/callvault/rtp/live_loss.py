"""Packet loss of a stream in progress, for the live calls page: cheap, approximate, sans-IO.

The finished recording's exact figures come from the renderer
(:mod:`callvault.rtp.stats`: distinct sequence numbers per SSRC). While the
call runs, capture does no per-packet parsing (see
:mod:`callvault.runtime.media.capture`), so this counter looks at two
datagrams per flush: the first and the last new one of the stream. The
sequence numbers between them are taken as expected and the number of
datagrams read as received, so ``lost = expected - received``:

* a packet reordered across a flush boundary is counted when it arrives and
  its gap was counted already: the figure is right once the flush is over;
* duplicates count as received (they hide as much loss as they add, as in
  RFC 3550's cumulative loss, which may go negative; this one is clamped at 0);
* an SSRC change (an SBC re-anchoring the call) restarts the sequence: the
  flush that sees it counts its packets as expected, never a jump as loss.

A datagram that is not RTP version 2 or shorter than its 12-byte header is
counted as received and moves nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

HALF = 0x8000  # sequence numbers are 16 bits; a step of half the space or more is backwards


def _header(datagram: bytes) -> tuple[int, bytes] | None:
    """(sequence number, SSRC) of an RTP datagram, or None for anything else."""
    if len(datagram) < 12 or datagram[0] >> 6 != 2:
        return None
    return (datagram[2] << 8) | datagram[3], datagram[8:12]


@dataclass
class LiveLoss:
    received: int = 0
    expected: int = 0
    _last: int = -1
    _ssrc: bytes = b""

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def add(self, first: bytes, last: bytes, count: int) -> None:
        """``count`` new datagrams arrived since the last flush, ``first`` and ``last`` of them."""
        self.received += count
        head, tail = _header(first), _header(last)
        if head is None or tail is None:
            self.expected += count
            return
        if self._last < 0 or head[1] != self._ssrc or tail[1] != head[1]:
            step = count  # a new sequence: nothing before its first packet is expected
            if head[1] == tail[1]:
                span = (tail[0] - head[0]) & 0xFFFF
                step = span + 1 if span < HALF else count
        else:
            span = (tail[0] - self._last) & 0xFFFF
            if span >= HALF:  # the last new packet is older than one seen before: reordered
                return
            step = span
        self.expected += step
        self._last, self._ssrc = tail[0], tail[1]

    def figures(self) -> dict[str, int]:
        return {"received": self.received, "expected": self.expected, "lost": self.lost}
