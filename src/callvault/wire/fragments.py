"""IP fragment reassembly, bounded: large SIP INVITEs over UDP arrive in fragments.

A datagram is reassembled once its last fragment is in and the pieces
cover it without holes. Overlapping fragments (a classic evasion trick) and
datagrams over 64 KiB are refused; incomplete datagrams are forgotten after
``timeout`` seconds of capture time, and at most ``max_pending`` are kept,
so a hostile capture cannot grow memory without bound.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from callvault.wire.packets import Datagram, Fragment, transport

MAX_DATAGRAM = 65_535


@dataclass
class _Pending:
    first_seen: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None
    size: int = 0


class Reassembler:
    def __init__(self, timeout: float = 30.0, max_pending: int = 4096) -> None:
        self._timeout = timeout
        self._max_pending = max_pending
        self._pending: OrderedDict[tuple[str, str, int, int], _Pending] = OrderedDict()
        self.expired = 0  # datagrams given up on (timeout or pressure)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, fragment: Fragment, now: float) -> Datagram | Fragment | None:
        """The whole datagram once ``fragment`` completes it (or, for a tunnel, a fragment of the packet
        inside); ValueError for overlaps or oversize."""
        self._expire(now)
        pending = self._pending.get(fragment.key)
        if pending is None:
            if len(self._pending) >= self._max_pending:
                self._pending.popitem(last=False)
                self.expired += 1
            pending = self._pending[fragment.key] = _Pending(now)
        end = fragment.offset + len(fragment.data)
        if end > MAX_DATAGRAM:
            del self._pending[fragment.key]
            raise ValueError(f"fragments reassemble to over {MAX_DATAGRAM} bytes")
        for start, data in pending.pieces.items():
            if (
                start < end
                and fragment.offset < start + len(data)
                and (start, data) != (fragment.offset, fragment.data)
            ):
                del self._pending[fragment.key]
                raise ValueError("overlapping IP fragments")
        pending.pieces[fragment.offset] = fragment.data
        if not fragment.more:
            pending.total = end
        if pending.total is None:
            return None
        covered = 0
        for start in sorted(pending.pieces):
            if start > covered:
                return None
            covered = max(covered, start + len(pending.pieces[start]))
        if covered < pending.total:
            return None
        del self._pending[fragment.key]
        body = b"".join(pending.pieces[s] for s in sorted(pending.pieces))[: pending.total]
        src, dst, protocol, _ = fragment.key
        return transport(protocol, src, dst, body)

    def _expire(self, now: float) -> None:
        while self._pending:
            key, oldest = next(iter(self._pending.items()))
            if now - oldest.first_seen <= self._timeout:
                return
            del self._pending[key]
            self.expired += 1
