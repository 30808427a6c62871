"""Real services on a temporary data directory for the media runtime tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.support.ports import rtp_range

from callvault.db.models import Recording
from callvault.media.archive import decode_audio
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext, open_context
from callvault.settings import Settings, load_settings


def make_settings(data_dir: Path, ports: str, database_url: str = "") -> Settings:
    return load_settings(
        env={},
        data_dir=str(data_dir),
        rtp_ports=ports,
        sip_host="127.0.0.1",
        rtp_timeout="30",
        database_url=database_url,
    )


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Iterator[ServiceContext]:
    ctx = open_context(make_settings(tmp_path / "data", rtp_range(200), database_url))
    yield ctx
    ctx.close()


def begin_call(ctx: ServiceContext) -> str:
    return ctx.recordings.begin(
        CallRecord(
            started_at=datetime.now(UTC),
            source="siprec",
            direction="inbound",
            calling_number="+14155550123",
            called_number="+14155550100",
            participants=[
                ParticipantRecord("sip:1001@pbx", role="agent"),
                ParticipantRecord("sip:+14155550123@carrier"),
            ],
        )
    )


async def wait_final(ctx: ServiceContext, recording_id: str, within: float = 60.0) -> Recording:
    """Poll the catalogue until the recording leaves status 'recording'."""
    deadline = time.monotonic() + within
    while True:
        with ctx.catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None and recording.status != "recording":
                _ = list(recording.streams), list(recording.events)  # load before leaving the session
                session.expunge_all()
                return recording
        if time.monotonic() > deadline:
            raise AssertionError(f"recording {recording_id} was not finalised within {within} s")
        await asyncio.sleep(0.05)


def archive_pcm(ctx: ServiceContext, recording: Recording) -> tuple[npt.NDArray[np.int16], int]:
    reader = ctx.playback.open_reader(recording)
    decoded = decode_audio(reader.read(0, reader.plaintext_size))
    return decoded.pcm, decoded.sample_rate


class FastClock:
    """Wall-clock time running ``speedup`` times faster than real time (from now on)."""

    def __init__(self, speedup: float) -> None:
        self._speedup = speedup
        self._wall, self._mono = time.time(), time.monotonic()

    def __call__(self) -> float:
        return self._wall + (time.monotonic() - self._mono) * self._speedup
