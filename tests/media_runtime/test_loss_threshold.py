"""CALLVAULT_LOSS_THRESHOLD decides when a normally ended call is sealed ``incomplete``.

Only non-default thresholds can tell a setting that is read from one that is ignored.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.media_runtime.conftest import begin_call, wait_final
from tests.media_runtime.rtp_send import rtp_packets, send_paced, tone
from tests.support.ports import rtp_range

from callvault.media.codec_spec import CodecSpec
from callvault.runtime.media.engine import MediaEngine
from callvault.runtime.media.sealing import final_status
from callvault.runtime.media.tracks import RenderedRecording
from callvault.services.call_record import ArchiveAudio
from callvault.services.context import ServiceContext, open_context
from callvault.settings import load_settings

PCMU = CodecSpec(0, "PCMU", 8000)


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[ServiceContext]:
    ctx = open_context(load_settings(env={}, data_dir=str(tmp_path / "data")))
    yield ctx
    ctx.close()


@pytest.mark.parametrize(
    ("threshold", "loss", "requested", "sealed"),
    [
        (None, 0.04, "complete", "complete"),  # the default, 5 %
        (None, 0.06, "complete", "incomplete"),
        ("0.02", 0.03, "complete", "incomplete"),  # stricter than the default
        ("0.02", 0.02, "complete", "complete"),  # at the threshold is not over it
        ("0.2", 0.107, "complete", "complete"),  # more lenient than the default
        ("0.2", 0.25, "complete", "incomplete"),
        ("0", 0.001, "complete", "incomplete"),
        ("0", 0.0, "complete", "complete"),
        ("0.02", 0.5, "interrupted", "interrupted"),  # loss never upgrades nor changes other statuses
    ],
)
def test_final_status_follows_the_configured_threshold(
    sqlite_services: ServiceContext, threshold: str | None, loss: float, requested: str, sealed: str
) -> None:
    extra = {} if threshold is None else {"loss_threshold": threshold}
    settings = load_settings(env={}, data_dir=str(sqlite_services.settings.data_dir), **extra)
    rendered = RenderedRecording("r", ArchiveAudio(b"", 8000, 2, 0.0), [], [], 0.0, loss)
    assert final_status(requested, rendered, settings.loss_threshold) == sealed  # type: ignore[arg-type]


async def test_a_stricter_threshold_flags_a_call_the_default_would_pass(
    tmp_path: Path, database_url: str
) -> None:
    settings = load_settings(
        env={},
        data_dir=str(tmp_path / "data"),
        rtp_ports=rtp_range(200),
        sip_host="127.0.0.1",
        database_url=database_url,
        loss_threshold="0.02",
    )
    services = open_context(settings)
    engine = MediaEngine(settings, services.recordings)
    await engine.start()
    try:
        recording_id = begin_call(services)
        session = engine.open_session(recording_id, time.time())
        agent_port = engine.add_stream(session.recording_id, "agent", [PCMU], 0, "sip:1001@pbx", None)
        customer_port = engine.add_stream(session.recording_id, "customer", [PCMU], 1, None, None)
        lost = {10, 20, 30, 40}  # 4 of 120 packets: 3.3 %, over 2 % but under the default 5 %
        schedule = [
            (i * 0.02, p, ("127.0.0.1", agent_port)) for i, p in enumerate(rtp_packets(tone(440, 1.2), 1))
        ]
        schedule += [
            (i * 0.02 + 0.0005, p, ("127.0.0.1", customer_port))
            for i, p in enumerate(rtp_packets(tone(1000, 1.2), 2))
            if i not in lost
        ]
        await asyncio.to_thread(send_paced, schedule)
        await engine.close(session.recording_id, "complete")
        recording = await wait_final(services, recording_id)
    finally:
        await engine.stop()
        services.close()
    stats = {s.label: s.stats for s in recording.streams}
    assert (stats["customer"]["expected"], stats["customer"]["lost"]) == (60, 4), stats
    assert stats["agent"]["lost"] == 0, stats
    assert recording.status == "incomplete"
