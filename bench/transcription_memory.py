"""Transcription worker memory: a long call decoded whole against decoded in windows.

Run: ``python bench/transcription_memory.py [--minutes 30]``.

A turn-taking stereo call (speech-like signal, 4 s turns, 8 kHz) is encoded as an
archive; each way of handing it to the recogniser runs in a fresh process and
reports that process's peak resident memory (``VmHWM``) and the resident
memory before decoding (Python, numpy, PyAV). The recogniser is left out (it
is the same either way: it hears 30 s at a time); what differs is the audio held:

- **whole** (before): :func:`callvault.media.speech_audio.archive_channels`, the
  whole call as one float32 array, as the ``transcribe`` job decoded it;
- **windows** (now): :func:`callvault.media.speech_audio.archive_windows`, five
  minutes at a time, as the job decodes it now.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from tests.support.audio import voice  # noqa: E402

from callvault.media.archive import encode_archive  # noqa: E402
from callvault.media.speech_audio import archive_channels, archive_windows  # noqa: E402


def long_call(minutes: int, rate: int = 8000) -> bytes:
    seconds = minutes * 60
    sides = np.zeros((2, seconds * rate), dtype=np.int16)
    turn = voice(4, rate, 120, 1), voice(4, rate, 200, 2)
    for n, at in enumerate(range(0, seconds - 4, 5)):
        sides[n % 2, at * rate : (at + 4) * rate] = turn[n % 2]
    return encode_archive(sides, rate)


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _run(way: str, path: str, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    data = Path(path).read_bytes()
    before = _peak_mb()
    samples = 0
    if way == "whole":
        samples = archive_channels(io.BytesIO(data)).shape[1]
    else:
        for _, audio in archive_windows(io.BytesIO(data)):
            samples += audio.shape[1]
    answer.put((before, _peak_mb(), samples / 16000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args()
    archive = long_call(args.minutes)
    print(f"{args.minutes}-minute stereo call, archive {len(archive) / 2**20:.1f} MiB")
    with tempfile.NamedTemporaryFile(suffix=".ogg") as file:
        file.write(archive)
        file.flush()
        spawn = multiprocessing.get_context("spawn")
        for way in ("whole", "windows"):
            answer = spawn.Queue()
            process = spawn.Process(target=_run, args=(way, file.name, answer))
            process.start()
            before, peak, seconds = answer.get()
            process.join()
            print(
                f"  {way:<8} peak RSS {peak:6.0f} MB (before decoding {before:.0f} MB, "
                f"+{peak - before:.0f} MB) for {seconds / 60:.1f} min of audio"
            )


if __name__ == "__main__":
    main()
