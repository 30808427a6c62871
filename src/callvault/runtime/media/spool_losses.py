"""What storage failures cost a recording: gap events on its timeline and counters in its stream stats.

Two sources, both from :mod:`.journal_backlog`: ``spool_write_failed`` events
the capture wrote into the journal once the disk took writes again, and the
episodes still open when the session closed (the engine passes them in
``RenderOptions.spool_losses``). Plus what the journal reader had to skip
(``SpoolContents.damaged``). Each becomes:

* a catalogue event ``spool_write_failed`` at the start of the lost audio
  (or of the failure, when nothing was lost), with ``end`` (seconds from the
  recording's start), ``lost_packets``, ``lost_seconds``, the failure's
  ``error`` code, ``failed_for`` (seconds; null when the disk never came back
  before the hang-up) and per stream label its ``packets`` and ``seconds``;
* per stream: ``spool_lost`` (packets the recorder received but could not
  store), ``spool_lost_seconds`` and ``spool_gaps`` (``[start, seconds]`` from
  the recording's start). ``lost`` keeps its RTP meaning (sequence numbers
  missing between the first and last packet stored), so a hole in the middle
  of a call shows there too, while a hole up to the hang-up shows only here;
* ``spool_damaged`` events for journal bytes the reader skipped or could not
  authenticate (where in the call is unknown: offset 0).

A recording with any of these is sealed ``incomplete`` (the engine decides).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from callvault.runtime.media.journal_backlog import LOSS_EVENT
from callvault.services.call_record import CallEvent, StreamRecord

DAMAGE_EVENT = "spool_damaged"


@dataclass
class StorageAccount:
    events: list[CallEvent]
    lost_packets: int
    damaged: bool

    @property
    def incomplete(self) -> bool:
        """Audio the call had is missing from the recording because of storage."""
        return self.lost_packets > 0 or self.damaged


def split_loss_events(
    raw_events: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(other journal events, data of the ``spool_write_failed`` ones)."""
    others: list[dict[str, Any]] = []
    losses: list[dict[str, Any]] = []
    for raw in raw_events:
        if raw.get("kind") == LOSS_EVENT and isinstance(raw.get("data"), dict):
            losses.append(raw["data"])
        else:
            others.append(raw)
    return others, losses


def account(
    losses: Sequence[dict[str, Any]],
    damaged: Sequence[tuple[int, int]],
    streams: list[StreamRecord],
    labels: dict[int, str],
    started_at: float,
) -> StorageAccount:
    """Add the storage losses to ``streams``' stats (in place) and return their events."""
    by_label = {s.label: s for s in streams}
    for stream in streams:
        stream.stats.setdefault("spool_lost", 0)
        stream.stats.setdefault("spool_lost_seconds", 0.0)
        stream.stats.setdefault("spool_gaps", [])
    events: list[CallEvent] = []
    total = 0
    lost_records = 0
    for loss in losses:
        if "lost_records" in loss:
            lost_records += int(loss["lost_records"])
            continue
        event, packets = _episode(loss, by_label, labels, started_at)
        events.append(event)
        total += packets
    for offset, skipped in damaged:
        data: dict[str, object] = {"byte": offset}
        if skipped < 0:
            data["unreadable_rest"] = True
        else:
            data["skipped_bytes"] = skipped
        events.append(CallEvent(DAMAGE_EVENT, 0.0, data))
    if lost_records:
        events.append(CallEvent(DAMAGE_EVENT, 0.0, {"lost_records": lost_records}))
    return StorageAccount(events, total, bool(damaged) or lost_records > 0)


def _episode(
    loss: dict[str, Any], by_label: dict[str, StreamRecord], labels: dict[int, str], started_at: float
) -> tuple[CallEvent, int]:
    failed_at = float(loss.get("failed_at", started_at))
    recovered_at = loss.get("recovered_at")
    per_stream: dict[str, dict[str, object]] = {}
    starts: list[float] = []
    ends: list[float] = []
    total = 0
    lost_seconds = 0.0
    for index, raw in dict(loss.get("streams") or {}).items():
        packets = int(raw["packets"])
        seconds = float(raw["seconds"])
        first = float(raw["first"])
        label = labels.get(int(index), f"stream {index}")
        start = round(max(0.0, first - started_at), 3)
        starts.append(first)
        ends.append(first + seconds)
        total += packets
        lost_seconds = max(lost_seconds, seconds)
        per_stream[label] = {"packets": packets, "seconds": round(seconds, 3)}
        stream = by_label.get(label)
        if stream is not None:
            stats = stream.stats
            stats["spool_lost"] = int(stats["spool_lost"]) + packets  # type: ignore[call-overload]
            stats["spool_lost_seconds"] = round(float(stats["spool_lost_seconds"]) + seconds, 3)  # type: ignore[arg-type]
            gaps = stats["spool_gaps"]
            assert isinstance(gaps, list)
            gaps.append([start, round(seconds, 3)])
    begin = min(starts) if starts else failed_at
    end = max(ends) if ends else (float(recovered_at) if recovered_at is not None else failed_at)
    data: dict[str, object] = {
        "end": round(max(0.0, end - started_at), 3),
        "lost_packets": total,
        "lost_seconds": round(lost_seconds, 3),
        "error": str(loss.get("error", "storage_error")),
        "failed_for": None if recovered_at is None else round(float(recovered_at) - failed_at, 3),
        "streams": per_stream,
    }
    return CallEvent(LOSS_EVENT, round(max(0.0, begin - started_at), 3), data), total
