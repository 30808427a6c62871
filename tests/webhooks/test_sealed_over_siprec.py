"""A real SIPREC call to `callvault serve`'s composition root reaches a webhook receiver, signed;
a delivery queued when the server stops is delivered by the next server on the same catalog."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from callvault.cli.serve import RunningServer, running_server
from callvault.db.webhook_models import WebhookDelivery
from callvault.runtime.demo_src import run_demo
from callvault.services.webhook_signing import verify_signature
from callvault.settings import load_settings
from tests.siprec.conftest import start_recorder
from tests.support.people import ADMIN
from tests.support.ports import rtp_range
from tests.support.webhook_receiver import Receiver, webhook_receiver

WEBHOOK_ENV = {
    "webhook_allow_private_targets": "true",  # the receiver is on loopback
    "webhook_backoff_seconds": "0.2",
    "webhook_backoff_max_seconds": "1",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as running:
        yield running


async def test_a_siprec_call_sends_a_signed_recording_sealed(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    async with start_recorder(tmp_path / "data", database_url, **WEBHOOK_ENV) as recorder:
        created = await asyncio.to_thread(
            recorder.ctx.webhooks.create, ADMIN, receiver.url, ["recording.sealed", "recording.deleted"]
        )
        (call_id,) = await run_demo("127.0.0.1", recorder.port, calls=1, seconds=1.0)
        recording_id = await recorder.recording_for(call_id)
        sealed = await recorder.finished(recording_id)
        (request,) = await asyncio.to_thread(receiver.wait_for, 1)
        assert verify_signature(created.secret, request.headers["callvault-signature"], request.body)
        event = request.event
        assert event["type"] == "recording.sealed"
        data = event["data"]
        assert data["recording_id"] == recording_id and data["source"] == "siprec"
        assert data["status"] == sealed.status == "complete"
        assert data["audio_sha256"] == sealed.audio_sha256 and data["object_sha256"] == sealed.object_sha256
        # Ids and hashes only: the parties' numbers stay behind the API.
        assert b"+1415" not in request.body and b"sip:" not in request.body


@asynccontextmanager
async def serving(data_dir: Path, database_url: str) -> AsyncIterator[RunningServer]:
    env = {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_SIP_HOST": "127.0.0.1",
        "CALLVAULT_SIP_PORT": "0",
        "CALLVAULT_HTTP_PORT": "0",
        "CALLVAULT_RTP_PORTS": rtp_range(100),
        "CALLVAULT_MIN_FREE_DISK_MB": "16",
        **{f"CALLVAULT_{k.upper()}": v for k, v in WEBHOOK_ENV.items()},
    }
    with ThreadPoolExecutor(2) as renders:
        async with running_server(
            load_settings(env=env), first_admin=False, render_executor=renders, sip_any_port=True
        ) as server:
            yield server


def _deliveries(server: RunningServer) -> list[WebhookDelivery]:
    with server.ctx.catalog.read() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


async def test_a_queued_delivery_survives_a_restart(
    tmp_path: Path, database_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "callvault")  # the servers' log, shown if this test fails
    receiver.answers = [503]  # the receiver is down while the first server runs
    async with serving(tmp_path / "data", database_url) as first:
        created = await asyncio.to_thread(
            first.ctx.webhooks.create, ADMIN, receiver.url, ["recording.sealed"]
        )
        assert first.sip is not None and first.sip.udp_port is not None
        (call_id,) = await run_demo("127.0.0.1", first.sip.udp_port, calls=1, seconds=0.5)
        refused = await asyncio.to_thread(receiver.wait_for, 1)
    (queued,) = _deliveries(first)  # read after the first server stopped
    assert queued.status == "pending" and queued.attempts >= 1 and queued.last_status_code == 503
    attempts_before = len(receiver.requests)

    receiver.answers = [200]
    async with serving(tmp_path / "data", database_url) as second:
        await asyncio.to_thread(receiver.wait_for, attempts_before + 1)
        for _ in range(600):
            (row,) = await asyncio.to_thread(_deliveries, second)
            if row.status != "pending":
                break
            await asyncio.sleep(0.05)
    assert row.status == "delivered" and row.last_status_code == 200 and row.attempts > queued.attempts
    delivered = receiver.requests[-1]
    assert delivered.event["id"] == refused[0].event["id"] == queued.event_id
    assert delivered.body == refused[0].body
    assert verify_signature(created.secret, delivered.headers["callvault-signature"], delivered.body)
    assert delivered.event["data"]["recording_id"] and call_id
