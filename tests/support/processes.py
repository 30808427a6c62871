"""Run callvault as users do: the installed console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def callvault_command() -> list[str]:
    script = shutil.which("callvault")
    return [script] if script else [sys.executable, "-m", "callvault"]


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        callvault_command() + args,
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`callvault serve` in a subprocess; yields once /healthz answers."""
    port = env["CALLVAULT_HTTP_PORT"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            callvault_command() + ["serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def healthy() -> bool:
                if process.poll() is not None:
                    raise AssertionError(
                        f"serve exited with {process.returncode}: {log_path.read_text()[-3000:]}"
                    )
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 60, "callvault serve to answer /healthz")
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
