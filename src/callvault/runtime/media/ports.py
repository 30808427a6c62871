"""Binding RTP sockets from the configured port range.

RTP gets even ports (RFC 3550 §11: RTCP, when used, takes the next odd one;
callvault ignores RTCP, so the odd port is left free).

Ports are chosen at random among the free ones (``SystemRandom``): with
predictable ports (the next one after the last call's) anyone who can reach
the range can send to a call's port before the SRC's first packet arrives,
and capture latches a stream to the first source it hears from
(:mod:`.capture`). A port released by one call is held back (up to
``QUARANTINE`` of them, oldest first out) while other ports are free, so late
packets of the old call do not land in the next one.
"""

from __future__ import annotations

import logging
import random
import resource
import socket
from collections import deque

from callvault.errors import Overloaded

log = logging.getLogger(__name__)

RECEIVE_BUFFER = 256 * 1024
QUARANTINE = 256


def raise_descriptor_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the limit now in force.

    Each stream holds two sockets once it has latched (see :mod:`.capture`), so
    the common soft default of 1,024 would cap a recorder at ~250 calls.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return soft


class PortAllocator:
    def __init__(self, host: str, port_range: tuple[int, int], rng: random.Random | None = None) -> None:
        low, high = port_range
        self._host = host
        self._low = low + (low & 1)
        self._high = high
        if self._low > self._high:
            raise ValueError(f"RTP port range {low}-{high} holds no even port")
        self._rng = rng if rng is not None else random.SystemRandom()
        self._free: list[int] = list(range(self._low, self._high + 1, 2))
        self._quarantine: deque[int] = deque()
        self._in_use: set[int] = set()
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET

    @property
    def capacity(self) -> int:
        return (self._high - self._low) // 2 + 1

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def _take(self) -> int | None:
        free = self._free
        if free:
            index = self._rng.randrange(len(free))
            free[index], free[-1] = free[-1], free[index]
            return free.pop()
        if self._quarantine:
            return self._quarantine.popleft()
        return None

    def bind(self) -> socket.socket:
        """A non-blocking UDP socket bound to a random free even port; ``Overloaded`` when none is left."""
        busy: list[int] = []  # bound by another process: tried again by later calls
        try:
            while (port := self._take()) is not None:
                sock = socket.socket(self._family, socket.SOCK_DGRAM)
                try:
                    sock.bind((self._host, port))
                except OSError:
                    sock.close()
                    busy.append(port)
                    continue
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
                except OSError:
                    pass  # capped by net.core.rmem_max; the default still holds ~1 s of RTP
                sock.setblocking(False)
                self._in_use.add(port)
                return sock
        finally:
            self._free.extend(busy)
        raise Overloaded(f"no free RTP port in {self._low}-{self._high} on {self._host}")

    def bind_many(self, count: int) -> list[socket.socket]:
        """``count`` sockets, or none at all (``Overloaded``) when the range cannot hold them."""
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sockets.append(self.bind())
        except Overloaded:
            for sock in sockets:
                self.release(sock)
            raise
        return sockets

    def release(self, sock: socket.socket) -> None:
        try:
            port = sock.getsockname()[1]
        except OSError:
            port = None
        sock.close()
        if port is None or port not in self._in_use:
            return
        self._in_use.discard(port)
        self._quarantine.append(port)
        while len(self._quarantine) > QUARANTINE:
            self._free.append(self._quarantine.popleft())
