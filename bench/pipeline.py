"""Finalisation pipeline: throughput per core and time from hang-up to a searchable recording.

Run: ``python bench/pipeline.py [--minutes 60] [--one-shot]``

Builds a spool journal of a two-stream G.711 call with synthetic speech (agent
and customer, 20 ms packets, realistic batches of one flush per second) and

(a) renders it the way the recorder does while a call runs (call-time
    rendering: journal read, timeline, G.711 decode, render, mix, Opus encode
    in steps as the journal grows, then the tail at hang-up), then encrypts,
    hashes, signs and catalogues it; prints call-hours finalised per
    core-hour (one core);
(b) replays the call through a real ``MediaEngine`` (render worker process,
    engine clock simulated so the hour is written in seconds, render steps
    run as they come due) and times ``MediaEngine.close()`` to the recording
    being 'complete' in the catalog;
(c) with ``--one-shot``, crash recovery for comparison: the same renderer
    started from the journal's first byte, the whole call in one job.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import struct
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY

from callvault.db.models import Recording
from callvault.media.codec_spec import CodecSpec
from callvault.media.g711 import ulaw_encode
from callvault.media.signals import synth_speech_like
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.render_jobs import render_journal
from callvault.runtime.media.render_schedule import MAX_RENDER_STEP, RENDER_STEP
from callvault.runtime.media.renderer import JournalRenderer
from callvault.runtime.media.spool_key import SpoolKey, journal_seal
from callvault.runtime.media.tracks import RenderOptions
from callvault.services.call_record import CallRecord
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings, load_settings
from callvault.storage.spool import SpoolStream, SpoolWriter, delete_spool


def build_spool(
    settings_spool: object, spool_key: SpoolKey, minutes: float, started_at: float
) -> tuple[object, float]:
    spool_dir = Path(str(settings_spool))
    seconds = minutes * 60
    writer = spool_key.create_journal(spool_dir, started_at)
    pcmu = CodecSpec(0, "PCMU", 8000)
    writer.write_stream(SpoolStream(0, "agent", [pcmu], 0, "sip:1001@pbx"))
    writer.write_stream(SpoolStream(1, "customer", [pcmu], 1, None))
    rng = np.random.default_rng(5)
    for index, seed in ((0, 1), (1, 2)):
        speech = synth_speech_like(seconds, 8000, seed=seed)
        payload = ulaw_encode(speech)
        count = len(speech) // 160
        header = struct.Struct("!BBHII")
        packets = [
            header.pack(0x80, 0, i & 0xFFFF, (i * 160) & 0xFFFFFFFF, 0xABC0 + index)
            + payload[i * 160 : (i + 1) * 160]
            for i in range(count)
        ]
        arrivals = started_at + 0.05 + np.arange(count) * 0.02 + rng.uniform(0, 0.004, count)
        for s in range(0, count, 50):
            writer.write_packets(index, arrivals[s : s + 50].tolist(), packets[s : s + 50])
    writer.close()
    return writer.path, seconds


class _Call:
    """Packets of a synthetic call, to be appended to a journal minute by minute."""

    def __init__(self, minutes: float, started_at: float) -> None:
        seconds = minutes * 60
        rng = np.random.default_rng(5)
        header = struct.Struct("!BBHII")
        self.streams: list[tuple[np.ndarray, list[bytes]]] = []
        for index, seed in ((0, 1), (1, 2)):
            payload = ulaw_encode(synth_speech_like(seconds, 8000, seed=seed))
            count = len(payload) // 160
            packets = [
                header.pack(0x80, 0, i & 0xFFFF, (i * 160) & 0xFFFFFFFF, 0xABC0 + index)
                + payload[i * 160 : (i + 1) * 160]
                for i in range(count)
            ]
            arrivals = started_at + 0.05 + np.arange(count) * 0.02 + rng.uniform(0, 0.004, count)
            self.streams.append((arrivals, packets))

    def write_minute(self, writer: SpoolWriter, minute: int) -> None:
        for index, (arrivals, packets) in enumerate(self.streams):
            for s in range(minute * 3000, min(len(packets), (minute + 1) * 3000), 50):
                writer.write_packets(index, arrivals[s : s + 50].tolist(), packets[s : s + 50])


def _step_due(elapsed: float, since: float) -> bool:
    return since >= min(MAX_RENDER_STEP, max(RENDER_STEP, elapsed / 8))


def call_time_pipeline(settings: Settings, ctx: ServiceContext, minutes: float) -> None:
    """(a): the call-time renderer fed minute by minute, then hang-up and sealing, on one core."""
    spool_dir = settings.spool_dir
    started = time.time() - minutes * 60 - 5
    recordings = ctx.recordings
    recording_id = recordings.begin(
        CallRecord(started_at=datetime.fromtimestamp(started, UTC), source="siprec")
    )
    call = _Call(minutes, started)
    spool_key = SpoolKey.new(ctx.keys, recording_id)
    writer = spool_key.create_journal(spool_dir, started)
    pcmu = CodecSpec(0, "PCMU", 8000)
    writer.write_stream(SpoolStream(0, "agent", [pcmu], 0, "sip:1001@pbx"))
    writer.write_stream(SpoolStream(1, "customer", [pcmu], 1, None))
    render = JournalRenderer(writer.path, spool_key.key, RenderOptions())
    cpu = 0.0
    last = 0.0
    total_minutes = int(np.ceil(minutes))
    for minute in range(total_minutes):
        call.write_minute(writer, minute)
        now = min(minutes, minute + 1) * 60
        if _step_due(now, now - last):
            last = now
            cpu0 = time.process_time()
            render.advance(started + now)
            cpu += time.process_time() - cpu0
    writer.close()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rendered = render.finish(started + minutes * 60)
    t_finish = time.perf_counter() - wall0
    ended = datetime.fromtimestamp(rendered.ended_at, UTC)
    recordings.finalise(recording_id, rendered.audio, "complete", rendered.streams, rendered.events, ended)
    delete_spool(writer.path)
    t_close = time.perf_counter() - wall0
    cpu += time.process_time() - cpu0
    seconds = minutes * 60
    print(
        f"(a) call-time rendering, {render.steps + 1} render jobs, {rendered.tail_seconds:.0f} s of audio left at hang-up"
    )
    print(
        f"    archive {len(rendered.audio.data) / 1e3:.0f} kB, {rendered.audio.duration_seconds:.1f} s;"
        f" CPU {cpu:.2f} s for the whole pipeline"
    )
    print(f"    call-hours finalised per core-hour: {seconds / cpu:.0f}  (x real time per core)")
    print(f"    in-process hang-up to sealed (finish {t_finish:.2f} s + seal): {t_close:.2f} s")


async def engine_close_to_sealed(settings: Settings, ctx: ServiceContext, minutes: float) -> None:
    """(b): MediaEngine.close() to 'complete' through a real MediaEngine and render worker."""
    started = time.time() - minutes * 60 - 5
    now = [started]
    recordings = ctx.recordings
    engine = MediaEngine(settings, recordings, clock=lambda: now[0])
    await engine.start()
    recording_id = recordings.begin(
        CallRecord(started_at=datetime.fromtimestamp(started, UTC), source="siprec")
    )
    session = engine.open_session(recording_id, started)
    pcmu = CodecSpec(0, "PCMU", 8000)
    engine.add_stream(session.recording_id, "agent", [pcmu], 0, "sip:1001@pbx", None)
    engine.add_stream(session.recording_id, "customer", [pcmu], 1, None, None)
    call = _Call(minutes, started)
    # A second writer on the session's journal stands in for a capture worker (writer 1).
    writer = SpoolWriter.append_to(session.journal, journal_seal(session.spool_key, recording_id, 1))
    total = int(np.ceil(minutes))
    for minute in range(total):
        call.write_minute(writer, minute)
        now[0] = started + min(minutes, minute + 1) * 60
        # The worst case: hang-up comes just before a step is due, the longest
        # interval (MAX_RENDER_STEP) after the last one.
        if minute < total - MAX_RENDER_STEP / 60 or minutes <= MAX_RENDER_STEP / 60:
            await engine.render_due()
    writer.close()
    rendered_before = engine.rendered_seconds(session.recording_id)
    tails_before = REGISTRY.get_sample_value("callvault_render_tail_seconds_sum") or 0.0
    wall0 = time.perf_counter()
    await engine.close(session.recording_id, "complete")
    catalog = ctx.catalog
    while True:
        with catalog.read() as db:
            recording = db.get(Recording, recording_id)
            if recording is not None and recording.status != "recording":
                status = recording.status
                break
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - wall0
    await engine.stop()
    tail = (REGISTRY.get_sample_value("callvault_render_tail_seconds_sum") or 0.0) - tails_before
    print(
        f"(b) engine: {rendered_before:.0f} s rendered before hang-up,"
        f" {tail:.0f} s after;"
        f" close() -> {status} in the catalog: {elapsed:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument(
        "--one-shot", action="store_true", help="also time crash recovery (the whole journal in one job)"
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    data = tempfile.mkdtemp(prefix="cv-pipeline-")
    try:
        settings = load_settings(
            # No RTP reaches the engine's sockets (the journal is written directly): no RTP timeout.
            env={},
            data_dir=data,
            rtp_ports="43000-43099",
            sip_host="127.0.0.1",
            rtp_timeout="1000000",
        )
        ctx = open_context(settings)
        print(f"call: {args.minutes:.0f} min, 2 streams G.711, synthetic speech")
        call_time_pipeline(settings, ctx, args.minutes)
        asyncio.run(engine_close_to_sealed(settings, ctx, args.minutes))
        if args.one_shot:
            one_shot(settings, ctx, args.minutes)
        ctx.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def one_shot(settings: Settings, ctx: ServiceContext, minutes: float) -> None:
    """(c): crash recovery: the renderer started from the journal's first byte, in one job."""
    recordings = ctx.recordings
    started = time.time() - minutes * 60 - 5
    recording_id = recordings.begin(
        CallRecord(started_at=datetime.fromtimestamp(started, UTC), source="siprec")
    )
    spool_key = SpoolKey.new(ctx.keys, recording_id)
    path, seconds = build_spool(settings.spool_dir, spool_key, minutes, started)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    rendered = render_journal(str(path), spool_key.key, RenderOptions(ended_at=started + seconds))
    ended = datetime.fromtimestamp(rendered.ended_at, UTC)
    recordings.finalise(recording_id, rendered.audio, "complete", rendered.streams, rendered.events, ended)
    total = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    print(f"(c) recovery (whole journal, one job): {total:.2f} s, {seconds / cpu:.0f}x real time per core")
    for stage, spent in rendered.timings.items():
        print(f"      {stage:<22}{spent:8.3f} s")


if __name__ == "__main__":
    main()
