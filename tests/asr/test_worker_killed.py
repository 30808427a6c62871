"""A worker killed with SIGKILL in the middle of transcribing: the job is retried once its claim
expires and the recording ends with exactly one transcript (on serve's embedded workers)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from sqlalchemy import func, select

from callvault.cli.serve import running_server
from callvault.db.transcript_models import RecordingTranscript
from callvault.services.context import ServiceContext, open_context
from callvault.services.importer import ImportRequest
from callvault.services.transcription_jobs import job_key
from tests.conftest import make_settings
from tests.support.people import ADMIN
from tests.support.processes import wait_for
from tests.support.speech_calls import AGENT_LINES, CUSTOMER_LINES, spoken_call


def _job(ctx: ServiceContext, recording_id: str) -> tuple[str, float, int]:
    [job] = [j for j in ctx.jobs.list(kind="transcribe") if j.key == job_key(recording_id)]
    return job.state, job.progress, job.attempts


def _under_way(state: str, progress: float, attempts: int) -> bool:
    """Running and past decoding (progress 0.1): the recogniser is at work on a channel."""
    return state == "running" and progress >= 0.1


async def test_a_killed_worker_leaves_one_transcript_after_the_retry(
    data_dir: Path, database_url: str
) -> None:
    settings = make_settings(
        data_dir, database_url, sip_port="0", http_port="0", job_workers="1", job_visibility_timeout="3"
    )
    ctx = open_context(settings)
    try:
        # Long enough that the recogniser is still at work when the worker is killed.
        call = spoken_call(AGENT_LINES * 2, CUSTOMER_LINES * 2)
        async with running_server(settings, ctx=ctx, first_admin=False) as server:
            assert server.job_workers is not None
            rid = await asyncio.to_thread(ctx.importer.import_bytes, ADMIN, call.wav(), ImportRequest())
            await asyncio.to_thread(
                wait_for, lambda: _under_way(*_job(ctx, rid)), 120, "transcription under way"
            )
            assert _job(ctx, rid)[0] == "running" and not ctx.transcripts.exists(rid)
            [pid] = server.job_workers.pids
            os.kill(pid, signal.SIGKILL)
            await asyncio.to_thread(
                wait_for, lambda: _job(ctx, rid)[0] == "succeeded", 180, "the retried job"
            )
        state, _, attempts = _job(ctx, rid)
        assert attempts >= 2, attempts
        with ctx.catalog.read() as session:
            assert session.scalar(select(func.count()).select_from(RecordingTranscript)) == 1
        transcript = ctx.transcripts.get(rid)
        assert transcript is not None and "kettle" in transcript.channel("customer").text.lower()
    finally:
        ctx.close()
