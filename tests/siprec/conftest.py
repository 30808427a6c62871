"""A running recorder (SIPREC server + media engine + real services on SQLite) for SIPREC tests."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.db.models import Recording
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.sip.server import SiprecServer
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings, load_settings
from tests.support.audio import read_wav
from tests.support.people import ADMIN

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
        """``GET /api/v1/recordings/{id}`` as a user sees it (blocking: call it from a thread)."""
        with TestClient(create_app(self.ctx)) as client:
            response = client.get(
                f"/api/v1/recordings/{recording_id}", headers={"Authorization": f"Bearer {self.token}"}
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


@asynccontextmanager
async def start_recorder(data_dir: Path, database_url: str = "", **env: str) -> AsyncIterator[Recorder]:
    """A recorder on ``data_dir`` and catalog ``database_url`` (empty: SQLite);
    ``env`` overrides settings by name (``rtp_timeout="1"``)."""
    low = random.randrange(30000, 50000, 2)
    values = {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_SIP_PORT": "0",
        "CALLVAULT_RTP_PORTS": f"{low}-{low + 200}",
        "CALLVAULT_RTP_TIMEOUT": "5",
        "CALLVAULT_DATABASE_URL": database_url,
        # Test machines may have less than the default 1 GB reserve free; the reserve has its own tests.
        "CALLVAULT_MIN_FREE_DISK_MB": "16",
    }
    values.update({f"CALLVAULT_{name.upper()}": value for name, value in env.items()})
    settings = load_settings(env=values)
    ctx = open_context(settings)
    token = create_recorder_staff(ctx)
    executor = ThreadPoolExecutor(2)
    server: SiprecServer | None = None

    async def rtp_timeout(recording_id: str) -> None:
        # Wired as `callvault serve` does: the SIP side ends the session (BYE) and closes the media.
        if server is not None:
            await server.on_rtp_timeout(recording_id)

    media = MediaEngine(
        settings,
        ctx.recordings,
        ctx.directory,
        on_timeout=rtp_timeout,
        render_executor=executor,
        flush_interval=0.2,
    )
    clock = ShiftedClock()
    server = SiprecServer(settings, ctx.recordings, ctx.directory, media, clock=clock)
    await media.start()
    await server.start()
    try:
        yield Recorder(ctx, settings, server, media, clock, token)
    finally:
        await server.stop()
        await media.stop()
        executor.shutdown(wait=True)
        ctx.close()


@pytest.fixture
async def recorder(tmp_path: Path, database_url: str) -> AsyncIterator[Recorder]:
    async with start_recorder(tmp_path / "data", database_url) as running:
        yield running


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
        str(random.randrange(15000, 25000)),
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
