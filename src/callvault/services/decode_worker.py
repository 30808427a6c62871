"""The decoder worker: turn one untrusted audio file into the archive format, in its own process.

Run as ``python -m callvault.services.decode_worker`` by
:mod:`callvault.services.decoder_sandbox`, which may start it before there is
a file for it (a spare). It reads one line of options from stdin, limits
itself (address space, CPU seconds, no file writes, no core dump) before it
reads a byte of the file, reads the file from the rest of stdin, and writes
one JSON header line then the encoded archive to stdout. A decoder that
crashes or runs away takes only this process with it.

Everything after decoding happens here too (channel selection, resampling,
Opus encoding), so the server never holds the decoded samples: what comes
back is the archive, about 1/20 of the PCM.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any

import numpy as np

from callvault.media.announcement_match import fingerprint
from callvault.media.archive import decode_audio, encode_archive
from callvault.media.mixing import resample
from callvault.services.decoder_sandbox import WorkerOptions

# Archives keep two channels at most: agent left, customer right.
MAX_ARCHIVE_CHANNELS = 2


def archive_rate(rate: int) -> int:
    """Narrowband stays 8 kHz; anything above is speech at music rates, kept at 16 kHz."""
    return 8000 if rate <= 8000 else 16000


def transcode(data: bytes, options: WorkerOptions) -> tuple[dict[str, Any], bytes]:
    """Decode ``data`` (keeping damage, see ``decode_audio(salvage=True)``) and encode the archive."""
    decoded = decode_audio(
        data, max_seconds=options.max_seconds, salvage=True, max_channels=MAX_ARCHIVE_CHANNELS
    )
    del data
    rate = archive_rate(decoded.sample_rate)
    pcm = decoded.pcm
    if rate != decoded.sample_rate:
        pcm = np.stack([resample(channel, decoded.sample_rate, rate) for channel in pcm])
    archive = encode_archive(
        np.ascontiguousarray(pcm),
        rate,
        options.bitrate_per_channel,
        silence_gate_dbfs=options.silence_gate_dbfs,
    )
    header = {
        "ok": True,
        "sample_rate": rate,
        "channels": int(pcm.shape[0]),
        "samples": int(pcm.shape[1]),
        "damage": list(decoded.damage),
        "decode_errors": decoded.decode_errors,
    }
    return header, archive


def fingerprint_file(data: bytes, options: WorkerOptions) -> tuple[dict[str, Any], bytes]:
    """Decode an announcement (refusing damage: it is the reference every call is compared with),
    mix it to mono and fingerprint it; ``ValueError`` names what is wrong with it."""
    decoded = decode_audio(data, max_seconds=options.max_seconds, max_channels=MAX_ARCHIVE_CHANNELS)
    del data
    mono = np.round(decoded.pcm.astype(np.float64).mean(axis=0)).astype(np.int16)
    rate = decoded.sample_rate
    if rate != 8000 and rate != 16000:
        # The envelope needs 300-3400 Hz: 16 kHz keeps it for every higher rate.
        mono, rate = resample(mono, rate, 16000), 16000
    try:
        made = fingerprint(mono, rate)
    except ValueError as exc:  # audio, but not an announcement calls can be checked for
        return {"ok": False, "kind": "unusable", "detail": str(exc)}, b""
    header = {"ok": True, "sound_seconds": made.duration_seconds, "file_seconds": decoded.duration}
    return header, made.to_bytes()


def _limit_self(options: WorkerOptions) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (options.memory_bytes, options.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (options.cpu_seconds, options.cpu_seconds + 1))
    # The worker needs no files: stdout is a pipe, which this limit does not cover.
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> int:
    source = sys.stdin.buffer
    line = source.readline()
    if not line:
        return 0  # a spare the sandbox closed without giving it a file
    options = WorkerOptions.from_json(line)
    _limit_self(options)
    out = sys.stdout.buffer
    try:
        # No name here keeps the file alive: transcode drops it once decoded.
        work = fingerprint_file if options.mode == "fingerprint" else transcode
        header, archive = work(source.read(), options)
    except ValueError as exc:
        kind = "too_long" if "longer than the limit" in str(exc) else "invalid"
        header, archive = {"ok": False, "kind": kind, "detail": str(exc)}, b""
    except MemoryError:
        detail = f"decoding needs more than the decoder's {options.memory_bytes // 2**20} MiB of memory"
        header, archive = {"ok": False, "kind": "memory", "detail": detail}, b""
    out.write(json.dumps(header).encode() + b"\n")
    out.write(archive)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
