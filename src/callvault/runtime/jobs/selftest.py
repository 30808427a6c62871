"""``selftest``: a harmless built-in diagnostic job that shows the workers run jobs.

``callvault jobs selftest`` queues one and waits for it. It writes a marker per
attempt and its output once under ``<data dir>/jobs-selftest/``, so an operator
(and the contract tests) can see that a job whose worker died was run again
and completed once. Its payload can ask it to hold for a while (reporting
progress, honouring a cancel) or to fail, to try retries and dead-lettering
on a live system without touching any recording.

Payload: ``token`` (1-64 of ``[A-Za-z0-9_-]``, required), ``hold_s`` (seconds
to hold on every attempt), ``hold_first_s`` (only on the first), ``fail``
(a reason: every attempt fails and is retried), ``fail_permanently`` (a
reason: the job is dead at once).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from callvault.jobs.port import JobFailed, JobHandler, Progress
from callvault.services.context import ServiceContext

KIND = "selftest"
MAX_HOLD_S = 600.0
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def selftest_dir(data_dir: Path) -> Path:
    return data_dir / "jobs-selftest"


def _seconds(payload: Mapping[str, Any], name: str) -> float:
    value = payload.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_HOLD_S:
        raise JobFailed(f"selftest: {name} must be a number of seconds from 0 to {MAX_HOLD_S:.0f}")
    return float(value)


def _hold(seconds: float, progress: Progress) -> None:
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds and not progress.cancelled():
        progress(elapsed / seconds)
        threading.Event().wait(min(0.05, seconds - elapsed))


def selftest_handler(ctx: ServiceContext) -> JobHandler:
    root = selftest_dir(ctx.settings.data_dir)

    def run(payload: Mapping[str, Any], progress: Progress) -> None:
        token = payload.get("token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise JobFailed("selftest: token must be 1 to 64 letters, digits, '-' or '_'")
        root.mkdir(mode=0o700, exist_ok=True)
        attempts = root / f"{token}.attempts"
        first = not attempts.exists()
        with attempts.open("a") as marker:
            marker.write(f"{os.getpid()}\n")
        _hold(_seconds(payload, "hold_s") + (_seconds(payload, "hold_first_s") if first else 0.0), progress)
        if isinstance(payload.get("fail_permanently"), str):
            raise JobFailed(f"selftest: {payload['fail_permanently']}")
        if isinstance(payload.get("fail"), str):
            raise RuntimeError(f"selftest: {payload['fail']}")
        try:  # written once: a repeated run finds the output and leaves it as it is
            fd = os.open(root / f"{token}.done", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as done:
            done.write(f"{os.getpid()}\n")

    return run
