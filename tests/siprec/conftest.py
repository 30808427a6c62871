"""A running recorder (SIPREC server + media engine + real services on SQLite) for SIPREC tests."""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callvault.db.models import Recording
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.sip.server import SiprecServer
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings, load_settings
from tests.support.audio import read_wav
from tests.support.people import ADMIN, create_staff

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP = shutil.which("sipp")


@dataclass
class Recorder:
    ctx: ServiceContext
    settings: Settings
    server: SiprecServer
    media: MediaEngine

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

    def audio(self, recording_id: str) -> tuple[npt.NDArray[np.int16], int]:
        """(channels, samples) int16 and rate, decoded by the playback service as a user would get it."""
        return read_wav(self.ctx.playback.open_audio(ADMIN, recording_id, fmt="wav").read())


@pytest.fixture
async def recorder(tmp_path: Path) -> AsyncIterator[Recorder]:
    low = random.randrange(30000, 50000, 2)
    env = {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_SIP_PORT": "0",
        "CALLVAULT_RTP_PORTS": f"{low}-{low + 200}",
        "CALLVAULT_RTP_TIMEOUT": "5",
    }
    settings = load_settings(env=env)
    ctx = open_context(settings)
    create_staff(ctx)
    executor = ThreadPoolExecutor(2)
    media = MediaEngine(settings, ctx.recordings, ctx.directory, render_executor=executor, flush_interval=0.2)
    server = SiprecServer(settings, ctx.recordings, ctx.directory, media)
    await media.start()
    await server.start()
    try:
        yield Recorder(ctx, settings, server, media)
    finally:
        await server.stop()
        await media.stop()
        executor.shutdown(wait=True)
        ctx.close()


def run_sipp(
    scenario: str, port: int, *extra: str, timeout: float = 15.0
) -> subprocess.CompletedProcess[str]:
    """Run one sipp scenario against the recorder (blocking: call through asyncio.to_thread)."""
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
