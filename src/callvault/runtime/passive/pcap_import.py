"""Capture files (pcap, pcapng, gzip) imported: every call in them recorded as if sniffed live.

The file is read by the sans-IO :func:`~callvault.wire.capture_file.read_frames`
and fed to a :class:`~.recorder.PassiveRecorder` in a thread, with the
packets' own timestamps as the clock; each finished call's journal then
goes to ``seal`` (the media engine's :meth:`~callvault.runtime.media.engine.MediaEngine.seal_journal`
in ``serve``, :class:`OfflineSealing` for the CLI): the one renderer, the one sealer.

Trust: a capture is untrusted input. Parsing is pure Python with every
length checked (no native dissector); RTP payloads are decoded by the same
render workers that decode SIPREC media. A file that is not a capture at
all, or whose frames are all of an unknown link type, is refused before
anything is written. Damage after the first call (a torn tail, a corrupt
record) ends the read there: calls complete before it are sealed as usual,
calls still open are sealed ``interrupted``, and the damage is reported.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from callvault.errors import UnsupportedMedia
from callvault.runtime.media.render_schedule import RenderSchedule
from callvault.runtime.media.sealing import Sealer
from callvault.runtime.passive import metrics
from callvault.runtime.passive.recorder import Finished, PassiveRecorder
from callvault.services.call_record import FinalStatus, IngestSource
from callvault.services.context import ServiceContext
from callvault.wire.capture_file import capture_kind, read_frames
from callvault.wire.packets import KNOWN_LINKTYPES

log = logging.getLogger(__name__)

SealJournal = Callable[[Path, bytes, float, FinalStatus], Awaitable[bool]]
TICK_SECONDS = 1.0


@dataclass
class CaptureImport:
    """What one capture file gave: its recordings and what could not be used."""

    name: str
    recording_ids: list[str] = field(default_factory=list)
    sealed: int = 0
    frames: int = 0
    sip_messages: int = 0
    rtp_packets: int = 0
    unsignalled_packets: int = 0
    calls_lost: int = 0  # answered calls the catalogue refused (database down): not recorded
    damage: dict[str, int] = field(default_factory=dict)
    error: str | None = None  # the read stopped here (torn or corrupt file)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "recording_ids": self.recording_ids,
            "calls": len(self.recording_ids),
            "sealed": self.sealed,
            "frames": self.frames,
            "sip_messages": self.sip_messages,
            "rtp_packets": self.rtp_packets,
            "unsignalled_packets": self.unsignalled_packets,
            "calls_lost": self.calls_lost,
            "damage": self.damage,
            "error": self.error,
        }


class OfflineSealing:
    """Render and seal without a running server (``callvault import-pcap``): the engine's parts, alone."""

    def __init__(self, ctx: ServiceContext, executor: Executor | None = None) -> None:
        self._schedule = RenderSchedule(ctx.settings, executor)
        self._sealer = Sealer(ctx.recordings, ctx.settings.loss_threshold, disclosure=ctx.disclosure)

    async def seal(self, journal: Path, key: bytes, ended_at: float, status: FinalStatus) -> bool:
        rendered = await self._schedule.render_whole(journal, key, ended_at)
        return await self._sealer.seal(journal, rendered, status)

    def close(self) -> None:
        self._schedule.pool.shutdown()


def check_capture(data: bytes) -> None:
    """UnsupportedMedia (415) for a file that is no capture at all, before anything is recorded."""
    try:
        capture_kind(data)
    except ValueError as exc:
        raise UnsupportedMedia(str(exc)) from None


def _read(recorder: PassiveRecorder, data: bytes, max_bytes: int, result: CaptureImport) -> None:
    """Feed every frame to the recorder (in a thread); damage stops the read, open calls end."""
    unknown: dict[int, int] = {}
    next_tick = 0.0
    try:
        for frame in read_frames(data, max_bytes):
            if frame.linktype not in KNOWN_LINKTYPES:
                unknown[frame.linktype] = unknown.get(frame.linktype, 0) + 1
                continue
            recorder.frame(frame.timestamp, frame.linktype, frame.data)
            if frame.timestamp >= next_tick:
                recorder.tick(frame.timestamp)
                next_tick = frame.timestamp + TICK_SECONDS
    except ValueError as exc:
        result.error = str(exc)
    finally:
        recorder.finish()
    for linktype, frames in unknown.items():
        result.damage[f"unknown link type {linktype}"] = frames
    if unknown and not recorder.counts["frames"]:
        raise UnsupportedMedia(f"capture holds only frames of unknown link types {sorted(unknown)}")


async def import_capture(
    ctx: ServiceContext,
    data: bytes,
    name: str,
    source: IngestSource,
    seal: SealJournal,
    *,
    tags: Sequence[str] = (),
) -> CaptureImport:
    """Record every call of one capture file; returns when they are all sealed."""
    settings = ctx.settings
    check_capture(data)
    finished: list[Finished] = []
    recorder = PassiveRecorder(
        ctx.recordings,
        ctx.directory.agent_for,
        ctx.keys,
        settings.spool_dir,
        source,
        finished.append,
        agent_networks=settings.capture_agent_networks,
        rtp_timeout=float(settings.rtp_timeout),
        tags=tags,
        max_sip_message=settings.max_sip_message_bytes,
        unsignalled=settings.capture_unsignalled,
    )
    result = CaptureImport(name)
    settings.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        await asyncio.to_thread(_read, recorder, data, settings.max_upload_bytes, result)
    finally:
        outcomes = await asyncio.gather(
            *(seal(f.journal, f.key, f.ended_at, f.status) for f in finished), return_exceptions=True
        )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            log.error("sealing a call of capture %r failed: %s", name, outcome)
    result.recording_ids = list(recorder.recording_ids)
    result.sealed = sum(1 for o in outcomes if o is True)
    result.frames = recorder.counts["frames"]
    result.sip_messages = recorder.counts["sip_messages"]
    result.rtp_packets = recorder.counts["rtp_packets"]
    result.unsignalled_packets = recorder.counts["unsignalled_packets"]
    result.calls_lost = recorder.counts["calls_lost"]
    result.damage.update(recorder.damage())
    metrics.count("import", dict(recorder.counts), sum(result.damage.values()))
    if result.error:
        metrics.IMPORT_ERRORS.inc()
    return result
