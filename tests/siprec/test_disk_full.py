"""SIPREC calls and a full disk: short outages cost nothing, a full disk refuses calls (503), and below
the free-space reserve the recorder refuses new calls before the disk fills and /healthz says degraded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from callvault.api.app import create_app
from callvault.db.models import Recording
from callvault.runtime.media.disk_reserve import MB, DiskReserve, watched_volumes
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.siprec.test_calls import AGENT, CUSTOMER, CallSpec, _check_stereo, _two_party_call
from tests.support.full_disk import full_disk
from tests.support.ports import rtp_range
from tests.support.processes import callvault_command, free_port, wait_for
from tests.support.test_src import Response, Stream, TestSrc, metadata_xml, multipart, sdp_offer

HUGE_RESERVE_MB = str(10**9)  # a petabyte: no test machine has that much free


def _offer() -> tuple[str, bytes]:
    streams = [Stream("1", sender_aor=CUSTOMER), Stream("2", sender_aor=AGENT)]
    return multipart(sdp_offer(streams), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams))


def _call(port: int) -> tuple[Response, int | None]:
    """INVITE; BYE if it was answered. (The INVITE's final response, the BYE's status.)"""
    content_type, body = _offer()
    src = TestSrc("127.0.0.1", port)
    try:
        response = src.invite(content_type, body)
        return response, src.bye().status if response.status == 200 else None
    finally:
        src.close()


async def test_low_disk_refuses_invites_and_degrades_health_until_space_returns(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, min_free_disk_mb=HUGE_RESERVE_MB) as recorder:
        refused, _ = await as_peer(lambda: _call(recorder.port))
        assert refused.status == 503
        assert int(refused.header("retry-after") or 0) > 0
        assert "low on disk space" in (refused.header("warning") or "")
        with recorder.ctx.catalog.read() as session:
            assert session.scalar(select(func.count()).select_from(Recording)) == 0  # nothing half-begun

        def health() -> httpx.Response:
            with TestClient(create_app(recorder.ctx, health_extra=recorder.media.health)) as client:
                return client.get("/healthz")

        response = await asyncio.to_thread(health)
        # Unauthenticated callers learn only that much; the engine's reason names the figures.
        assert response.status_code == 503 and response.json() == {"status": "degraded"}
        (reason,) = recorder.media.health()["degraded"]
        assert f"below the {HUGE_RESERVE_MB} MB reserve" in reason
        assert REGISTRY.get_sample_value("callvault_disk_reserve_low") == 1
        assert REGISTRY.get_sample_value("callvault_disk_free_bytes", {"volume": "spool"}) > 0

        # Space comes back (seen by the engine's once-a-second check): calls are taken again.
        recorder.media.disk = DiskReserve(watched_volumes(recorder.settings), 1, free=lambda _: 2 * MB)
        deadline = time.monotonic() + 10
        while recorder.media.disk_low is not None or recorder.media.disk.free.get("spool") != 2 * MB:
            assert time.monotonic() < deadline, "the engine did not check the disk again"
            await asyncio.sleep(0.05)
        answered, bye = await as_peer(lambda: _call(recorder.port))
        assert (answered.status, bye) == (200, 200)
        response = await asyncio.to_thread(health)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert REGISTRY.get_sample_value("callvault_disk_reserve_low") == 0


def test_reserve_watches_spool_and_local_vault(tmp_path: Path) -> None:
    volumes = {"spool": tmp_path / "spool", "vault": tmp_path / "vault"}
    free = {volumes["spool"]: 900 * MB, volumes["vault"]: 5000 * MB}
    reserve = DiskReserve(volumes, 1024, free=free.__getitem__)
    assert reserve.check() == "spool disk has 900 MB free, below the 1024 MB reserve"
    free[volumes["spool"]] = 2000 * MB
    assert reserve.check() is None and reserve.low is None
    assert DiskReserve(volumes, 0, free=lambda _: 0).check() is None  # 0 turns the check off


@contextmanager
def _serving(env: dict[str, str], log_path: Path) -> Iterator[None]:
    """`callvault serve` in a subprocess, once /healthz answers at all (a degraded server answers 503)."""
    url = f"http://127.0.0.1:{env['CALLVAULT_HTTP_PORT']}/healthz"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*callvault_command(), "serve"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def answering() -> bool:
                assert process.poll() is None, log_path.read_text()[-3000:]
                try:
                    return httpx.get(url, timeout=1).status_code in (200, 503)
                except httpx.HTTPError:
                    return False

            wait_for(answering, 60, "callvault serve to answer /healthz")
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_serve_with_low_disk_reports_degraded_and_refuses_calls(tmp_path: Path, database_url: str) -> None:
    env = {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port()),
        "CALLVAULT_RTP_PORTS": rtp_range(100),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_MIN_FREE_DISK_MB": HUGE_RESERVE_MB,
    }
    log = tmp_path / "serve.log"
    with _serving(env, log):
        health = httpx.get(f"http://127.0.0.1:{env['CALLVAULT_HTTP_PORT']}/healthz", timeout=5)
        assert (health.status_code, health.json()) == (503, {"status": "degraded"}), log.read_text()[-3000:]
        refused, _ = _call(int(env["CALLVAULT_SIP_PORT"]))
        assert refused.status == 503, log.read_text()[-3000:]
    assert "refusing new calls" in log.read_text()


async def test_invite_on_a_full_disk_gets_503_and_an_interrupted_recording(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No reserve: the disk is full when the call's journal is created.
    async with start_recorder(tmp_path / "data", database_url, min_free_disk_mb="0") as recorder:
        with full_disk(monkeypatch) as disk:
            disk.fill(0)
            refused, _ = await as_peer(lambda: _call(recorder.port))
            assert refused.status == 503 and int(refused.header("retry-after") or 0) > 0
            recording_id = await recorder.recording_for(refused_call_id(recorder))
            recording = await recorder.finished(recording_id)
            assert recording.status == "interrupted" and recording.object_key is None
            assert not list(recorder.settings.spool_dir.glob("*.spool"))  # no half-made journal left
            disk.free()
            answered, bye = await as_peer(lambda: _call(recorder.port))
            assert (answered.status, bye) == (200, 200)


def refused_call_id(recorder: Recorder) -> str:
    (call_id,) = recorder.server.recording_ids
    return call_id


async def test_a_short_disk_outage_mid_call_loses_nothing_and_says_so(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with full_disk(monkeypatch) as disk:
        # ~1 s of the call reaches the journal, then 5 flushes (~1 s) fail, then space is back.
        disk.outage(after=20_000, refusals=5)
        sent = await _two_party_call(recorder, CallSpec(seconds=3.0))
        assert disk.refused == 5
    # Everything waited in memory and was written late: a complete recording, audio where it belongs.
    recording = await _check_stereo(recorder, sent, status="complete")
    detail = await asyncio.to_thread(recorder.detail, recording.id)
    (event,) = [e for e in detail["events"] if e["kind"] == "spool_write_failed"]
    assert event["data"]["lost_packets"] == 0 and event["data"]["failed_for"] > 0
    for stream in detail["streams"]:
        assert stream["stats"]["spool_lost"] == 0 and stream["stats"]["lost"] == 0, stream
    assert "spool_lost_packets" not in detail["completeness"]
