"""What every render of a journal shares: options, tracks, SRTP filtering, channel mixing, the result.

The renderer (:mod:`.renderer`) follows a journal and turns it into an
archive; this module holds the pieces that do not depend on *when* the
journal is read: how a stream's packets are SRTP-unprotected (keys from the
journal), which codecs are audio, how the streams' PCM is mixed into
channels, and how the finished archive, the per-stream statistics and the
call's events are assembled into a :class:`RenderedRecording`.

Channel mapping: agent streams (channel 0) are mixed into the left channel,
customer streams (1) into the right; streams labelled mixed (-1) go into both
sides when sides exist, or into a mono archive flagged mixed when no stream
has a side. No participant's audio is ever dropped. RFC 4733 digits become
``dtmf`` events whose data is ``{"digit": d}`` in ``dtmf_mode`` 'digits' and
empty otherwise: key timing and durations are enough to guess a PAN typed on
a keypad.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
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
from callvault.rtp.stats import StreamGuard, guards_from_events
from callvault.rtp.timeline import StreamTimeline
from callvault.runtime.media.journal_backlog import LOSS_EVENT
from callvault.runtime.media.spool_losses import StorageAccount, account, split_loss_events
from callvault.services.call_record import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    MIXED_CHANNEL,
    ArchiveAudio,
    CallEvent,
    CallOpening,
    StreamRecord,
)
from callvault.settings import Settings
from callvault.storage.spool import SpoolStream

Pcm = npt.NDArray[np.int16]

WIDEBAND = {"G722", "OPUS"}
NARROW_RATE = 8000
WIDE_RATE = 16000


@dataclass(frozen=True)
class RenderOptions:
    dtmf_mode: str = "presence"
    bitrate_per_channel: int = DEFAULT_BITRATE_PER_CHANNEL
    silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS
    ended_at: float | None = None  # when the call ended (BYE); None: the last audio (crash)
    # Storage failures capture could not write to the journal (see .journal_backlog), JSON dicts.
    spool_losses: tuple[dict[str, Any], ...] = ()
    # Seconds from the call start whose band envelopes the disclosure check gets (0: none).
    disclosure_seconds: float = 0.0

    @classmethod
    def from_settings(
        cls, settings: Settings, ended_at: float | None = None, spool_losses: tuple[dict[str, Any], ...] = ()
    ) -> RenderOptions:
        return cls(
            dtmf_mode=settings.dtmf_mode,
            bitrate_per_channel=settings.opus_bitrate,
            silence_gate_dbfs=settings.archive_silence_gate,
            ended_at=ended_at,
            spool_losses=spool_losses,
            disclosure_seconds=float(settings.disclosure_window),
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
    # The call's first seconds for the disclosure check (None: not taken).
    opening: CallOpening | None = None


@dataclass
class Track:
    """One stream of a rendered call: its description, its timeline (None: no valid RTP) and guard."""

    stream: SpoolStream
    timeline: StreamTimeline | None
    codec: str | None
    guard: StreamGuard = field(default_factory=StreamGuard)


# -- per stream ------------------------------------------------------------------------------------


def audio_codecs(stream: SpoolStream) -> list[CodecSpec]:
    return [c for c in stream.codecs if not c.is_telephone_event and not c.is_comfort_noise]


def new_timeline(stream: SpoolStream) -> StreamTimeline:
    audio = audio_codecs(stream)
    return StreamTimeline(
        audio[0].clock_rate if audio else NARROW_RATE,
        audio_payload_types=[c.payload_type for c in audio],
        event_payload_types=[c.payload_type for c in stream.codecs if c.is_telephone_event],
    )


def srtp_receiver(params: dict[str, Any]) -> Any:
    """An SRTP receiver for a stream's journalled SDES parameters (bytes as base64)."""
    from callvault.rtp.srtp import SdesCrypto, SrtpReceiver

    args: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, dict) and "b64" in value:
            value = base64.b64decode(value["b64"])
        elif isinstance(value, list):
            value = tuple(value)  # JSON has no tuples (the MKI pair)
        args[name] = value
    return SrtpReceiver(SdesCrypto(**args))


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


