"""The free-space reserve: stop taking calls before the disk is full, not when it is.

A full disk mid-call costs audio (see :mod:`.journal_backlog`), so the
recorder keeps ``CALLVAULT_MIN_FREE_DISK_MB`` free on the file systems it
writes to during a call and at sealing: the spool directory and, when the
vault is a local directory, the vault. The engine checks once a second (a
``statvfs`` each, never per packet); while either is below the reserve,
new INVITEs get 503 with Retry-After and ``/healthz`` reports ``degraded``.
Calls in progress go on: the reserve is there for them to finish and seal.

Why 1024 MB by default: a two-party G.711 call journals ~18 KB/s (~66 MB an
hour), so 1 GB lets a few hundred calls in progress run on for minutes while
the operator frees space; deployments that record less can set it lower, and
0 turns the check off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

from callvault.runtime.media import metrics
from callvault.settings import Settings

log = logging.getLogger(__name__)

MB = 1024 * 1024


def watched_volumes(settings: Settings) -> dict[str, Path]:
    """Name → directory of each file system a call writes to."""
    volumes = {"spool": settings.spool_dir}
    url = urlparse(settings.resolved_storage_url)
    if url.scheme == "file":
        volumes["vault"] = Path(unquote(url.path))
    return volumes


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the file system holding ``path`` (or its nearest parent)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


class DiskReserve:
    def __init__(
        self,
        volumes: dict[str, Path],
        reserve_mb: int,
        free: Callable[[Path], int] = free_bytes,
    ) -> None:
        self._volumes = volumes
        self._reserve = reserve_mb * MB
        self._free = free
        self.low: str | None = None  # why new calls are refused, while they are
        self.free: dict[str, int] = {}

    def check(self) -> str | None:
        """Measure every volume; returns (and keeps in ``low``) the reason to refuse calls, or None."""
        if self._reserve <= 0:
            return None
        reasons: list[str] = []
        for name, path in self._volumes.items():
            try:
                free = self._free(path)
            except OSError as exc:
                reasons.append(f"{name} disk cannot be measured ({exc.strerror})")
                continue
            self.free[name] = free
            metrics.DISK_FREE_BYTES.labels(name).set(free)
            if free < self._reserve:
                reasons.append(
                    f"{name} disk has {free // MB} MB free, below the {self._reserve // MB} MB reserve"
                )
        low = "; ".join(reasons) or None
        if low != self.low:
            if low:
                log.error("refusing new calls: %s (CALLVAULT_MIN_FREE_DISK_MB)", low)
            else:
                log.warning("free disk space is above the reserve again; taking new calls")
        self.low = low
        metrics.DISK_RESERVE_LOW.set(1 if low else 0)
        return low
