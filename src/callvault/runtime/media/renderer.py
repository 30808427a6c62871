"""The one renderer: a journal into an archive, followed as it grows, from call start or from its first byte.

A :class:`JournalRenderer` follows one session's journal
(:class:`~callvault.storage.spool.SpoolTail`): each :meth:`~JournalRenderer.advance`
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

:meth:`~JournalRenderer.finish` renders the rest up to the hang-up (or, after
a crash, to the end of the last audio), adds the streams' statistics and
events and returns the finished archive. Crash recovery is the same object
created on a journal and finished at once: the first read takes the whole
journal. The rendering is cut into windows with the part of a frame that
crosses a window end carried into the next window, so the output does not
depend on how the journal was cut into steps (the tests check it against a
one-shot reference render).

The mixed PCM of the first ``options.disclosure_seconds`` also goes
through an :class:`~callvault.media.band_envelope.EnvelopeFollower` on its
way to the encoder: the envelopes (not the audio) come back as the
recording's ``opening``, which the disclosure check at sealing compares
with the recording announcements, so that audio is never decoded twice.

Shared pieces (options, SRTP, mixing, result assembly) live in :mod:`.tracks`;
the worker-process entry points in :mod:`.render_jobs`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callvault.media.archive import ArchiveEncoder
from callvault.media.band_envelope import EnvelopeFollower
from callvault.media.codec_spec import CodecSpec
from callvault.media.peaks import PeaksFollower
from callvault.rtp.render import PayloadDecoderLike, render_placements
from callvault.rtp.stats import StreamGuard, guards_from_events
from callvault.rtp.timeline import PlacementArrays, StreamTimeline
from callvault.runtime.media.spool_key import journal_reader, side_file_seal
from callvault.runtime.media.tracks import (
    NARROW_RATE,
    WIDE_RATE,
    WIDEBAND,
    Pcm,
    RenderedRecording,
    RenderOptions,
    Track,
    assemble,
    audio_codecs,
    is_mono,
    mix_channels,
    new_timeline,
    srtp_receiver,
    unprotect_all,
)
from callvault.services.call_record import ArchiveAudio, CallOpening
from callvault.storage.spool import ArchivePart, SpoolStream, SpoolTail, archive_part_path

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


class JournalRenderer:
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
        # Band envelopes of the first seconds, taken from the PCM on its way to the encoder.
        self._opening: EnvelopeFollower | None = None
        # The waveform's peaks, from the same PCM (the archive is never decoded for them).
        self._peaks: PeaksFollower | None = None
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
                live.receiver, live.receiver_params = srtp_receiver(params), params
            guard = self._guards.setdefault(live.spool.index, StreamGuard())
            arrivals, packets = unprotect_all(live.receiver, arrivals, packets, guard)
        if not packets:
            return
        if live.timeline is None:
            live.timeline = new_timeline(live.spool)
        live.timeline.add_batch(np.asarray(arrivals, dtype=np.float64), packets)
        if self._encoder is None:
            live.payload_types.update(p[1] & 0x7F for p in packets if len(p) > 1)
        newest = max(arrivals)
        self._latest = newest if self._latest is None else max(self._latest, newest)

    # -- rendering -----------------------------------------------------------------------------

    def _ensure_encoder(self) -> ArchiveEncoder:
        if self._encoder is None:
            # Chosen once, as the reference render chooses: wideband if a packet so far
            # used a wideband codec, stereo unless every stream is labelled mixed.
            wide = any(
                c.encoding in WIDEBAND and c.payload_type in live.payload_types
                for live in self._streams.values()
                for c in audio_codecs(live.spool)
            )
            self.rate = WIDE_RATE if wide else NARROW_RATE
            self._mono = is_mono([live.spool.channel for live in self._streams.values()])
            self._encoder = self.options.encoder(self.rate, 1 if self._mono else 2)
            self._peaks = PeaksFollower(self.rate, 1 if self._mono else 2)
            if self.options.disclosure_seconds > 0:
                channels = 1 if self._mono else 2
                self._opening = EnvelopeFollower(self.rate, channels, self.options.disclosure_seconds)
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
            block = self._mix(views, self.rendered, end)
            if self._opening is not None and not self._opening.done:
                self._opening.feed(block)
            if self._peaks is not None:
                self._peaks.feed(block)
            encoder.write(block)
            self.rendered = end
        self._part.append(encoder.drain())
        if self.rendered - self._released >= RELEASE_SECONDS * self.rate:
            self._release(views)
        return self.rendered - first

    def _mix(self, views: list[_View | None], start: int, end: int) -> Pcm:
        sides: list[tuple[int, Pcm]] = []
        for view in views:
            if view is None:
                continue
            pcm = self._render_window(view, start, end)
            if pcm is not None:
                sides.append((view.live.spool.channel, pcm))
        return mix_channels(sides, end - start, self._mono)

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
            # Later placements overwrite earlier ones, as in a render of the whole call.
            pcm[: carry.size] = np.where(head != 0, head, carry[: head.size])
        rest = pcm[length:]
        live.carry = rest.copy() if rest.any() else _EMPTY
        return pcm[:length]

    def _decoders(self, live: _Live) -> dict[int, PayloadDecoderLike]:
        from callvault.media.payload_codecs import create_decoder

        for codec in audio_codecs(live.spool):
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
        if self._opening is not None:
            names = ("mixed",) if self._mono else ("agent", "customer")
            rendered.opening = CallOpening(self._opening.envelopes(), names, self.options.disclosure_seconds)
        self.timings["finish"] = time.perf_counter() - began
        rendered.timings = dict(self.timings)
        return rendered

    def _result(self, data: bytes, ended_at: float) -> RenderedRecording:
        assert self.started_at is not None and self.recording_id is not None
        tracks: list[Track] = []
        for _, live in sorted(self._streams.items()):
            audio = audio_codecs(live.spool)
            timeline = live.timeline if self._view(live) is not None else None
            guard = self._guards.get(live.spool.index, StreamGuard())
            tracks.append(Track(live.spool, timeline, audio[0].encoding if audio else None, guard=guard))
        archive = ArchiveAudio(
            data=data,
            sample_rate=self.rate,
            channels=1 if self._mono else 2,
            duration_seconds=self.rendered / self.rate,
            mixed=self._mono,
            peaks=self._peaks.peaks() if self._peaks is not None else None,
        )
        return assemble(
            self.recording_id,
            archive,
            tracks,
            self._events,
            self._damaged,
            self.started_at,
            ended_at,
            self.options,
        )

    def close(self) -> None:
        self._part.close()