# -- channels --------------------------------------------------------------------------------------


def is_mono(channels: list[int]) -> bool:
    """A call is archived mono (flagged mixed) when it has streams and none of them has a side."""
    return bool(channels) and not any(c in (AGENT_CHANNEL, CUSTOMER_CHANNEL) for c in channels)


def mix_channels(sides: list[tuple[int, Pcm]], length: int, mono: bool) -> Pcm:
    """Mix each stream's PCM (``(channel, pcm)``) into a ``(channels, length)`` block."""
    by_side: dict[int, list[Pcm]] = {AGENT_CHANNEL: [], CUSTOMER_CHANNEL: [], MIXED_CHANNEL: []}
    for channel, pcm in sides:
        by_side[channel if channel in by_side else MIXED_CHANNEL].append(pcm)
    if mono:
        every = by_side[MIXED_CHANNEL] + by_side[AGENT_CHANNEL] + by_side[CUSTOMER_CHANNEL]
        return fit(mix_down(every), length).reshape(1, -1)
    block = np.zeros((2, length), dtype=np.int16)
    block[0] = fit(mix_down(by_side[AGENT_CHANNEL] + by_side[MIXED_CHANNEL]), length)
    block[1] = fit(mix_down(by_side[CUSTOMER_CHANNEL] + by_side[MIXED_CHANNEL]), length)
    return block


def fit(pcm: Pcm, length: int) -> Pcm:
    if pcm.size >= length:
        return pcm[:length]
    out = np.zeros(length, dtype=np.int16)
    out[: pcm.size] = pcm
    return out


# -- the result ------------------------------------------------------------------------------------


def assemble(
    recording_id: str,
    audio: ArchiveAudio,
    tracks: list[Track],
    raw_events: list[dict[str, Any]],
    damaged: list[tuple[int, int]],
    start: float,
    ended_at: float,
    options: RenderOptions,
) -> RenderedRecording:
    """The rendered recording: the archive, per-stream statistics, and every event of the call."""
    streams = stream_records(tracks)
    drop_paused_gaps(streams, tracks, raw_events, start)
    events = journal_events(raw_events, options.dtmf_mode)
    for track in tracks:
        events.extend(dtmf_events(track, start, options.dtmf_mode))
    storage = account_storage(raw_events, damaged, options, streams, tracks, start)
    events.extend(storage.events)
    events.sort(key=lambda e: e.offset_seconds)
    expected = sum(int(s.stats["expected"]) for s in streams)  # type: ignore[call-overload]
    lost = sum(int(s.stats["lost"]) for s in streams)  # type: ignore[call-overload]
    return RenderedRecording(
        recording_id=recording_id,
        audio=audio,
        streams=streams,
        events=events,
        ended_at=ended_at,
        loss_fraction=lost / expected if expected else 0.0,
        storage_incomplete=storage.incomplete,
        spool_lost=storage.lost_packets,
    )


def stream_records(tracks: list[Track]) -> list[StreamRecord]:
    """Per-stream catalogue entries, with completeness stats, for a rendered call."""
    return [
        StreamRecord(
            label=t.stream.label,
            codec=t.codec,
            channel=t.stream.channel,
            participant_aor=t.stream.participant_aor,
            stats=t.guard.add_to(_timeline_stats(t.timeline)),
        )
        for t in tracks
    ]


def _timeline_stats(timeline: StreamTimeline | None) -> dict[str, object]:
    if timeline is None:
        return {
            "expected": 0,
            "received": 0,
            "lost": 0,
            "late": 0,
            "duplicated": 0,
            "jitter_ms": 0.0,
            "gaps": [],
        }
    s = timeline.stats
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


