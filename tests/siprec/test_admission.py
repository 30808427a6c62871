"""Admission control: while the renderer is behind by more than the limit, new INVITEs get 503 with
Retry-After (an SBC fails over); under half the limit calls are taken again; /metrics counts it."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from callvault.db.models import Recording
from callvault.runtime.media.admission import MIN_RETRY_AFTER, Admission
from tests.siprec.conftest import as_peer, start_recorder
from tests.siprec.test_calls import AGENT, CUSTOMER
from tests.support.test_src import Response, Stream, TestSrc, metadata_xml, multipart, sdp_offer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backlog_is_the_oldest_unfinished_job_and_refusal_has_hysteresis() -> None:
    clock = FakeClock()
    admission = Admission(10.0, clock)
    assert admission.backlog() == 0.0 and admission.refuse() is None
    first = admission.submitted()
    clock.now += 4
    second = admission.submitted()
    clock.now += 7  # the first job has waited 11 s, the second 7 s
    assert admission.backlog() == pytest.approx(11.0)
    assert admission.refuse() == 11  # Retry-After: the backlog, rounded up
    admission.finished(first)
    assert admission.backlog() == pytest.approx(7.0)
    assert admission.refuse() is not None, "7 s is under the limit but above half of it: still refusing"
    clock.now -= 3  # (the clock is ours) the second job has now waited 4 s: under half the limit
    assert admission.refuse() is None
    admission.finished(second)
    assert admission.pending_jobs == 0 and admission.backlog() == 0.0


def test_retry_after_is_bounded() -> None:
    clock = FakeClock()
    admission = Admission(0.5, clock)
    admission.submitted()
    clock.now += 1
    assert admission.refuse() == MIN_RETRY_AFTER
    clock.now += 10_000
    retry = admission.refuse()
    assert retry is not None and MIN_RETRY_AFTER <= retry <= 120


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Admission(0)


def _call(port: int) -> tuple[Response, int | None]:
    streams = [Stream("1", sender_aor=CUSTOMER), Stream("2", sender_aor=AGENT)]
    content_type, body = multipart(
        sdp_offer(streams), metadata_xml([("cA==", CUSTOMER), ("YQ==", AGENT)], streams)
    )
    src = TestSrc("127.0.0.1", port)
    try:
        response = src.invite(content_type, body)
        return response, src.bye().status if response.status == 200 else None
    finally:
        src.close()


def _metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_render_backlog_refuses_invites_with_503_until_it_drains(
    tmp_path: Path, database_url: str
) -> None:
    limit = 0.3
    async with start_recorder(
        tmp_path / "data", database_url, admission_max_backlog_seconds=str(limit)
    ) as recorder:
        # The render workers fall behind: a job is stuck in the render pool (the real path every
        # call-time step, hang-up tail and recovery render takes).
        gate = threading.Event()
        stuck = asyncio.ensure_future(recorder.media.pool.run(None, gate.wait, 30))
        deadline = time.monotonic() + 10
        while recorder.media.admission.backlog() <= limit:
            assert time.monotonic() < deadline, "the stuck job never counted as backlog"
            await asyncio.sleep(0.02)
        refused_before = _metric("callvault_admission_refused_total")

        refused, _ = await as_peer(lambda: _call(recorder.port))
        assert refused.status == 503
        assert int(refused.header("retry-after") or 0) >= MIN_RETRY_AFTER
        assert "render backlog" in (refused.header("warning") or "")
        with recorder.ctx.catalog.read() as session:
            assert session.scalar(select(func.count()).select_from(Recording)) == 0  # nothing half-begun
        assert _metric("callvault_admission_refused_total") == refused_before + 1
        metrics = await asyncio.to_thread(
            httpx.get, f"http://127.0.0.1:{recorder.http_port}/metrics", timeout=10
        )
        assert "callvault_admission_refusing 1.0" in metrics.text
        assert "callvault_admission_backlog_seconds" in metrics.text

        # The renderer catches up: the next INVITE is recorded.
        gate.set()
        await stuck
        assert recorder.media.admission.backlog() == 0.0
        answered, bye = await as_peer(lambda: _call(recorder.port))
        assert (answered.status, bye) == (200, 200)
        assert _metric("callvault_admission_refusing") == 0
