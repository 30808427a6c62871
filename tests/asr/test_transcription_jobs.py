"""Queuing transcriptions: a job per sealed recording (in the sealing transaction), the backfill
command for older ones, and the job's state where a transcript is asked for too early."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from callvault.services.context import ServiceContext, open_context
from callvault.services.transcription_jobs import job_key
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.cli import invoke_cli
from tests.support.people import Staff
from tests.support.vault_calls import seal_call


def transcribe_jobs(ctx: ServiceContext) -> dict[str, str]:
    return {job.subject or "": job.state for job in ctx.jobs.list(kind="transcribe")}


def test_sealing_queues_one_job_when_automatic(data_dir: Path, database_url: str) -> None:
    ctx = open_context(make_settings(data_dir, database_url, transcription_auto="true"))
    try:
        first, second = seal_call(ctx), seal_call(ctx)
        assert transcribe_jobs(ctx) == {first: "queued", second: "queued"}
        [job] = [j for j in ctx.jobs.list(kind="transcribe") if j.subject == first]
        assert job.key == job_key(first) and job.payload == {"recording_id": first}
    finally:
        ctx.close()


def test_no_job_when_automatic_transcription_is_off(ctx: ServiceContext) -> None:
    seal_call(ctx)
    assert transcribe_jobs(ctx) == {}


def test_backfill_queues_the_window_once(ctx: ServiceContext, data_dir: Path, database_url: str) -> None:
    old, recent, newest = seal_call(ctx, days_ago=40), seal_call(ctx, days_ago=10), seal_call(ctx, days_ago=0)
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    window = ["--from", (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%d")]
    window += ["--to", (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")]
    done = invoke_cli(["analytics", "backfill", *window], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"recordings": 1, "jobs": {"queued": 1}}
    assert transcribe_jobs(ctx) == {recent: "queued"}
    # Again: the same job, not a second one; a cancelled one is queued again.
    [job] = ctx.jobs.list(kind="transcribe")
    ctx.jobs.cancel(job.id)
    again = invoke_cli(["analytics", "backfill", *window], env)
    assert json.loads(again.stdout) == {"recordings": 1, "jobs": {"queued": 1}}
    assert len(ctx.jobs.list(kind="transcribe")) == 1
    everything = invoke_cli(["analytics", "backfill"], env)
    assert json.loads(everything.stdout)["recordings"] == 3
    assert transcribe_jobs(ctx) == {old: "queued", recent: "queued", newest: "queued"}
    refused = invoke_cli(["analytics", "backfill", "--from", "2026-02-01", "--to", "2026-01-01"], env)
    assert refused.returncode != 0 and "--to must be after --from" in refused.stderr


def test_too_early_names_the_job_state(ctx: ServiceContext, client: httpx.Client, staff: Staff) -> None:
    rid = seal_call(ctx)
    ctx.jobs.enqueue("transcribe", {"recording_id": rid}, key=job_key(rid), subject=rid)
    answer = client.get(f"/api/v1/recordings/{rid}/transcript", headers=auth(staff.tokens["carol"]))
    assert answer.status_code == 409
    assert answer.json()["detail"].endswith("(transcription job: queued)")
