"""Capture's side of a failing disk: keep what the journal could not take, retry, count what is lost.

The capture loop hands each flush to a :class:`JournalBacklog`. When the
journal write fails (a full disk, an I/O error; the writer has already rolled
the journal back to its last record), the packets stay here in memory and go
out, oldest first and in one record with the new ones, at the next flush. So a
short outage costs nothing: the journal ends up with every packet, in arrival
order, only later.

Memory is bounded by time: packets that arrived more than ``backlog_seconds``
ago are dropped, oldest first, and counted per stream (packets, first and last
arrival). The default of 10 s is below the call-time renderer's 15 s
hold-back, so a packet written late is never behind audio already rendered: a
retried packet is either in the recording at its right place or counted lost,
never silently missing. At 50 packets/s per stream that is about 200 KB per
two-stream call.

Each outage is one *episode*: from the first failed write to the first one
that succeeds. When it ends, the episode (its failure span and the packets
dropped in it) is written to the journal as a ``spool_write_failed`` event, so
even a later crash keeps the account. An episode still open when the session
closes (the disk never came back) is handed to the engine in memory
(:meth:`JournalBacklog.close`), with everything still waiting counted lost.
The renderer turns both into the recording's gap events and stream
statistics (:mod:`.spool_losses`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from callvault.errors import StorageError
from callvault.storage.spool import SpoolWriter, encode_batch

log = logging.getLogger(__name__)

BACKLOG_SECONDS = 10.0
LOSS_EVENT = "spool_write_failed"
# Packet interval assumed for a stream of which a single packet was lost.
DEFAULT_PACKET_SECONDS = 0.02

# One stream's packets of one flush: (stream index, arrival times, datagrams).
Batch = tuple[int, list[float], list[bytes]]


@dataclass
class _StreamLoss:
    packets: int = 0
    first: float = 0.0
    last: float = 0.0

    def add(self, arrivals: list[float]) -> None:
        if not arrivals:
            return
        if self.packets == 0:
            self.first = arrivals[0]
        self.first = min(self.first, arrivals[0])
        self.last = max(self.last, arrivals[-1])
        self.packets += len(arrivals)

    @property
    def seconds(self) -> float:
        """The audio the lost packets carried: their span plus one packet interval."""
        step = (self.last - self.first) / (self.packets - 1) if self.packets > 1 else DEFAULT_PACKET_SECONDS
        return self.last - self.first + (step or DEFAULT_PACKET_SECONDS)


@dataclass
class _Episode:
    failed_at: float
    error: str
    streams: dict[int, _StreamLoss] = field(default_factory=dict)
    failures: int = 0

    def to_json(self, recovered_at: float | None) -> dict[str, Any]:
        """The episode as the journal event's data and the close report (JSON: crosses processes)."""
        return {
            "failed_at": self.failed_at,
            "recovered_at": recovered_at,
            "error": self.error,
            "failures": self.failures,
            "streams": {
                str(index): {
                    "packets": loss.packets,
                    "first": loss.first,
                    "last": loss.last,
                    "seconds": round(loss.seconds, 3),
                }
                for index, loss in sorted(self.streams.items())
                if loss.packets
            },
        }


class JournalBacklog:
    """One capture session's writes to its journal; used by the capture thread only."""

    def __init__(self, writer: SpoolWriter, backlog_seconds: float = BACKLOG_SECONDS) -> None:
        self.writer = writer
        self._backlog_seconds = backlog_seconds
        self._pending: list[Batch] = []
        self._episode: _Episode | None = None
        self.dropped = 0  # packets dropped, over the session

    @property
    def waiting(self) -> bool:
        """Packets wait in memory for the disk (retried at every flush, even without new ones)."""
        return bool(self._pending)

    def write(self, batches: list[Batch], now: float) -> bool:
        """Write what waits and ``batches`` as one record; on failure keep them. True if written."""
        pending = self._pending + [batch for batch in batches if batch[2]]
        if not pending:
            return True
        try:
            self.writer.write_batches(
                [encode_batch(index, arrivals, packets) for index, arrivals, packets in pending]
            )
        except StorageError as exc:
            self._pending = pending
            self._failed(exc, now)
            self._drop_older_than(now - self._backlog_seconds)
            return False
        self._pending = []
        if self._episode is not None:
            self._recovered(now)
        return True

    def close(self, now: float) -> list[dict[str, Any]]:
        """Count whatever still waits as lost; the open episode (if any) for the engine to report."""
        if self._pending:
            if self._episode is None:  # cannot be: pending only exists after a failure
                self._episode = _Episode(now, "storage_error")
            self._drop_older_than(float("inf"))
        episode, self._episode = self._episode, None
        return [] if episode is None else [episode.to_json(None)]

    def _failed(self, exc: StorageError, now: float) -> None:
        if self._episode is None:
            self._episode = _Episode(now, exc.code)
            log.error(
                "%s; keeping up to %g s of packets in memory to retry", exc.message, self._backlog_seconds
            )
        self._episode.failures += 1

    def _recovered(self, now: float) -> None:
        episode, self._episode = self._episode, None
        assert episode is not None
        report = episode.to_json(now)
        lost = sum(int(s["packets"]) for s in report["streams"].values())
        log.warning(
            "spool %s writable again after %.1f s; %d packets were lost",
            self.writer.path,
            now - episode.failed_at,
            lost,
        )
        # Deferred by the writer if it fails again, so the account reaches the journal or the close.
        self.writer.write_event(LOSS_EVENT, 0.0, report)

    def _drop_older_than(self, cutoff: float) -> None:
        episode = self._episode
        assert episode is not None
        kept: list[Batch] = []
        for index, arrivals, packets in self._pending:
            cut = 0
            while cut < len(arrivals) and arrivals[cut] < cutoff:
                cut += 1
            if cut:
                episode.streams.setdefault(index, _StreamLoss()).add(arrivals[:cut])
                self.dropped += cut
            if cut < len(arrivals):
                kept.append((index, arrivals[cut:], packets[cut:]))
        self._pending = kept
