"""Finalisation throughput: call-hours finalised per core-hour (read spool, SRTP-free G.711 decode,
timeline, render, mix, Opus encode, then encrypt + hash + sign + catalogue).

Run: ``python bench/pipeline.py [--minutes 10]``

Builds a spool journal of a two-stream G.711 call with synthetic speech (agent
and customer, 20 ms packets, realistic batches of one flush per second),
finalises it through the recorder's own finaliser into a RecordingService on a
temporary data directory, and prints each stage's time and the whole as a
multiple of real time (one core; the finaliser runs one recording per core).
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import tempfile
import time
from datetime import UTC, datetime

import numpy as np

from callvault.media.codec_spec import CodecSpec
from callvault.media.g711 import ulaw_encode
from callvault.media.signals import synth_speech_like
from callvault.runtime.media.finaliser import RenderOptions, render_recording
from callvault.services.call_record import CallRecord
from callvault.services.context import open_context
from callvault.settings import load_settings
from callvault.storage.spool import SpoolStream, SpoolWriter


def build_spool(
    settings_spool: object, recording_id: str, minutes: float, started_at: float
) -> tuple[object, float]:
    from pathlib import Path

    spool_dir = Path(str(settings_spool))
    seconds = minutes * 60
    writer = SpoolWriter.create(spool_dir, recording_id, started_at)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    data = tempfile.mkdtemp(prefix="cv-pipeline-")
    try:
        settings = load_settings(env={}, data_dir=data)
        ctx = open_context(settings)
        started = time.time() - args.minutes * 60 - 5
        recording_id = ctx.recordings.begin(
            CallRecord(started_at=datetime.fromtimestamp(started, UTC), source="siprec")
        )
        path, seconds = build_spool(settings.spool_dir, recording_id, args.minutes, started)
        size = os.path.getsize(str(path))
        print(f"spool: {seconds / 60:.0f} min, 2 streams G.711, {size / 1e6:.1f} MB journal")

        cpu0, wall0 = time.process_time(), time.perf_counter()
        rendered = render_recording(str(path), RenderOptions())
        t_render = time.perf_counter() - wall0
        ended = datetime.fromtimestamp(rendered.ended_at, UTC)
        t1 = time.perf_counter()
        ctx.recordings.finalise(
            recording_id, rendered.audio, "complete", rendered.streams, rendered.events, ended
        )
        t_seal = time.perf_counter() - t1
        cpu = time.process_time() - cpu0
        total = t_render + t_seal
        print(
            f"archive: {len(rendered.audio.data) / 1e3:.0f} kB Ogg Opus, {rendered.audio.duration_seconds:.1f} s, loss {rendered.loss_fraction:.3%}"
        )
        for stage, spent in [*rendered.timings.items(), ("encrypt_sign_catalogue", t_seal)]:
            print(f"  {stage:<24}{spent:8.3f} s   {seconds / spent:9.0f}x real time")
        print(f"  {'total':<24}{total:8.3f} s   {seconds / total:9.0f}x real time  (CPU {cpu:.2f} s)")
        print(f"call-hours finalised per core-hour: {seconds / cpu:.0f}")
        print(
            f"finalisation of a one-hour call after BYE (extrapolated, one core): {3600 / (seconds / total):.1f} s"
        )
        ctx.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
