"""`callvault serve` runs the embedded job workers: started with the server (its own
composition root, in process), restarted when one dies, stopped with it — a job still
running when they stop goes back to the queue."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from callvault.cli.serve import RunningServer, running_server
from callvault.runtime.jobs.selftest import selftest_dir
from callvault.services.context import ServiceContext, open_context
from tests.conftest import make_settings
from tests.support.processes import wait_for


@pytest.fixture
def worker_ctx(data_dir: Path, database_url: str) -> Iterator[ServiceContext]:
    settings = make_settings(
        data_dir, database_url, sip_port="0", http_port="0", job_workers="1", job_stop_grace="1"
    )
    ctx = open_context(settings)
    try:
        yield ctx
    finally:
        ctx.close()


def _state(ctx: ServiceContext, job_id: int) -> str:
    job = ctx.jobs.get(job_id)
    return job.state if job is not None else "missing"


async def _wait_state(ctx: ServiceContext, job_id: int, state: str, within: float = 90) -> None:
    await asyncio.to_thread(wait_for, lambda: _state(ctx, job_id) == state, within, f"job {job_id} {state}")


def _exists(path: Path) -> bool:
    return path.exists()


def _pids(server: RunningServer) -> list[int]:
    assert server.job_workers is not None
    return server.job_workers.pids


async def test_serve_runs_jobs_and_restarts_a_worker_killed_with_sigkill(worker_ctx: ServiceContext) -> None:
    ctx = worker_ctx
    async with running_server(ctx.settings, ctx=ctx, first_admin=False) as server:
        first = ctx.jobs.enqueue("selftest", {"token": "first"})
        await _wait_state(ctx, first.id, "succeeded")
        [pid] = _pids(server)
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(
            wait_for, lambda: len(_pids(server)) == 1 and _pids(server) != [pid], 30, "a new worker"
        )
        second = ctx.jobs.enqueue("selftest", {"token": "second"})
        await _wait_state(ctx, second.id, "succeeded")
        unknown = ctx.jobs.enqueue("no.such.kind", {})
        await _wait_state(ctx, unknown.id, "dead")
    assert sorted(p.name for p in selftest_dir(ctx.settings.data_dir).glob("*.done")) == [
        "first.done",
        "second.done",
    ]
    job = ctx.jobs.get(unknown.id)
    assert job is not None and job.error == "no handler for job kind 'no.such.kind' in this build"


async def test_stopping_the_server_gives_a_running_job_back_to_the_queue(worker_ctx: ServiceContext) -> None:
    ctx = worker_ctx
    async with running_server(ctx.settings, ctx=ctx, first_admin=False) as server:
        held = ctx.jobs.enqueue("selftest", {"token": "held", "hold_s": 300})
        await _wait_state(ctx, held.id, "running")
        pids = _pids(server)
    job = ctx.jobs.get(held.id)
    assert job is not None and (job.state, job.attempts) == ("queued", 0), job
    assert not _exists(selftest_dir(ctx.settings.data_dir) / "held.done")
    assert not [pid for pid in pids if _exists(Path(f"/proc/{pid}"))]


async def test_no_workers_when_set_to_zero(data_dir: Path, database_url: str) -> None:
    settings = make_settings(data_dir, database_url, sip_port="0", http_port="0", job_workers="0")
    async with running_server(settings, first_admin=False) as server:
        assert server.job_workers is None
