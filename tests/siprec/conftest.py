"""A running recorder for SIPREC tests: `callvault serve`'s own composition root
(:func:`callvault.cli.serve.running_server`) on uvloop, with real services on SQLite
or PostgreSQL. When a test fails, the recorder's log is printed."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from callvault.cli.serve import RunningServer, running_server
from callvault.db.models import Recording
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.sip.server import SiprecServer
from callvault.services.context import ServiceContext
from callvault.settings import Settings, load_settings
from tests.support.audio import read_wav
from tests.support.people import ADMIN
from tests.support.ports import free_port, rtp_range
from tests.support.reports import test_failed

SCENARIOS = Path(__file__).parent / "scenarios"
T = TypeVar("T")
SIPP = shutil.which("sipp")


# SRC peers block in their own threads: the event loop's default executor (cpu + 4
# threads) is where the recorder runs its catalogue work, and a few simultaneous
# calls waiting there for their answer would starve the very work that answers them.
_PEERS = ThreadPoolExecutor(32, thread_name_prefix="test-peer")


async def as_peer(work: Callable[[], T]) -> T:
    """Run a blocking SRC/sipp exchange in a peer thread and wait for it."""
    return await asyncio.get_running_loop().run_in_executor(_PEERS, work)


@dataclass
class Recorder:
    ctx: ServiceContext
    settings: Settings
    server: SiprecServer
    media: MediaEngine
    clock: ShiftedClock
    token: str  # API bearer token of a compliance officer
    running: RunningServer | None = None
    log_lines: list[str] = field(default_factory=list)

    def print_log(self) -> None:
        print("----- recorder log -----", *self.log_lines[-400:], "----- end of recorder log -----", sep="\n")

    @property
    def http_port(self) -> int:
        assert self.running is not None
        return self.running.http_port

    @property
    def port(self) -> int:
        assert self.server.udp_port is not None
        return self.server.udp_port

    async def recording_for(self, call_id: str, within: float = 10.0) -> str:
        deadline = time.monotonic() + within
        while call_id not in self.server.recording_ids:
            if time.monotonic() > deadline:
                raise AssertionError(f"no recording was begun for call {call_id}")
            await asyncio.sleep(0.02)
        return self.server.recording_ids[call_id]

    async def finished(self, recording_id: str, within: float = 30.0) -> Recording:
        """Poll the catalogue until the recording leaves status 'recording'."""
        deadline = time.monotonic() + within
        while True:
            with self.ctx.catalog.read() as session:
                recording = session.get(Recording, recording_id)
                if recording is not None and recording.status != "recording":
                    session.expunge(recording)
                    return recording
            if time.monotonic() > deadline:
                raise AssertionError(f"recording {recording_id} was not finalised within {within} s")
            await asyncio.sleep(0.05)

    def detail(self, recording_id: str) -> dict[str, Any]:
        """``GET /api/v1/recordings/{id}`` over HTTP from the running server (blocking: call it from a thread)."""
        response = httpx.get(
            f"http://127.0.0.1:{self.http_port}/api/v1/recordings/{recording_id}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def audio(self, recording_id: str) -> tuple[npt.NDArray[np.int16], int]:
        """(channels, samples) int16 and rate, decoded by the playback service as a user would get it."""
        return read_wav(self.ctx.playback.open_audio(ADMIN, recording_id, fmt="wav").read())


class ShiftedClock:
    """The SIP server's monotonic clock, which a test can move forward (session timers)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def create_recorder_staff(ctx: ServiceContext) -> str:
    """The agents the directory rule needs (no passwords: hashing them costs ~0.15 s each);
    returns an API token of a compliance officer, who may read every recording."""
    for name, identities in (
        ("alice", ["sip:1001@pbx.example", "+14155550101"]),
        ("bob", ["sip:1002@pbx.example"]),
    ):
        ctx.users.create_user(ADMIN, name, "agent", team="red", sip_identities=identities)
    ctx.users.create_user(ADMIN, "carol", "compliance_officer")
    return ctx.users.create_token(ADMIN, "carol", "test")


class _LogCapture(logging.Handler):
    """The recorder's log records, printed when the test using it fails."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@asynccontextmanager
async def start_recorder(data_dir: Path, database_url: str = "", **env: str) -> AsyncIterator[Recorder]:
    """A recorder on ``data_dir`` and catalog ``database_url`` (empty: SQLite);
    ``env`` overrides settings by name (``rtp_timeout="1"``)."""
    values = {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_SIP_HOST": "127.0.0.1",
        "CALLVAULT_SIP_PORT": "0",
        "CALLVAULT_HTTP_HOST": "127.0.0.1",
        "CALLVAULT_HTTP_PORT": "0",
        "CALLVAULT_RTP_PORTS": rtp_range(200),
        "CALLVAULT_RTP_TIMEOUT": "5",
        "CALLVAULT_DATABASE_URL": database_url,
        # Test machines may have less than the default 1 GB reserve free; the reserve has its own tests.
        "CALLVAULT_MIN_FREE_DISK_MB": "16",
        # No background job workers unless a test asks (job_workers="1"): each would transcribe
        # every call the test seals, minutes of CPU over the suite for what tests/asr covers.
        "CALLVAULT_JOB_WORKERS": "0",
    }
    values.update({f"CALLVAULT_{name.upper()}": value for name, value in env.items()})
    settings = load_settings(env=values)
    capture = _LogCapture()
    logger = logging.getLogger("callvault")
    logger.addHandler(capture)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    executor = ThreadPoolExecutor(2)
    clock = ShiftedClock()
    try:
        async with running_server(
            settings,
            first_admin=False,
            render_executor=executor,
            flush_interval=0.2,
            sip_clock=clock,
            sip_any_port=True,
        ) as running:
            assert running.sip is not None
            token = await asyncio.to_thread(create_recorder_staff, running.ctx)
            recorder = Recorder(
                running.ctx, settings, running.sip, running.media, clock, token, running, capture.lines
            )
            yield recorder
    except BaseException:
        print("----- recorder log -----", *capture.lines[-400:], "----- end of recorder log -----", sep="\n")
        raise
    finally:
        executor.shutdown(wait=True)
        logger.removeHandler(capture)
        logger.setLevel(previous_level)


@pytest.fixture
async def recorder(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Recorder]:
    async with start_recorder(tmp_path / "data", database_url) as running:
        yield running
        if test_failed(request):
            running.print_log()


def run_sipp(
    scenario: str, port: int, *extra: str, timeout: float = 15.0
) -> subprocess.CompletedProcess[str]:
    """Run one sipp scenario against the recorder (blocking: call it from a thread)."""
    assert SIPP is not None
    command = [
        SIPP,
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIOS / scenario) if "/" not in scenario else scenario,
        "-m",
        "1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
        *extra,
    ]
    with tempfile.TemporaryDirectory(prefix="sipp-") as workdir:
        # sipp writes its error logs into the working directory.
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout + 10, cwd=workdir, check=False
        )
