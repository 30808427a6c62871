"""Operators' view and control of background jobs: list, look, cancel, retry (admin, compliance).

The queue (:mod:`callvault.jobs`) knows nothing of callers; here every call is
checked against the access table, and every cancel and retry is written to
the audit trail with the job's id and kind (never its payload).
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from callvault.jobs.port import TERMINAL_STATES, Job, JobQueue, JobState
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog

STATES: tuple[JobState, ...] = ("queued", "running", "succeeded", "failed", "dead", "cancelled")
MAX_LIST = 500


@dataclass
class JobAdmin:
    jobs: JobQueue
    access_log: AccessLog

    def _require(self, principal: Principal, action: Action, what: str) -> None:
        try:
            require(principal, action)
        except PermissionDenied as exc:
            self.access_log.record(principal, what, detail=exc.message, outcome="denied")
            raise

    def list(
        self, principal: Principal, state: str | None = None, kind: str | None = None, limit: int = 100
    ) -> list[Job]:
        self._require(principal, Action.JOB_VIEW, "job.list")
        if state is not None and state not in STATES:
            raise InvalidInput(f"unknown job state {state!r}; choose one of {', '.join(STATES)}")
        if not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIST}")
        return self.jobs.list(state=state, kind=kind, limit=limit)

    def get(self, principal: Principal, job_id: int) -> Job:
        self._require(principal, Action.JOB_VIEW, "job.view")
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("job not found")
        return job

    def cancel(self, principal: Principal, job_id: int) -> Job:
        self._require(principal, Action.JOB_MANAGE, "job.cancel")
        before = self.get(principal, job_id)
        if before.state in TERMINAL_STATES:
            raise Conflict(f"job {job_id} has already ended ({before.state})")
        job = self.jobs.cancel(job_id)
        if job is None:
            raise NotFound("job not found")
        self.access_log.record(principal, "job.cancel", detail=f"job {job_id} ({job.kind})")
        return job

    def retry(self, principal: Principal, job_id: int) -> Job:
        self._require(principal, Action.JOB_MANAGE, "job.retry")
        before = self.get(principal, job_id)
        if before.state not in ("dead", "failed", "cancelled"):
            raise Conflict(
                f"only a dead, failed or cancelled job can be retried; job {job_id} is {before.state}"
            )
        job = self.jobs.retry(job_id)
        if job is None:
            raise NotFound("job not found")
        self.access_log.record(principal, "job.retry", detail=f"job {job_id} ({job.kind})")
        return job
