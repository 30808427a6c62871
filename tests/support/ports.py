"""Ports for servers under test, on a machine where other test runs take ports too.

A port found free for TCP says nothing about UDP (SIP binds both on one port),
and a fixed RTP range collides with every other fixture or run that uses it.
"""

from __future__ import annotations

import random
import socket


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(kind: int | None = None) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (``kind`` is ignored: both are checked)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if _bindable(port, socket.SOCK_DGRAM):
            return port
    raise AssertionError("no port free for both TCP and UDP")


def rtp_range(size: int = 100) -> str:
    """``LOW-HIGH`` of ``size`` ports whose even ports are all free for UDP right now."""
    for _ in range(200):
        low = random.randrange(30000, 60000 - size, 2)
        if all(_bindable(port, socket.SOCK_DGRAM) for port in range(low, low + size + 1, 2)):
            return f"{low}-{low + size}"
    raise AssertionError(f"no free range of {size} RTP ports")
