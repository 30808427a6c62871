"""Decode untrusted audio (uploads, imports) in a throw-away process with memory and CPU limits.

FFmpeg and the array code around it are native code fed with files from
anyone who can upload: one crafted or merely unusual file (an 8-channel WAV
crashed PyAV's sample conversion) must not take the server, and every live
call it is recording, down with it. Each file is therefore decoded by a fresh
``python -m callvault.services.decode_worker`` that reads its options from a
pipe, limits its own address space, CPU time and file writes, then reads the
file from the same pipe; it hands back the encoded archive (or, for a
recording announcement, its fingerprint). A crash, a limit
hit or a timeout fails that one request with a precise error and leaves the
server as it was.

Starting a worker (Python, NumPy, PyAV) costs ~0.4 s or more on a loaded
machine, so one spare worker is kept started: after its first file the
sandbox always has the next worker importing while it waits. A worker still
decodes exactly one file: a process that served one hostile file is never
reused for the next, and its limits are set before it reads a byte of it.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from callvault.errors import PayloadTooLarge, UnprocessableMedia, UnsupportedMedia

log = logging.getLogger(__name__)

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "callvault.services.decode_worker")


@dataclass(frozen=True)
class WorkerOptions:
    """What the worker needs before it reads the file: the first line on its stdin."""

    max_seconds: float
    bitrate_per_channel: int
    silence_gate_dbfs: float | None
    memory_bytes: int
    cpu_seconds: int
    # "archive": the file as a recording; "fingerprint": an announcement's fingerprint.
    mode: str = "archive"

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerOptions:
        return cls(**json.loads(text))


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


@dataclass(frozen=True)
class AnnouncementPrint:
    """The fingerprint made from an untrusted announcement file (see :mod:`callvault.media.announcement_match`)."""

    fingerprint: bytes
    sound_seconds: float
    file_seconds: float


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
        if self._command != list(WORKER_COMMAND):
            # A test's stand-in worker (one that spins, say) must not idle on as a spare.
            weakref.finalize(self, _stop_spare, tuple(self._command))

    def close(self) -> None:
        """Stop this sandbox's spare worker, unless it is the process-wide one (see _take_worker)."""
        if self._command != list(WORKER_COMMAND):
            _stop_spare(tuple(self._command))

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
        header, archive = self._run(options, data)
        return Transcoded(
            archive=archive,
            sample_rate=int(header["sample_rate"]),
            channels=int(header["channels"]),
            samples=int(header["samples"]),
            damage=tuple(str(d) for d in header["damage"]),
            decode_errors=int(header["decode_errors"]),
        )

    def fingerprint(self, data: bytes, max_seconds: float) -> AnnouncementPrint:
        """The fingerprint of an announcement file; damaged, silent or non-audio files are refused."""
        options = WorkerOptions(
            max_seconds=max_seconds,
            bitrate_per_channel=0,
            silence_gate_dbfs=None,
            memory_bytes=self._memory,
            cpu_seconds=self._timeout,
            mode="fingerprint",
        )
        header, body = self._run(options, data)
        return AnnouncementPrint(body, float(header["sound_seconds"]), float(header["file_seconds"]))

    def _run(self, options: WorkerOptions, data: bytes) -> tuple[dict[str, Any], bytes]:
        """Hand ``data`` to a fresh worker: its JSON header and what follows it."""
        with self._slots:
            worker = _take_worker(tuple(self._command))
            with worker:
                try:
                    stdout, stderr = worker.communicate(
                        options.to_json().encode() + b"\n" + data, timeout=self._timeout
                    )
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.communicate()
                    raise UnprocessableMedia(
                        f"decoding took longer than {self._timeout} s; the file was refused"
                    ) from None
        done = subprocess.CompletedProcess(self._command, worker.returncode, stdout, stderr)
        return self._result(done, options.mode)

    def _result(self, done: subprocess.CompletedProcess[bytes], mode: str) -> tuple[dict[str, Any], bytes]:
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
                limit = "CALLVAULT_MAX_UPLOAD_SECONDS" if mode == "archive" else "announcement files"
                raise PayloadTooLarge(f"{detail} ({limit})")
            if header.get("kind") == "memory":
                raise PayloadTooLarge(f"{detail} (CALLVAULT_DECODER_MEMORY_MB)")
            if header.get("kind") == "unusable":
                raise UnprocessableMedia(detail)
            raise UnsupportedMedia(detail)
        return header, archive


# One started spare per worker command, shared by every sandbox of the process (tests open
# many service contexts; a server has one): it waits on its stdin, so it exits by itself
# when this process dies, and is stopped at a normal exit.
_spares: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}
_spares_lock = threading.Lock()


def _start_worker(command: tuple[str, ...]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_worker_env()
    )


def _take_worker(command: tuple[str, ...]) -> subprocess.Popen[bytes]:
    """The spare worker (or a fresh one when there is none), and a new spare started for the
    next file: it imports while this file is decoded."""
    with _spares_lock:
        spare = _spares.pop(command, None)
        worker = spare if spare is not None and spare.poll() is None else _start_worker(command)
        _spares[command] = _start_worker(command)
    return worker


def _stop_spare(command: tuple[str, ...]) -> None:
    with _spares_lock:
        spare = _spares.pop(command, None)
    if spare is not None:
        spare.kill()
        spare.communicate()


@atexit.register
def _stop_spares() -> None:
    for command in list(_spares):
        _stop_spare(command)


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
