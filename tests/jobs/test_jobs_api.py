"""`/api/v1/jobs` over HTTP from the serve composition root: admins and compliance officers
list, look at, cancel and retry jobs; nobody else may; bad ids and filters are refused
precisely; Prometheus sees the counts per state and the age of the oldest waiting job."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callvault.services.context import ServiceContext, open_context
from tests.api.conftest import auth, serving
from tests.conftest import make_settings
from tests.support.people import ADMIN, Staff, create_staff


@pytest.fixture
def quiet_ctx(data_dir: Path, database_url: str) -> Iterator[ServiceContext]:
    """No job workers: the jobs stay where the test puts them."""
    ctx = open_context(make_settings(data_dir, database_url, sip_port="0", http_port="0", job_workers="0"))
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def api(quiet_ctx: ServiceContext) -> Iterator[httpx.Client]:
    with serving(quiet_ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        yield http


@pytest.fixture
def people(quiet_ctx: ServiceContext) -> Staff:
    staff = create_staff(quiet_ctx)
    quiet_ctx.users.create_user(ADMIN, "ada", "admin", password="correct horse battery staple 42")
    staff.tokens["ada"] = quiet_ctx.users.create_token(ADMIN, "ada", "test")
    return staff


def test_operators_see_cancel_and_retry_jobs(
    api: httpx.Client, people: Staff, quiet_ctx: ServiceContext
) -> None:
    jobs = quiet_ctx.jobs
    first = jobs.enqueue("transcribe", {"recording_id": "r-1"}, subject="r-1", key="transcribe:r-1")
    other = jobs.enqueue("analytics", {"recording_id": "r-1"})
    ada, carol = auth(people.tokens["ada"]), auth(people.tokens["carol"])
    listed = api.get("/api/v1/jobs", params={"kind": "transcribe"}, headers=carol).json()
    assert [item["id"] for item in listed["items"]] == [first.id]
    assert listed["items"][0] | {"created_at": None, "updated_at": None} == {
        "id": first.id,
        "kind": "transcribe",
        "state": "queued",
        "subject": "r-1",
        "key": "transcribe:r-1",
        "priority": 0,
        "attempts": 0,
        "max_attempts": 5,
        "progress": 0.0,
        "error": None,
        "payload": {"recording_id": "r-1"},
        "created_at": None,
        "updated_at": None,
        "run_after": None,
    }
    assert listed["counts"]["queued"] == 2
    assert api.get(f"/api/v1/jobs/{other.id}", headers=ada).json()["kind"] == "analytics"
    cancelled = api.post(f"/api/v1/jobs/{other.id}/cancel", headers=ada)
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = api.post(f"/api/v1/jobs/{other.id}/cancel", headers=ada)
    assert again.status_code == 409 and "already ended (cancelled)" in again.text
    assert (
        api.get("/api/v1/jobs", params={"state": "cancelled"}, headers=ada).json()["items"][0]["id"]
        == other.id
    )
    retried = api.post(f"/api/v1/jobs/{other.id}/retry", headers=carol)
    assert retried.status_code == 200 and retried.json()["state"] == "queued"
    refused = api.post(f"/api/v1/jobs/{first.id}/retry", headers=carol)
    assert refused.status_code == 409 and f"job {first.id} is queued" in refused.text
    actions = {(e.action, e.outcome) for e in quiet_ctx.access_log.list(ADMIN)}
    assert {("job.cancel", "ok"), ("job.retry", "ok")} <= actions


@pytest.mark.parametrize("name", ["alice", "sam", "quinn", "audrey"])
def test_other_roles_may_not_see_or_touch_jobs(
    api: httpx.Client, people: Staff, quiet_ctx: ServiceContext, name: str
) -> None:
    job = quiet_ctx.jobs.enqueue("transcribe", {})
    headers = auth(people.tokens[name])
    assert api.get("/api/v1/jobs", headers=headers).status_code == 403
    assert api.get(f"/api/v1/jobs/{job.id}", headers=headers).status_code == 403
    assert api.post(f"/api/v1/jobs/{job.id}/cancel", headers=headers).status_code == 403
    assert api.post(f"/api/v1/jobs/{job.id}/retry", headers=headers).status_code == 403
    assert api.get("/api/v1/jobs").status_code == 401
    current = quiet_ctx.jobs.get(job.id)
    assert current is not None and current.state == "queued"


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", "/api/v1/jobs/999999", {}, 404),
        ("POST", "/api/v1/jobs/999999/cancel", {}, 404),
        ("GET", "/api/v1/jobs/abc", {}, 400),
        ("GET", "/api/v1/jobs/0", {}, 400),
        ("GET", "/api/v1/jobs/99999999999999999999", {}, 400),
        ("GET", "/api/v1/jobs", {"state": "exploded"}, 400),
        ("GET", "/api/v1/jobs", {"limit": "0"}, 400),
        ("GET", "/api/v1/jobs", {"kind": "k" * 81}, 400),
    ],
)
def test_bad_ids_and_filters_are_refused(
    api: httpx.Client, people: Staff, method: str, path: str, params: dict[str, str], status: int
) -> None:
    response = api.request(method, path, params=params, headers=auth(people.tokens["ada"]))
    assert response.status_code == status, response.text


def test_openapi_documents_the_jobs_api_and_metrics_count_them(
    api: httpx.Client, quiet_ctx: ServiceContext
) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/retry",
    ):
        assert path in paths, path
    for _ in range(3):
        quiet_ctx.jobs.enqueue("transcribe", {})
    dead = quiet_ctx.jobs.enqueue("transcribe", {})
    quiet_ctx.jobs.cancel(dead.id)
    text = api.get("/metrics").text
    assert re.search(r'^callvault_jobs\{state="queued"\} 3\.0$', text, re.MULTILINE), text
    assert re.search(r'^callvault_jobs\{state="cancelled"\} 1\.0$', text, re.MULTILINE)
    age = re.search(r"^callvault_jobs_oldest_queued_age_seconds (\S+)$", text, re.MULTILINE)
    assert age is not None and float(age.group(1)) >= 0.0
