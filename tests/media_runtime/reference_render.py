"""A one-shot reference render of a journal, to check the real renderer (:mod:`~callvault.runtime.media.renderer`) against.

The straightforward way: read the whole journal, build every stream's
timeline in one batch, render each stream over the whole call, mix and
encode. Not used by the product; the call-time renderer must give the same
placements, statistics and events, whatever its steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from callvault.rtp.render import render_placements
from callvault.rtp.stats import StreamGuard, guards_from_events
from callvault.runtime.media.spool_key import journal_reader
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
from callvault.services.call_record import ArchiveAudio
from callvault.storage.spool import SpoolContents, SpoolStream, read_spool


def reference_render(path: Path, key: bytes, options: RenderOptions) -> RenderedRecording:
    contents = read_spool(path, journal_reader(key))
    guards, _ = guards_from_events(contents.events)
    tracks = [
        _track(contents, stream, guards.get(stream.index, StreamGuard()))
        for stream in sorted(contents.streams.values(), key=lambda s: s.index)
    ]
    used = {int(p.payload_type) for t in tracks if t.timeline is not None for p in t.timeline.placements()}
    wide = any(
        c.encoding in WIDEBAND and c.payload_type in used for t in tracks for c in audio_codecs(t.stream)
    )
    rate = WIDE_RATE if wide else NARROW_RATE
    start = contents.started_at
    ended_at = options.ended_at if options.ended_at is not None else _audio_end(tracks, contents)
    length = round(max(0.0, ended_at - start) * rate)
    sides = [(t.stream.channel, pcm) for t in tracks if (pcm := _render(t, rate, start, length)) is not None]
    mono = is_mono([t.stream.channel for t in tracks])
    encoder = options.encoder(rate, 1 if mono else 2)
    encoder.write(mix_channels(sides, length, mono))
    audio = ArchiveAudio(encoder.finish(), rate, 1 if mono else 2, length / rate, mono)
    return assemble(
        contents.recording_id, audio, tracks, contents.events, contents.damaged, start, ended_at, options
    )


def _track(contents: SpoolContents, stream: SpoolStream, guard: StreamGuard) -> Track:
    arrivals, packets = contents.packets_of(stream.index)
    if stream.srtp is not None and packets:
        arrivals, packets = unprotect_all(srtp_receiver(stream.srtp), arrivals, packets, guard)
    audio = audio_codecs(stream)
    codec = audio[0].encoding if audio else None
    if not packets:
        return Track(stream, None, codec, guard)
    timeline = new_timeline(stream)
    timeline.add_batch(np.asarray(arrivals, dtype=np.float64), packets)
    try:
        timeline.placements()
    except ValueError:
        return Track(stream, None, codec, guard)
    return Track(stream, timeline, codec, guard)


def _render(track: Track, rate: int, start: float, length: int) -> Pcm | None:
    timeline = track.timeline
    if timeline is None:
        return None
    from callvault.media.payload_codecs import create_decoder

    decoders = {
        c.payload_type: create_decoder(c.encoding, c.clock_rate, c.channels)
        for c in audio_codecs(track.stream)
    }
    pcm = render_placements(
        timeline.placements(), timeline.anchor_wall, timeline.clock_rate, decoders, rate, length / rate, start
    )
    return np.asarray(pcm, dtype=np.int16).reshape(-1)


def _audio_end(tracks: list[Track], contents: SpoolContents) -> float:
    ends = [
        t.timeline.anchor_wall + (p[-1].offset + t.timeline.clock_rate // 50) / t.timeline.clock_rate
        for t in tracks
        if t.timeline is not None and (p := t.timeline.placements())
    ]
    return max(ends) if ends else (contents.last_arrival or contents.started_at)
