"""``callvault analytics``: speech analytics for recordings made before it was switched on.

``backfill`` enqueues a ``transcribe`` job for every recording in a time window
that has audio and no transcript yet (transcripts are analysed as they land).
Workers run them: those of ``callvault serve`` (embedded queue) or
``callvault worker`` (Celery). ``--wait`` follows the jobs to the end with a
progress bar; otherwise the command returns once they are queued.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from callvault.cli.common import err, handle_errors, print_json, service_context
from callvault.errors import InvalidInput
from callvault.jobs.port import TERMINAL_STATES, Job, JobQueue
from callvault.services.transcription_jobs import enqueue_transcriptions, untranscribed

analytics_app = typer.Typer(help="Speech analytics: transcription of older recordings.", no_args_is_help=True)
_POLL_S = 1.0


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )


@analytics_app.command("backfill")
@handle_errors
def backfill(
    from_: Annotated[
        datetime | None, typer.Option("--from", help="Recordings started at or after (ISO 8601).")
    ] = None,
    to: Annotated[datetime | None, typer.Option("--to", help="Recordings started before (ISO 8601).")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the jobs until each has finished.")] = False,
) -> None:
    """Queue transcription for recordings without a transcript; prints how many, by job state."""
    from_, to = _utc(from_), _utc(to)
    if from_ is not None and to is not None and to <= from_:
        raise InvalidInput("--to must be after --from")
    with service_context() as ctx:
        ids = untranscribed(ctx.catalog, from_, to)
        jobs: list[Job] = []
        with _progress() as progress:
            task = progress.add_task("queuing", total=len(ids))
            for job in enqueue_transcriptions(ctx.jobs, ids):
                jobs.append(job)
                progress.advance(task)
        if wait and jobs:
            jobs = _follow(ctx.jobs, jobs)
        states: dict[str, int] = {}
        for job in jobs:
            states[job.state] = states.get(job.state, 0) + 1
        print_json({"recordings": len(ids), "jobs": states})


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without a zone is UTC, as every time in the catalog."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _follow(queue: JobQueue, jobs: list[Job]) -> list[Job]:
    """Poll the jobs until every one is in a terminal state (or failed for good)."""
    latest = {job.id: job for job in jobs}
    with _progress() as progress:
        task = progress.add_task("transcribing", total=len(latest))
        while True:
            for job_id, job in latest.items():
                if job.state not in TERMINAL_STATES:
                    latest[job_id] = queue.get(job_id) or job
            done = sum(job.state in TERMINAL_STATES for job in latest.values())
            progress.update(task, completed=done)
            if done == len(latest):
                return list(latest.values())
            time.sleep(_POLL_S)
