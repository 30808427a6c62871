"""Recordings rendered but not sealed (the vault's disk full, the catalogue down): sealed again later.

Before this, a failed seal left the journal for the next start, which renders
it again as *interrupted*: the status and the storage losses known at
hang-up were lost, and the recording stayed 'recording' until a restart. Now
the engine keeps the rendered recording (the encoded archive, ~90 KB a
minute) and tries to seal it again every ``interval`` seconds. The journal
stays on disk until a seal succeeds, so a stop or crash meanwhile still ends
in the usual recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callvault.runtime.media.tracks import RenderedRecording
from callvault.services.call_record import FinalStatus

SEAL_RETRY_SECONDS = 30.0


@dataclass
class _Unsealed:
    rendered: RenderedRecording
    status: FinalStatus
    due: float


class SealRetry:
    def __init__(self, interval: float = SEAL_RETRY_SECONDS) -> None:
        self._interval = interval
        self._waiting: dict[Path, _Unsealed] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, path: Path, rendered: RenderedRecording, status: FinalStatus, now: float) -> None:
        self._waiting[path] = _Unsealed(rendered, status, now + self._interval)

    def due(self, now: float) -> list[tuple[Path, RenderedRecording, FinalStatus]]:
        """The recordings to try again now; each is out of the list until it fails again."""
        ready = [path for path, waiting in self._waiting.items() if waiting.due <= now]
        taken = [(path, self._waiting.pop(path)) for path in ready]
        return [(path, waiting.rendered, waiting.status) for path, waiting in taken]
