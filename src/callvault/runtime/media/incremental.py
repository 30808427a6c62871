"""Rendering a recording while the call runs, so that hang-up only leaves the tail to do.

An :class:`IncrementalRender` follows one session's journal as it grows
(:class:`~callvault.storage.spool.SpoolTail`): each :meth:`~IncrementalRender.advance`
reads the records appended since the last one, feeds the per-stream
:class:`StreamTimeline` (SRTP unprotected with a receiver kept per stream), and
renders, mixes and Opus-encodes the audio that can no longer change into one
:class:`ArchiveEncoder` that lives as long as the call. The encoded Ogg pages
go to the journal's :class:`~callvault.storage.spool.ArchivePart` side file, so
neither PCM nor the archive piles up in memory (the side file is sealed under
a key of its own that only this object holds, so no one else can read it and
a crash leaves nothing readable behind): a call holds the not yet
rendered packets (at most the hold-back plus one step), one render chunk of
PCM, and its timelines' packet headers (~40 bytes per packet; payloads of
rendered audio are released).

What "can no longer change": everything more than ``holdback`` seconds
(15 s, the timeline's own re-anchoring hold-back) before the newest time
known, i.e. the caller's ``now`` (the engine's clock) or else the newest
arrival in the journal. One horizon for all streams keeps a silent side or a
stream on hold from stalling the other; a packet that arrives for audio
already rendered is dropped, as ``StreamTimeline.drain_until`` drops it.

:meth:`~IncrementalRender.finish` renders the rest up to the hang-up, adds the
streams' statistics and events and returns the finished archive. The
placement of every packet is the same as in the one-shot
:func:`~callvault.runtime.media.finaliser.render_contents`; the rendering is
cut into windows with the part of a frame that crosses a window end carried
into the next window.

The module functions :func:`advance_recording` and :func:`finish_recording`
are the worker-process entry points: the renderer of each journal stays in
the memory of the process that runs its jobs (the engine pins every session
to one worker). A worker that lost the state (it died and was replaced)
simply starts again from the journal's first byte.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callvault.media.archive import ArchiveEncoder
from callvault.media.codec_spec import CodecSpec
from callvault.media.mixing import mix_down
from callvault.rtp.render import PayloadDecoderLike, render_placements
from callvault.rtp.stats import StreamGuard, guards_from_events
from callvault.rtp.timeline import PlacementArrays, StreamTimeline
from callvault.runtime.media.finaliser import (
    NARROW_RATE,
    WIDE_RATE,
    WIDEBAND,
    Pcm,
    RenderedRecording,
    RenderOptions,
    _audio_codecs,
    _dtmf_events,
    _fit,
    _journal_events,
    _srtp_receiver,
    _Track,
    account_storage,
    stream_records,
    unprotect_all,
)
from callvault.runtime.media.spool_key import journal_reader, side_file_seal
from callvault.services.call_record import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    MIXED_CHANNEL,
    ArchiveAudio,
)
from callvault.storage.spool import ArchivePart, SpoolContents, SpoolStream, SpoolTail, archive_part_path

HOLDBACK_SECONDS = 15.0
# Rendered samples of a frame that starts before a window end and runs past it
# (any ptime up to this) are carried into the next window.
SPILL_SECONDS = 1.0
# PCM is produced in windows of at most this much, whatever the step.
CHUNK_SECONDS = 60.0
# Payloads of rendered audio are released from the timelines this often.
RELEASE_SECONDS = 60.0

_EMPTY: Pcm = np.zeros(0, dtype=np.int16)


@dataclass
class _Live:
    """One stream of the call as the renderer follows it."""

    spool: SpoolStream
    timeline: StreamTimeline | None = None
    receiver: Any | None = None  # SRTP
    receiver_params: dict[str, Any] | None = None
    decoders: dict[int, tuple[CodecSpec, PayloadDecoderLike]] = field(default_factory=dict)
    payload_types: set[int] = field(default_factory=set)  # seen in packets, until the format is chosen
    carry: Pcm = field(default_factory=lambda: _EMPTY)


@dataclass
class _View:
    """A stream's placements not yet released, with their sample positions on the recording."""

    live: _Live
    arrays: PlacementArrays
    positions: np.ndarray[Any, np.dtype[np.int64]]
    base: int


