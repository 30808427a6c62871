"""``callvault worker`` and ``callvault jobs``: run background jobs, see and steer them.

``callvault worker`` runs jobs in the foreground: with ``CALLVAULT_JOB_QUEUE=celery``
a Celery worker on this machine (any machine sharing the catalog and the vault),
with the embedded queue one more embedded worker beside those of
``callvault serve``. ``callvault jobs`` lists, cancels and retries jobs as local
administration (audited under the OS user), and ``jobs selftest`` queues the
built-in diagnostic job and waits for a worker to run it.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callvault.api.routes_jobs import job_json
from callvault.cli.common import cli_principal, err, handle_errors, print_json, service_context
from callvault.errors import InvalidInput
from callvault.jobs.port import TERMINAL_STATES
from callvault.log_format import configure_logging
from callvault.services.job_admin import JobAdmin
from callvault.services.manifest import iso
from callvault.settings import load_settings

jobs_app = typer.Typer(help="Background jobs: list, cancel, retry, selftest.", no_args_is_help=True)
out = Console()


@handle_errors
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Celery: jobs run at once (processes of the pool).")
    ] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, solo or threads.")] = "prefork",
    name: Annotated[str | None, typer.Option(help="Worker name (Celery hostname); default host:pid.")] = None,
) -> None:
    """Run background jobs in the foreground until SIGTERM (the job in hand finishes first)."""
    if pool not in {"prefork", "solo", "threads"}:
        raise InvalidInput("--pool must be prefork, solo or threads")
    settings = load_settings()
    configure_logging(settings.log_level)
    if settings.job_queue == "celery":
        from callvault.runtime.jobs.celery_worker import run_celery_worker

        run_celery_worker(settings, concurrency, pool, name)
        return
    from callvault.runtime.jobs.worker_process import default_name, run_embedded_worker

    run_embedded_worker(settings, name or default_name())


@jobs_app.command("list")
@handle_errors
def list_jobs(
    state: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed, dead or cancelled.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="Only jobs of this kind.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Jobs, newest first, with the count of each state."""
    with service_context() as ctx:
        jobs = JobAdmin(ctx.jobs, ctx.access_log).list(cli_principal(), state, kind, limit)
        counts = ctx.jobs.counts()
    if as_json:
        print_json({"items": [job_json(job) for job in jobs], "counts": counts})
        return
    table = Table("id", "kind", "state", "attempts", "progress", "subject", "created", "error")
    for job in jobs:
        table.add_row(
            str(job.id),
            job.kind,
            job.state,
            f"{job.attempts}/{job.max_attempts}",
            f"{job.progress:.0%}",
            job.subject or "",
            iso(job.created_at) or "",
            job.error or "",
        )
    out.print(table)
    out.print(", ".join(f"{state}: {count}" for state, count in counts.items()))


@jobs_app.command("cancel")
@handle_errors
def cancel(job_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Cancel a waiting job, or ask a running one to stop."""
    with service_context() as ctx:
        job = JobAdmin(ctx.jobs, ctx.access_log).cancel(cli_principal(), job_id)
    out.print(f"job {job.id}: {job.state}" + (" (asked to stop)" if job.state == "running" else ""))


@jobs_app.command("retry")
@handle_errors
def retry(job_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """Queue a dead, failed or cancelled job again with fresh attempts."""
    with service_context() as ctx:
        job = JobAdmin(ctx.jobs, ctx.access_log).retry(cli_principal(), job_id)
    out.print(f"job {job.id}: {job.state}")


@jobs_app.command("selftest")
@handle_errors
def selftest(
    wait: Annotated[float, typer.Option(min=1, max=3600, help="Seconds to wait for a worker.")] = 60,
) -> None:
    """Queue the built-in diagnostic job and wait for a worker to run it (exit 1 if none did)."""
    with service_context() as ctx:
        job = ctx.jobs.enqueue("selftest", {"token": uuid.uuid4().hex}, max_attempts=1)
        deadline = time.monotonic() + wait
        while (current := ctx.jobs.get(job.id)) is not None and current.state not in TERMINAL_STATES:
            if time.monotonic() > deadline:
                ctx.jobs.cancel(job.id)
                err.print(f"job {job.id}: no worker ran it within {wait:.0f} s (is a worker running?)")
                raise typer.Exit(1)
            time.sleep(0.2)
    state = current.state if current else "missing"
    out.print(f"job {job.id}: {state}" + (f" ({current.error})" if current and current.error else ""))
    if state != "succeeded":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.add_typer(jobs_app, name="jobs")