def dtmf_events(track: Track, start: float, dtmf_mode: str) -> list[CallEvent]:
    timeline = track.timeline
    if timeline is None:
        return []
    events: list[CallEvent] = []
    for placed in timeline.events():
        offset = timeline.anchor_wall + placed.offset / timeline.clock_rate - start
        data: dict[str, object] = {"digit": placed.event.digit} if dtmf_mode == "digits" else {}
        events.append(CallEvent("dtmf", max(0.0, offset), data))
    return events


# A gap this close to a pause's edges is the pause (packets withheld on purpose), not loss.
_PAUSE_EDGE_SECONDS = 0.1
_SIDES_OF = {"agent": (AGENT_CHANNEL, MIXED_CHANNEL), "customer": (CUSTOMER_CHANNEL, MIXED_CHANNEL)}


def paused_spans(raw_events: list[dict[str, Any]]) -> list[tuple[float, float, str]]:
    """``(from, to, channels)`` of each pause in the journal's events (seconds from the start;
    a pause the journal never saw end runs to infinity)."""
    open_: dict[str, tuple[float, str]] = {}
    spans: list[tuple[float, float, str]] = []
    for raw in sorted(raw_events, key=lambda e: float(e.get("offset", 0.0))):
        data = raw.get("data") or {}
        cause = str(data.get("cause", ""))
        if raw.get("kind") == "pause":
            open_.setdefault(cause, (float(raw.get("offset", 0.0)), str(data.get("channels", "all"))))
        elif raw.get("kind") == "resume" and cause in open_:
            began, channels = open_.pop(cause)
            spans.append((began, float(raw.get("offset", 0.0)), channels))
    spans.extend((began, float("inf"), channels) for began, channels in open_.values())
    return spans


def drop_paused_gaps(
    streams: list[StreamRecord], tracks: list[Track], raw_events: list[dict[str, Any]], start: float
) -> None:
    """Take the holes a pause left out of each stream's ``gaps`` (they are not loss)."""
    spans = paused_spans(raw_events)
    if not spans:
        return
    for record, track in zip(streams, tracks, strict=True):
        gaps = record.stats.get("gaps")
        if track.timeline is None or not isinstance(gaps, list) or not gaps:
            continue
        anchor = track.timeline.anchor_wall - start
        covering = [
            (a - _PAUSE_EDGE_SECONDS, b + _PAUSE_EDGE_SECONDS)
            for a, b, channels in spans
            if channels not in _SIDES_OF or record.channel in _SIDES_OF[channels]
        ]
        record.stats["gaps"] = [
            [at, length]
            for at, length in gaps
            if not any(a <= anchor + at and anchor + at + length <= b for a, b in covering)
        ]


def journal_events(raw_events: list[dict[str, Any]], dtmf_mode: str) -> list[CallEvent]:
    """The call's own events from the journal (hold, resume, SIPREC events), offsets from the start."""
    events: list[CallEvent] = []
    _, own = guards_from_events(raw_events)
    for raw in own:
        kind = str(raw.get("kind", ""))
        if kind == LOSS_EVENT:
            continue  # becomes a gap event with the stream stats (spool_losses.account)
        data = dict(raw.get("data") or {})
        if kind == "dtmf" and dtmf_mode != "digits":
            data.pop("digit", None)
            data.pop("digits", None)
        events.append(CallEvent(kind, max(0.0, float(raw.get("offset", 0.0))), data))
    return events


def account_storage(
    raw_events: list[dict[str, Any]],
    damaged: list[tuple[int, int]],
    options: RenderOptions,
    streams: list[StreamRecord],
    tracks: list[Track],
    start: float,
) -> StorageAccount:
    """Storage losses from the journal's events, the close report and the reader's damage list."""
    _, journal_losses = split_loss_events(raw_events)
    labels = {t.stream.index: t.stream.label for t in tracks}
    return account([*journal_losses, *options.spool_losses], damaged, streams, labels, start)
