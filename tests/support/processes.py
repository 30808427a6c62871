"""Run callvault as users do: the installed console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port

__all__ = [
    "alive",
    "callvault_command",
    "descendants",
    "free_port",
    "print_log",
    "run_cli",
    "running_server",
    "wait_for",
]


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


def print_log(log_path: Path, what: str = "server") -> None:
    """Show the server's log in the failing test's report (pytest prints captured stdout)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        text = f"(no log: {exc})"
    print(f"----- {what} log {log_path} -----\n{text[-20000:]}\n----- end of {what} log -----")


@contextmanager
def running_server(
    env: dict[str, str], log_path: Path, *, stop_within: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """`callvault serve` in a subprocess; yields once /healthz answers.

    On leaving, a server still running gets SIGTERM and must exit with status 0
    within ``stop_within`` seconds (a graceful stop); one the test killed itself
    is left to the test. When anything fails the server's log is printed.
    """
    port = env["CALLVAULT_HTTP_PORT"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            callvault_command() + ["serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def healthy() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"serve exited with {process.returncode} before answering /healthz")
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(healthy, 180, "callvault serve to answer /healthz")
            yield process
            if process.poll() is None:
                process.terminate()
                try:
                    code = process.wait(timeout=stop_within)
                except subprocess.TimeoutExpired:
                    raise AssertionError(f"serve did not stop within {stop_within} s of SIGTERM") from None
                assert code == 0, f"serve exited with status {code} after SIGTERM"
        except BaseException:
            print_log(log_path)
            raise
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def descendants(root: int) -> dict[int, bytes]:
    """pid → /proc/<pid>/stat start time of every living descendant of ``root``."""
    parents: dict[int, int] = {}
    started: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[1].split()
        parents[int(entry.name)], started[int(entry.name)] = int(fields[1]), fields[19]
    found: dict[int, bytes] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = started[pid]
                frontier.append(pid)
    return found


def alive(pid: int, started: bytes) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    fields = stat.rsplit(b")", 1)[1].split()
    return fields[19] == started and fields[0] != b"Z"
