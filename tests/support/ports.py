"""Ports for servers under test, on a machine where other test runs take ports too.

A port found free for TCP says nothing about UDP (SIP binds both on one port),
and a fixed RTP range collides with every other fixture or run that uses it.

Ports are handed out below the kernel's ephemeral range: a port found free there
stays free until the server binds it, while one in the ephemeral range may be given
meanwhile to any outgoing connection (a database client, an HTTP request) as its local
port. Each pytest-xdist worker takes its own slice of that space, and hands its ports
out in turn from a random start, so two servers of one test, two workers of one run, or
two runs side by side do not pick the same port between checking it and binding it.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from pathlib import Path

_LOWEST = 10000  # above the well-known and registered ports services of the machine listen on
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def worker_slice() -> range:
    """This process's ports: its share of those between 10000 and the ephemeral range,
    by xdist worker (``gw0``, ``gw1``, … of ``PYTEST_XDIST_WORKER_COUNT``)."""
    high = _ephemeral_low()
    if high - _LOWEST < 2000:  # an unusual kernel setting: share what is there
        return range(1024, high)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = (high - _LOWEST) // max(count, 1) // 2 * 2  # even: every slice starts at an even port
    start = _LOWEST + (index % max(count, 1)) * size
    return range(start, start + size)


class _Cursor:
    """Walks the worker's slice round-robin: a port handed out comes back only after the
    whole slice (thousands of ports) has been handed out since."""

    def __init__(self) -> None:
        self.ports = worker_slice()
        self.next = self.ports.start + random.randrange(len(self.ports)) // 2 * 2

    def take(self, count: int) -> int:
        """The first of ``count`` consecutive ports, starting at an even one."""
        if self.next + count > self.ports.stop:
            self.next = self.ports.start
        first = self.next
        self.next += count + (count % 2)
        return first


_cursor = _Cursor()


def free_port(kind: int | None = None) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (``kind`` is ignored: both are checked)."""
    for _ in itertools.repeat(None, 2000):
        port = _cursor.take(1)
        if _bindable(port, socket.SOCK_STREAM) and _bindable(port, socket.SOCK_DGRAM):
            return port
    raise AssertionError("no port free for both TCP and UDP")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports, each free for both TCP and UDP right now."""
    return [free_port() for _ in range(count)]


def rtp_range(size: int = 100) -> str:
    """``LOW-HIGH`` of ``size`` ports whose even ports are all free for UDP right now."""
    for _ in itertools.repeat(None, 200):
        low = _cursor.take(size + 1)
        if all(_bindable(port, socket.SOCK_DGRAM) for port in range(low, low + size + 1, 2)):
            return f"{low}-{low + size}"
    raise AssertionError(f"no free range of {size} RTP ports")