class IncrementalRender:
    def __init__(
        self, journal: Path, key: bytes, options: RenderOptions, *, holdback: float = HOLDBACK_SECONDS
    ) -> None:
        self.journal = journal
        self.options = options
        self._holdback = holdback
        self._tail = SpoolTail(journal, journal_reader(key))
        self._part = ArchivePart(archive_part_path(journal), side_file_seal())
        self._streams: dict[int, _Live] = {}
        self._events: list[dict[str, Any]] = []
        self._guards: dict[int, StreamGuard] = {}
        self._damaged: list[tuple[int, int]] = []
        self.recording_id: str | None = None
        self.started_at: float | None = None
        self._latest: float | None = None
        self._encoder: ArchiveEncoder | None = None
        self.rate = NARROW_RATE
        self._mono = False
        self.rendered = 0  # samples from started_at handed to the encoder
        self._released = 0
        self.steps = 0
        self.timings: dict[str, float] = {"read_spool": 0.0, "timeline_render_encode": 0.0}

    @property
    def rendered_seconds(self) -> float:
        return self.rendered / self.rate

    # -- following the journal -----------------------------------------------------------------

    def _read(self) -> None:
        began = time.perf_counter()
        delta = self._tail.read()
        if delta is None:
            return
        self.recording_id, self.started_at = delta.recording_id, delta.started_at
        for index, stream in delta.streams.items():
            live = self._streams.get(index)
            if live is None:
                self._streams[index] = _Live(stream)
            else:
                live.spool = stream
        _, own = guards_from_events(delta.events, self._guards)
        self._events.extend(own)
        self._damaged.extend(delta.damaged)
        grouped: dict[int, tuple[list[float], list[bytes]]] = {}
        for batch in delta.batches:
            arrivals, packets = grouped.setdefault(batch.stream, ([], []))
            arrivals.extend(batch.arrivals)
            packets.extend(batch.packets)
        self.timings["read_spool"] += time.perf_counter() - began
        for index, (arrivals, packets) in grouped.items():
            live = self._streams.get(index)
            if live is not None:  # packets of an undeclared stream are not audio of this call
                self._feed(live, arrivals, packets)

    def _feed(self, live: _Live, arrivals: list[float], packets: list[bytes]) -> None:
        params = live.spool.srtp
        if params is not None:
            if live.receiver is None or live.receiver_params != params:
                live.receiver, live.receiver_params = _srtp_receiver(params), params
            guard = self._guards.setdefault(live.spool.index, StreamGuard())
            arrivals, packets = unprotect_all(live.receiver, arrivals, packets, guard)
        if not packets:
            return
        if live.timeline is None:
            audio = _audio_codecs(live.spool)
            live.timeline = StreamTimeline(
                audio[0].clock_rate if audio else NARROW_RATE,
                audio_payload_types=[c.payload_type for c in audio],
                event_payload_types=[c.payload_type for c in live.spool.codecs if c.is_telephone_event],
            )
        live.timeline.add_batch(np.asarray(arrivals, dtype=np.float64), packets)
        if self._encoder is None:
            live.payload_types.update(p[1] & 0x7F for p in packets if len(p) > 1)
        newest = max(arrivals)
        self._latest = newest if self._latest is None else max(self._latest, newest)

    # -- rendering -----------------------------------------------------------------------------

    def _ensure_encoder(self) -> ArchiveEncoder:
        if self._encoder is None:
            # Chosen once, as the one-shot renderer chooses: wideband if a packet so far
            # used a wideband codec, stereo unless every stream is labelled mixed.
            wide = any(
                c.encoding in WIDEBAND and c.payload_type in live.payload_types
                for live in self._streams.values()
                for c in _audio_codecs(live.spool)
            )
            self.rate = WIDE_RATE if wide else NARROW_RATE
            sided = any(s.spool.channel in (AGENT_CHANNEL, CUSTOMER_CHANNEL) for s in self._streams.values())
            self._mono = bool(self._streams) and not sided
            self._encoder = self.options.encoder(self.rate, 1 if self._mono else 2)
        return self._encoder

    def advance(self, now: float | None = None) -> float:
        """Render, encode and spool what can no longer change; returns the seconds of audio done now."""
        began = time.perf_counter()
        self._read()
        newest = self._latest if now is None else max(now, self._latest or now)
        if self.started_at is None or newest is None:
            return 0.0
        self._ensure_encoder()
        target = math.floor((newest - self._holdback - self.started_at) * self.rate)
        done = self._render_until(target)
        self.steps += 1
        self.timings["timeline_render_encode"] += time.perf_counter() - began
        return done / self.rate

    def _view(self, live: _Live) -> _View | None:
        timeline = live.timeline
        if timeline is None:
            return None
        try:
            arrays = timeline.placement_arrays()
            anchor = timeline.anchor_wall
        except (ValueError, AssertionError):
            return None  # no valid RTP at all (all malformed): nothing to place
        assert self.started_at is not None
        base = round((anchor - self.started_at) * self.rate)
        positions = base + (arrays.offset * self.rate) // timeline.clock_rate
        return _View(live, arrays, positions, base)

    def _render_until(self, target: int) -> int:
        if target <= self.rendered:
            return 0
        encoder = self._ensure_encoder()
        views = [self._view(live) for _, live in sorted(self._streams.items())]
        first = self.rendered
        chunk = round(CHUNK_SECONDS * self.rate)
        while self.rendered < target:
            end = min(target, self.rendered + chunk)
            encoder.write(self._mix(views, self.rendered, end))
            self.rendered = end
        self._part.append(encoder.drain())
        if self.rendered - self._released >= RELEASE_SECONDS * self.rate:
            self._release(views)
        return self.rendered - first

    def _mix(self, views: list[_View | None], start: int, end: int) -> Pcm:
        length = end - start
        sides: dict[int, list[Pcm]] = {AGENT_CHANNEL: [], CUSTOMER_CHANNEL: [], MIXED_CHANNEL: []}
        for view in views:
            if view is None:
                continue
            pcm = self._render_window(view, start, end)
            if pcm is not None:
                channel = view.live.spool.channel
                sides[channel if channel in sides else MIXED_CHANNEL].append(pcm)
        if self._mono:
            every = sides[MIXED_CHANNEL] + sides[AGENT_CHANNEL] + sides[CUSTOMER_CHANNEL]
            return _fit(mix_down(every), length).reshape(1, -1)
        block = np.zeros((2, length), dtype=np.int16)
        block[0] = _fit(mix_down(sides[AGENT_CHANNEL] + sides[MIXED_CHANNEL]), length)
        block[1] = _fit(mix_down(sides[CUSTOMER_CHANNEL] + sides[MIXED_CHANNEL]), length)
        return block

    def _render_window(self, view: _View, start: int, end: int) -> Pcm | None:
        live = view.live
        timeline = live.timeline
        assert timeline is not None and self.started_at is not None
        # The first window also takes audio anchored before the session start (clipped).
        lo = 0 if start == 0 else int(np.searchsorted(view.positions, start))
        hi = int(np.searchsorted(view.positions, end))
        carry = live.carry
        if lo >= hi and carry.size == 0:
            return None
        length = end - start
        span = length + round(SPILL_SECONDS * self.rate)
        if lo < hi:
            arrays = view.arrays
            chosen = PlacementArrays(arrays.offset[lo:hi], arrays.payload_type[lo:hi], arrays.payloads[lo:hi])
            # Shifting the anchor by the window start keeps render_placements' own
            # rounding: positions come out exactly ``view.positions - start``.
            pcm = render_placements(
                chosen,
                self.started_at + (view.base - start) / self.rate,
                timeline.clock_rate,
                self._decoders(live),
                self.rate,
                span / self.rate,
                self.started_at,
            )
        else:
            pcm = np.zeros(span, dtype=np.int16)
        if carry.size:
            head = pcm[: carry.size]
            # Later placements overwrite earlier ones, as in a one-shot render.
            pcm[: carry.size] = np.where(head != 0, head, carry[: head.size])
        rest = pcm[length:]
        live.carry = rest.copy() if rest.any() else _EMPTY
        return pcm[:length]

    def _decoders(self, live: _Live) -> dict[int, PayloadDecoderLike]:
        from callvault.media.payload_codecs import create_decoder

        for codec in _audio_codecs(live.spool):
            known = live.decoders.get(codec.payload_type)
            if known is None or known[0] != codec:
                decoder = create_decoder(codec.encoding, codec.clock_rate, codec.channels)
                live.decoders[codec.payload_type] = (codec, decoder)
        return {pt: decoder for pt, (_, decoder) in live.decoders.items()}

    def _release(self, views: list[_View | None]) -> None:
        for view in views:
            if view is None or view.live.timeline is None:
                continue
            index = int(np.searchsorted(view.positions, self.rendered))
            offsets = view.arrays.offset
            if index < len(offsets):
                view.live.timeline.drain_until(int(offsets[index]))
            elif len(offsets):
                view.live.timeline.drain_until(int(offsets[-1]) + 1)
        self._released = self.rendered

    # -- hang-up -------------------------------------------------------------------------------

    def _audio_end(self) -> float | None:
        """Wall time of the end of the last audio placed (for a journal without a hang-up)."""
        ends: list[float] = []
        for live in self._streams.values():
            view = self._view(live)
            timeline = live.timeline
            if view is None or timeline is None or not len(view.arrays):
                continue
            last = int(view.arrays.offset[-1]) + timeline.clock_rate // 50
            ends.append(timeline.anchor_wall + last / timeline.clock_rate)
        return max(ends) if ends else None

    def finish(self, ended_at: float | None) -> RenderedRecording:
        """Render the rest up to ``ended_at`` (None: the last audio) and return the finished archive."""
        began = time.perf_counter()
        self._read()
        if self.started_at is None or self.recording_id is None:
            raise ValueError(f"journal {self.journal} has no readable session header")
        encoder = self._ensure_encoder()
        end = ended_at
        if end is None:
            end = self._audio_end() or self._latest or self.started_at
        before = self.rendered
        self._render_until(round(max(0.0, end - self.started_at) * self.rate))
        tail = self.rendered - before
        data = self._part.read_all() + encoder.finish()
        self._part.close()
        rendered = self._result(data, end)
        rendered.tail_seconds = tail / self.rate
        self.timings["finish"] = time.perf_counter() - began
        rendered.timings = dict(self.timings)
        return rendered

    def _result(self, data: bytes, ended_at: float) -> RenderedRecording:
        assert self.started_at is not None and self.recording_id is not None
        tracks: list[_Track] = []
        for _, live in sorted(self._streams.items()):
            audio = _audio_codecs(live.spool)
            timeline = live.timeline if self._view(live) is not None else None
            guard = self._guards.get(live.spool.index, StreamGuard())
            tracks.append(_Track(live.spool, timeline, audio[0].encoding if audio else None, guard=guard))
        streams = stream_records(tracks)
        journal = SpoolContents(self.recording_id, self.started_at, events=self._events)
        events = _journal_events(journal, self.started_at, self.options.dtmf_mode)
        for track in tracks:
            events.extend(_dtmf_events(track, self.started_at, self.options.dtmf_mode))
        storage = account_storage(self._events, self._damaged, self.options, streams, tracks, self.started_at)
        events.extend(storage.events)
        events.sort(key=lambda e: e.offset_seconds)
        expected = sum(int(s.stats["expected"]) for s in streams)  # type: ignore[call-overload]
        lost = sum(int(s.stats["lost"]) for s in streams)  # type: ignore[call-overload]
        audio_out = ArchiveAudio(
            data=data,
            sample_rate=self.rate,
            channels=1 if self._mono else 2,
            duration_seconds=self.rendered / self.rate,
            mixed=self._mono,
        )
        return RenderedRecording(
            recording_id=self.recording_id,
            audio=audio_out,
            streams=streams,
            events=events,
            ended_at=ended_at,
            loss_fraction=lost / expected if expected else 0.0,
            storage_incomplete=storage.incomplete,
            spool_lost=storage.lost_packets,
        )

    def close(self) -> None:
        self._part.close()


