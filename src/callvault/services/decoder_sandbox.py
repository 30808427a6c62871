"""Decode untrusted audio (uploads, imports) in a throw-away process with memory and CPU limits.

FFmpeg and the array code around it are native code fed with files from
anyone who can upload: one crafted or merely unusual file (an 8-channel WAV
crashed PyAV's sample conversion) must not take the server, and every live
call it is recording, down with it. Each file is therefore decoded by a fresh
``python -m callvault.services.decode_worker`` that limits its own address
space, CPU time and file writes before reading the file from a pipe; it hands
back the encoded archive. A crash, a limit hit or a timeout fails that one
request with a precise error and leaves the server as it was.

A fresh process per file costs ~0.4 s of start-up; uploads are rare next to
the work of decoding them, and a process that served one hostile file is
never reused for the next.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from callvault.errors import PayloadTooLarge, UnprocessableMedia, UnsupportedMedia
from callvault.services.decode_worker import WorkerOptions

log = logging.getLogger(__name__)

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "callvault.services.decode_worker")


@dataclass(frozen=True)
class Transcoded:
    """The archive made from an untrusted file, and what was wrong with the file."""

    archive: bytes
    sample_rate: int
    channels: int
    samples: int
    damage: tuple[str, ...]
    decode_errors: int

    @property
    def duration_seconds(self) -> float:
        return self.samples / self.sample_rate


class DecoderSandbox:
    def __init__(
        self,
        memory_bytes: int,
        timeout_seconds: int,
        concurrency: int = 2,
        command: Sequence[str] = WORKER_COMMAND,
    ) -> None:
        """``command`` is the worker to run; tests replace it to simulate a dying decoder."""
        self._memory = memory_bytes
        self._timeout = timeout_seconds
        self._command = list(command)
        # Each worker may use up to ``memory_bytes``: bound how many run at once.
        self._slots = threading.BoundedSemaphore(concurrency)

    def transcode(
        self, data: bytes, max_seconds: float, bitrate_per_channel: int, silence_gate_dbfs: float | None
    ) -> Transcoded:
        options = WorkerOptions(
            max_seconds=max_seconds,
            bitrate_per_channel=bitrate_per_channel,
            silence_gate_dbfs=silence_gate_dbfs,
            memory_bytes=self._memory,
            cpu_seconds=self._timeout,
        )
        with self._slots:
            try:
                done = subprocess.run(
                    [*self._command, options.to_json()],
                    input=data,
                    capture_output=True,
                    timeout=self._timeout,
                    env=_worker_env(),
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise UnprocessableMedia(
                    f"decoding took longer than {self._timeout} s; the file was refused"
                ) from None
        return self._result(done)

    def _result(self, done: subprocess.CompletedProcess[bytes]) -> Transcoded:
        if done.returncode != 0:
            log.warning("audio decoder failed (%s): %s", _describe(done.returncode), _last_line(done.stderr))
            if done.returncode == -signal.SIGXCPU:
                raise UnprocessableMedia(
                    f"decoding took more than {self._timeout} s of CPU; the file was refused"
                )
            raise UnprocessableMedia(
                f"the audio decoder failed on this file ({_describe(done.returncode)}); nothing was stored"
            )
        line, _, archive = done.stdout.partition(b"\n")
        try:
            header = json.loads(line)
        except ValueError:
            raise UnprocessableMedia("the audio decoder gave no usable answer; nothing was stored") from None
        if not header.get("ok"):
            detail = str(header.get("detail", "undecodable audio"))
            if header.get("kind") == "too_long":
                raise PayloadTooLarge(f"{detail} (CALLVAULT_MAX_UPLOAD_SECONDS)")
            if header.get("kind") == "memory":
                raise PayloadTooLarge(f"{detail} (CALLVAULT_DECODER_MEMORY_MB)")
            raise UnsupportedMedia(detail)
        return Transcoded(
            archive=archive,
            sample_rate=int(header["sample_rate"]),
            channels=int(header["channels"]),
            samples=int(header["samples"]),
            damage=tuple(str(d) for d in header["damage"]),
            decode_errors=int(header["decode_errors"]),
        )


def _worker_env() -> dict[str, str]:
    """Only what the worker needs to import callvault: no credentials from the server's environment."""
    env = {"LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    path = [p for p in sys.path if p]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def _describe(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else "no message"
