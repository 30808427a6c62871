"""A file system that fills up, faked at the one call that writes journal bytes (``spool.write_fd``).

Like the kernel on a full disk: a write that does not fit writes what fits and
returns the short count, the next one fails with ENOSPC. Everything above the
system call (roll-back, retry, accounting) runs for real.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from callvault.storage import spool


class FullDisk:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._room: int | None = None  # bytes the disk still takes; None: plenty
        self._refusals_left: int | None = None  # writes refused before room returns; None: until free()
        self.refused = 0  # writes that failed with ENOSPC
        self.short = 0  # writes cut short

    def fill(self, room: int = 0) -> None:
        """From now on only ``room`` more bytes fit."""
        with self._lock:
            self._room = room

    def free(self) -> None:
        with self._lock:
            self._room = None
            self._refusals_left = None

    def outage(self, after: int, refusals: int) -> None:
        """Take ``after`` more bytes, then refuse the next ``refusals`` writes, then have room again."""
        with self._lock:
            self._room = after
            self._refusals_left = refusals

    def write(self, fd: int, data: bytes | memoryview) -> int:
        with self._lock:
            if self._room is None:
                return os.write(fd, data)
            if self._room <= 0:
                if self._refusals_left is not None:
                    if self._refusals_left <= 0:
                        self._room = self._refusals_left = None
                        return os.write(fd, data)
                    self._refusals_left -= 1
                self.refused += 1
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            count = os.write(fd, data[: self._room])
            if count < len(data):
                self.short += 1
            self._room -= count
            return count


@contextmanager
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[FullDisk]:
    disk = FullDisk()
    monkeypatch.setattr(spool, "write_fd", disk.write)
    yield disk