# -- worker-process entry points ------------------------------------------------------------------

_RENDERS: dict[str, IncrementalRender] = {}
_RENDERS_LOCK = threading.Lock()


def advance_recording(path: str, key: bytes, options: RenderOptions, now: float | None = None) -> float:
    """Advance the call-time render of the journal at ``path`` (sealed under ``key``); returns the seconds rendered so far."""
    with _RENDERS_LOCK:
        render = _RENDERS.get(path)
        if render is None:
            render = _RENDERS[path] = IncrementalRender(Path(path), key, options)
    try:
        render.advance(now)
    except BaseException:
        # Half-done state is not trusted: the hang-up renders again from the journal.
        with _RENDERS_LOCK:
            _RENDERS.pop(path, None)
        render.close()
        raise
    return render.rendered_seconds


def finish_recording(path: str, key: bytes, options: RenderOptions) -> RenderedRecording:
    """Finish the journal's render up to ``options.ended_at`` (starting afresh if this process has none)."""
    with _RENDERS_LOCK:
        render = _RENDERS.pop(path, None)
    if render is None:
        render = IncrementalRender(Path(path), key, options)
    # Only known at hang-up: the storage losses capture could not journal.
    render.options = dataclasses.replace(render.options, spool_losses=options.spool_losses)
    try:
        return render.finish(options.ended_at)
    finally:
        render.close()


def live_renders() -> int:
    """Journals this process is rendering (for tests)."""
    with _RENDERS_LOCK:
        return len(_RENDERS)
