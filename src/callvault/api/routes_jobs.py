"""``/api/v1/jobs``: background jobs as operators see them (admin and compliance officer).

List by state and kind, look at one (progress, attempts, the last failure's
reason), cancel one (a running job is asked to stop), retry a dead, failed or
cancelled one once its cause is fixed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from callvault.api.deps import context, principal
from callvault.jobs.port import Job
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.job_admin import MAX_LIST, JobAdmin
from callvault.services.manifest import iso

router = APIRouter(prefix="/jobs", tags=["jobs"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
JobId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The job's id.")]
State = Literal["queued", "running", "succeeded", "failed", "dead", "cancelled"]


def _admin(ctx: ServiceContext) -> JobAdmin:
    return JobAdmin(ctx.jobs, ctx.access_log)


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "subject": job.subject,
        "key": job.key,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": job.progress,
        "error": job.error,
        "payload": dict(job.payload),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "run_after": iso(job.run_after),
    }


@router.get("")
def list_jobs(
    ctx: Ctx,
    caller: Caller,
    state: Annotated[State | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[
        str | None, Query(min_length=1, max_length=80, description="Only jobs of this kind.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
) -> dict[str, Any]:
    """Newest first, with the count of every state (for a dashboard)."""
    admin = _admin(ctx)
    items = admin.list(caller, state, kind, limit)
    return {"items": [job_json(job) for job in items], "counts": ctx.jobs.counts()}


@router.get("/{job_id}")
def get_job(job_id: JobId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return job_json(_admin(ctx).get(caller, job_id))


@router.post("/{job_id}/cancel")
def cancel_job(job_id: JobId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """A waiting job is cancelled at once; a running one is asked to stop (409 once ended)."""
    return job_json(_admin(ctx).cancel(caller, job_id))


@router.post("/{job_id}/retry")
def retry_job(job_id: JobId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Queue a dead, failed or cancelled job again with fresh attempts (409 otherwise)."""
    return job_json(_admin(ctx).retry(caller, job_id))
