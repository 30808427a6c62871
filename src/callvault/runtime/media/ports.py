"""Binding RTP sockets from the configured port range.

RTP gets even ports (RFC 3550 §11: RTCP, when used, takes the next odd one;
callvault ignores RTCP, so the odd port is left free). Ports are handed out
round-robin from a cursor rather than lowest-free-first, so a port released
by one call is not immediately given to the next call while late packets of
the old call may still arrive.
"""

from __future__ import annotations

import socket

from callvault.errors import Overloaded

RECEIVE_BUFFER = 256 * 1024


class PortAllocator:
    def __init__(self, host: str, port_range: tuple[int, int]) -> None:
        low, high = port_range
        self._host = host
        self._low = low + (low & 1)
        self._high = high
        if self._low > self._high:
            raise ValueError(f"RTP port range {low}-{high} holds no even port")
        self._cursor = self._low
        self._in_use: set[int] = set()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._family = family

    @property
    def capacity(self) -> int:
        return (self._high - self._low) // 2 + 1

    def bind(self) -> socket.socket:
        """A non-blocking UDP socket bound to the next free even port."""
        for _ in range(self.capacity):
            port = self._cursor
            self._cursor = port + 2 if port + 2 <= self._high else self._low
            if port in self._in_use:
                continue
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.bind((self._host, port))
            except OSError:
                sock.close()
                continue  # taken by another process
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                pass  # capped by net.core.rmem_max; the default still holds ~1 s of RTP
            sock.setblocking(False)
            self._in_use.add(port)
            return sock
        raise Overloaded(f"no free RTP port in {self._low}-{self._high} on {self._host}")

    def release(self, sock: socket.socket) -> None:
        try:
            port = sock.getsockname()[1]
        except OSError:
            port = None
        sock.close()
        if port is not None:
            self._in_use.discard(port)
