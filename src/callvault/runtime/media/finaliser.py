"""Rendering a spool journal into an archive: runs in a worker process, never on the capture path.

Steps: read and decrypt the journal (up to a torn tail or a record that
fails authentication) → per stream, SRTP unprotect
(keys from the journal) and a batch :class:`StreamTimeline` → decode and
render every stream on one wall-clock axis → channel mapping → Opus.

The recording spans the call: from the moment the session was opened (the
journal's ``started_at``) to the hang-up (``ended_at``; after a crash, the end
of the last audio received). Every stream is placed by its own wall-clock
anchor on that common axis, so holes (loss, hold, one-way audio, a side that
never sent anything) are silence of their real length and both channels stay
aligned with each other and with the wall clock; a session without any
packet is silence of the call's length. Channel mapping: agent streams (channel 0) are mixed into the
left channel, customer streams (1) into the right; streams labelled mixed (-1)
go into both sides when sides exist, or into a mono archive flagged mixed
when no stream has a side. No participant's audio is ever dropped.

This module renders a whole journal in one go: crash recovery uses it, and it
is the reference the call-time renderer (:mod:`.incremental`) is tested
against. RFC 4733 digits become ``dtmf`` events whose data is
``{"digit": d}`` in ``dtmf_mode`` 'digits' and empty otherwise.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callvault.media.archive import (
    DEFAULT_BITRATE_PER_CHANNEL,
    DEFAULT_COMPLEXITY,
    DEFAULT_SILENCE_GATE_DBFS,
    ArchiveEncoder,
)
from callvault.media.codec_spec import CodecSpec
from callvault.media.mixing import mix_down
from callvault.rtp.render import render_placements
from callvault.rtp.stats import StreamGuard, guards_from_events
from callvault.rtp.timeline import Placement, StreamTimeline
from callvault.runtime.media.journal_backlog import LOSS_EVENT
from callvault.runtime.media.spool_key import journal_reader
from callvault.runtime.media.spool_losses import StorageAccount, account, split_loss_events
from callvault.services.call_record import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    MIXED_CHANNEL,
    ArchiveAudio,
    CallEvent,
    StreamRecord,
)
from callvault.settings import Settings
from callvault.storage.spool import SpoolContents, SpoolStream, read_spool

log = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]

WIDEBAND = {"G722", "OPUS"}
NARROW_RATE = 8000
WIDE_RATE = 16000
ENCODE_CHUNK_SECONDS = 60


@dataclass(frozen=True)
class RenderOptions:
    dtmf_mode: str = "presence"
    bitrate_per_channel: int = DEFAULT_BITRATE_PER_CHANNEL
    silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS
    ended_at: float | None = None  # when the call ended (BYE); None: the last audio (crash)
    # Storage failures capture could not write to the journal (see .journal_backlog), JSON dicts.
    spool_losses: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, ended_at: float | None = None) -> RenderOptions:
        return cls(
            dtmf_mode=settings.dtmf_mode,
            bitrate_per_channel=settings.opus_bitrate,
            silence_gate_dbfs=settings.archive_silence_gate,
            ended_at=ended_at,
        )

    def encoder(self, rate: int, channels: int) -> ArchiveEncoder:
        return ArchiveEncoder(
            rate,
            channels,
            self.bitrate_per_channel,
            complexity=DEFAULT_COMPLEXITY,
            silence_gate_dbfs=self.silence_gate_dbfs,
        )


@dataclass
class RenderedRecording:
    recording_id: str
    audio: ArchiveAudio
    streams: list[StreamRecord]
    events: list[CallEvent]
    ended_at: float
    loss_fraction: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for benchmarks
    # Seconds of audio rendered by the last job (after hang-up, for the call-time renderer).
    tail_seconds: float = 0.0
    # Audio is missing because of storage (disk full, damaged journal): see .spool_losses.
    storage_incomplete: bool = False
    spool_lost: int = 0


@dataclass
class _Track:
    stream: SpoolStream
    timeline: StreamTimeline | None
    codec: str | None
    placements: list[Placement] = field(default_factory=list)
    guard: StreamGuard = field(default_factory=StreamGuard)


def _srtp_receiver(params: dict[str, Any]) -> Any:
    from callvault.rtp.srtp import SdesCrypto, SrtpReceiver

    args: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict) and "b64" in value:
            value = base64.b64decode(value["b64"])
        elif isinstance(value, list):
            value = tuple(value)  # JSON has no tuples (the MKI pair)
        args[name] = value
    return SrtpReceiver(SdesCrypto(**args))


def _audio_codecs(stream: SpoolStream) -> list[CodecSpec]:
    return [c for c in stream.codecs if not c.is_telephone_event and not c.is_comfort_noise]


def unprotect_all(
    receiver: Any, arrivals: list[float], packets: list[bytes], guard: StreamGuard
) -> tuple[list[float], list[bytes]]:
    """SRTP-unprotected packets, arrival times kept paired; failures counted on ``guard``."""
    from callvault.rtp.srtp import SrtpReplay

    kept_arrivals: list[float] = []
    kept: list[bytes] = []
    for arrival, packet in zip(arrivals, packets, strict=True):
        try:
            kept.append(receiver.unprotect(packet))
        except SrtpReplay:
            guard.srtp_replayed += 1  # a duplicate: not audio twice, not loss
            continue
        except ValueError:
            guard.srtp_auth_failed += 1  # a wrong key, tampered or not this call's: loss
            continue
        kept_arrivals.append(arrival)
    return kept_arrivals, kept


def _build_track(contents: SpoolContents, stream: SpoolStream, guard: StreamGuard | None = None) -> _Track:
    guard = guard if guard is not None else StreamGuard()
    arrivals, packets = contents.packets_of(stream.index)
    if stream.srtp is not None and packets:
        arrivals, packets = unprotect_all(_srtp_receiver(stream.srtp), arrivals, packets, guard)
    audio = _audio_codecs(stream)
    clock_rate = audio[0].clock_rate if audio else NARROW_RATE
    if not packets:
        return _Track(stream, None, audio[0].encoding if audio else None, guard=guard)
    timeline = StreamTimeline(
        clock_rate,
        audio_payload_types=[c.payload_type for c in audio],
        event_payload_types=[c.payload_type for c in stream.codecs if c.is_telephone_event],
    )
    timeline.add_batch(np.asarray(arrivals, dtype=np.float64), packets)
    try:
        # Building the placement list is the costly part of a timeline: do it once.
        placements = timeline.placements()
    except ValueError:
        return _Track(stream, None, audio[0].encoding if audio else None, guard=guard)
    return _Track(stream, timeline, audio[0].encoding if audio else None, placements, guard)


def _used_codecs(track: _Track) -> list[CodecSpec]:
    if track.timeline is None:
        return []
    seen = set(np.unique(np.fromiter((p.payload_type for p in track.placements), dtype=np.int64)).tolist())
    return [c for c in _audio_codecs(track.stream) if c.payload_type in seen]


def audio_end(tracks: Iterable[_Track], contents: SpoolContents) -> float:
    """Where a recording without a known hang-up ends: its last audio (or last packet)."""
    span = _span(tracks)
    if span is not None:
        return span[1]
    return contents.last_arrival or contents.started_at


def _span(tracks: Iterable[_Track]) -> tuple[float, float] | None:
    starts: list[float] = []
    ends: list[float] = []
    for track in tracks:
        timeline = track.timeline
        if timeline is None:
            continue
        placements = track.placements
        if not placements:
            continue
        anchor = timeline.anchor_wall
        step = timeline.clock_rate // 50
        starts.append(anchor + placements[0].offset / timeline.clock_rate)
        ends.append(anchor + (placements[-1].offset + step) / timeline.clock_rate)
    if not starts:
        return None
    return min(starts), max(ends)


def _render(track: _Track, out_rate: int, start: float, seconds: float) -> Pcm | None:
    if track.timeline is None:
        return None
    from callvault.media.payload_codecs import create_decoder

    decoders = {
        c.payload_type: create_decoder(c.encoding, c.clock_rate, c.channels)
        for c in _audio_codecs(track.stream)
    }
    timeline = track.timeline
    pcm = render_placements(
        track.placements, timeline.anchor_wall, timeline.clock_rate, decoders, out_rate, seconds, start
    )
    return np.asarray(pcm, dtype=np.int16).reshape(-1)


def _stats(track: _Track) -> dict[str, object]:
    return track.guard.add_to(_timeline_stats(track))


def _timeline_stats(track: _Track) -> dict[str, object]:
    if track.timeline is None:
        return {
            "expected": 0,
            "received": 0,
            "lost": 0,
            "late": 0,
            "duplicated": 0,
            "jitter_ms": 0.0,
            "gaps": [],
        }
    s = track.timeline.stats
    return {
        "expected": s.expected,
        "received": s.received,
        "lost": s.lost,
        "late": s.late,
        "duplicated": s.duplicated,
        "malformed": s.malformed,
        "jitter_ms": round(s.jitter_ms, 3),
        "ssrc_count": s.ssrc_count,
        "gaps": [[round(a, 3), round(b, 3)] for a, b in s.gaps],
    }


def _dtmf_events(track: _Track, start: float, dtmf_mode: str) -> list[CallEvent]:
    timeline = track.timeline
    if timeline is None:
        return []
    events: list[CallEvent] = []
    for placed in timeline.events():
        offset = timeline.anchor_wall + placed.offset / timeline.clock_rate - start
        # Nothing but the digit, and that only when digits are kept: key timing and
        # durations are enough to guess a PAN typed on a keypad.
        data: dict[str, object] = {"digit": placed.event.digit} if dtmf_mode == "digits" else {}
        events.append(CallEvent("dtmf", max(0.0, offset), data))
    return events


def _journal_events(contents: SpoolContents, start: float, dtmf_mode: str) -> list[CallEvent]:
    shift = start - contents.started_at
    events: list[CallEvent] = []
    _, own = guards_from_events(contents.events)
    for raw in own:
        kind = str(raw.get("kind", ""))
        if kind == LOSS_EVENT:
            continue  # becomes a gap event with the stream stats (spool_losses.account)
        data = dict(raw.get("data") or {})
        if kind == "dtmf" and dtmf_mode != "digits":
            data.pop("digit", None)
            data.pop("digits", None)
        events.append(CallEvent(kind, max(0.0, float(raw.get("offset", 0.0)) - shift), data))
    return events


def _encode(
    left: Pcm | None, right: Pcm | None, mono: Pcm | None, rate: int, options: RenderOptions
) -> bytes:
    channels = 1 if mono is not None else 2
    encoder = options.encoder(rate, channels)
    if mono is not None:
        length = mono.size
    else:
        assert left is not None and right is not None
        length = max(left.size, right.size)
    chunk = ENCODE_CHUNK_SECONDS * rate
    for begin in range(0, length, chunk):
        end = min(length, begin + chunk)
        if mono is not None:
            encoder.write(mono[begin:end].reshape(1, -1))
        else:
            assert left is not None and right is not None
            block = np.zeros((2, end - begin), dtype=np.int16)
            part = left[begin:end]
            block[0, : part.size] = part
            part = right[begin:end]
            block[1, : part.size] = part
            encoder.write(block)
    return encoder.finish()


def render_contents(contents: SpoolContents, options: RenderOptions) -> RenderedRecording:
    clock = time.perf_counter
    began = clock()
    guards, _ = guards_from_events(contents.events)
    tracks = [
        _build_track(contents, stream, guards.get(stream.index))
        for stream in sorted(contents.streams.values(), key=lambda s: s.index)
    ]
    wide = any(c.encoding in WIDEBAND for t in tracks for c in _used_codecs(t))
    rate = WIDE_RATE if wide else NARROW_RATE
    start = contents.started_at
    ended_at = options.ended_at if options.ended_at is not None else audio_end(tracks, contents)
    seconds = max(0.0, ended_at - start)

    timed_tracks = clock()
    sides: dict[int, list[Pcm]] = {AGENT_CHANNEL: [], CUSTOMER_CHANNEL: [], MIXED_CHANNEL: []}
    for track in tracks:
        pcm = _render(track, rate, start, seconds)
        if pcm is not None:
            channel = track.stream.channel if track.stream.channel in sides else MIXED_CHANNEL
            sides[channel].append(pcm)
    length = round(seconds * rate)
    has_sides = any(t.stream.channel in (AGENT_CHANNEL, CUSTOMER_CHANNEL) for t in tracks)
    mono: Pcm | None = None
    left: Pcm | None = None
    right: Pcm | None = None
    if has_sides or not tracks:
        left = _fit(mix_down(sides[AGENT_CHANNEL] + sides[MIXED_CHANNEL]), length)
        right = _fit(mix_down(sides[CUSTOMER_CHANNEL] + sides[MIXED_CHANNEL]), length)
    else:
        mono = _fit(mix_down(sides[MIXED_CHANNEL]), length)
    timed_render = clock()
    data = _encode(left, right, mono, rate, options)
    timed_encode = clock()
    audio = ArchiveAudio(
        data=data,
        sample_rate=rate,
        channels=1 if mono is not None else 2,
        duration_seconds=length / rate,
        mixed=mono is not None,
    )
    streams = stream_records(tracks)
    events = _journal_events(contents, start, options.dtmf_mode)
    for track in tracks:
        events.extend(_dtmf_events(track, start, options.dtmf_mode))
    storage = account_storage(contents.events, contents.damaged, options, streams, tracks, start)
    events.extend(storage.events)
    events.sort(key=lambda e: e.offset_seconds)
    expected = sum(int(s.stats["expected"]) for s in streams)  # type: ignore[call-overload]
    lost = sum(int(s.stats["lost"]) for s in streams)  # type: ignore[call-overload]
    return RenderedRecording(
        storage_incomplete=storage.incomplete,
        spool_lost=storage.lost_packets,
        recording_id=contents.recording_id,
        audio=audio,
        streams=streams,
        events=events,
        ended_at=ended_at,
        loss_fraction=lost / expected if expected else 0.0,
        timings={
            "timeline": timed_tracks - began,
            "decode_render_mix": timed_render - timed_tracks,
            "encode": timed_encode - timed_render,
        },
    )


def account_storage(
    raw_events: list[dict[str, Any]],
    damaged: list[tuple[int, int]],
    options: RenderOptions,
    streams: list[StreamRecord],
    tracks: list[_Track],
    start: float,
) -> StorageAccount:
    """Storage losses from the journal's events, the close report and the reader's damage list."""
    _, journal_losses = split_loss_events(raw_events)
    labels = {t.stream.index: t.stream.label for t in tracks}
    return account([*journal_losses, *options.spool_losses], damaged, streams, labels, start)


def _fit(pcm: Pcm, length: int) -> Pcm:
    if pcm.size >= length:
        return pcm[:length]
    out = np.zeros(length, dtype=np.int16)
    out[: pcm.size] = pcm
    return out


def stream_records(tracks: list[_Track]) -> list[StreamRecord]:
    """Per-stream catalogue entries, with completeness stats, for a rendered call."""
    return [
        StreamRecord(
            label=t.stream.label,
            codec=t.codec,
            channel=t.stream.channel,
            participant_aor=t.stream.participant_aor,
            stats=_stats(t),
        )
        for t in tracks
    ]


def render_recording(path: str, key: bytes, options: RenderOptions) -> RenderedRecording:
    """Worker-process entry point: render the journal at ``path``, sealed under ``key`` (not deleted here)."""
    began = time.perf_counter()
    contents = read_spool(Path(path), journal_reader(key))
    read = time.perf_counter() - began
    rendered = render_contents(contents, options)
    rendered.timings["read_spool"] = read
    return rendered
