"""The assurance API: call records in (roles, idempotence, malformed batches), the report
(scope per role, bad queries, audit), reconcile, alerts and gauges on /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from callvault.api.app import create_app
from callvault.db.assurance_models import ExpectedCall
from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.assurance.conftest import CUSTOMER, Catalogued, catalogue, must_record
from tests.support.people import ADMIN, Staff, create_staff


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as client:
        yield client


@pytest.fixture
def people(ctx: ServiceContext) -> Staff:
    staff = create_staff(ctx)
    ctx.users.create_user(ADMIN, "pbx", "integration")
    staff.tokens["pbx"] = ctx.users.create_token(ADMIN, "pbx", "cdr feed")
    return staff


def _records() -> list[dict[str, Any]]:
    return [
        {
            "pbx_call_id": "acd-1",
            "started_at": "2026-01-31T09:00:00Z",
            "duration_seconds": 120,
            "direction": "inbound",
            "calling_number": "(415) 555-0199",
            "agent": "sip:1001@pbx.example",  # alice, red team, by a SIP identity
            "sip_call_id": "one@sbc",
        },
        {"pbx_call_id": "acd-2", "started_at": "2026-01-31T10:00:00Z", "agent": "bob"},  # blue team
        {
            "pbx_call_id": "acd-3",
            "started_at": "2026-02-02T10:00:00Z",
            "agent": "alice",
        },  # outside the period
    ]


def _stored(ctx: ServiceContext) -> int:
    with ctx.catalog.read() as session:
        return int(session.scalar(select(func.count()).select_from(ExpectedCall)) or 0)


def test_the_pbx_feed_posts_records_idempotently_and_they_are_reconciled(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    recording = catalogue(ctx, Catalogued(identifiers={"sip_call_id": "one@sbc"}))
    answer = api.post(
        "/api/v1/call-records", json={"records": _records()}, headers=auth(people.tokens["pbx"])
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["received"], body["created"], body["updated"], body["unchanged"]) == (3, 3, 0, 0)
    assert body["reconciliation"]["outcomes"]["recorded_complete"] == 1
    assert body["reconciliation"]["outcomes"]["missing"] == 2
    again = api.post("/api/v1/call-records", json=_records(), headers=auth(people.tokens["carol"])).json()
    assert (again["created"], again["unchanged"], again["reconciliation"]["reconciled"]) == (0, 3, 0)
    assert _stored(ctx) == 3
    report = api.get(
        "/api/v1/reports/assurance",
        params={"from": "2026-01-31T00:00:00Z", "to": "2026-02-01T00:00:00Z", "outcome": "recorded_complete"},
        headers=auth(people.tokens["carol"]),
    ).json()
    assert [(i["pbx_call_id"], i["recording_id"], i["matched_by"]) for i in report["items"]] == [
        ("acd-1", recording, "sip_call_id")
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"records": [{"pbx_call_id": "x", "started_at": "2026-01-31T09:00:00Z"}, {"pbx_call_id": "y"}]},
            400,
            "record 2: started_at: required",
        ),
        (
            {
                "records": [
                    {"pbx_call_id": "x", "started_at": "2026-01-31T09:00:00Z", "calling_number": 4155550199}
                ]
            },
            400,
            "record 1: calling_number: must be a string",
        ),
        ("not json at all", 400, ""),
        ({}, 400, 'the body must be {"records": [...]}'),
    ],
)
def test_a_malformed_batch_is_refused_whole(
    api: TestClient, ctx: ServiceContext, people: Staff, body: Any, status: int, message: str
) -> None:
    headers = auth(people.tokens["pbx"])
    if isinstance(body, str):
        answer = api.post(
            "/api/v1/call-records", content=body, headers=headers | {"content-type": "application/json"}
        )
    else:
        answer = api.post("/api/v1/call-records", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(message)
    assert "4155550199" not in answer.text
    assert _stored(ctx) == 0


def test_who_may_send_records_and_reconcile(api: TestClient, ctx: ServiceContext, people: Staff) -> None:
    body = {"records": _records()}
    for name in ("alice", "sam", "quinn", "audrey"):
        assert (
            api.post("/api/v1/call-records", json=body, headers=auth(people.tokens[name])).status_code == 403
        )
        assert api.post("/api/v1/assurance/reconcile", headers=auth(people.tokens[name])).status_code == 403
    assert api.post("/api/v1/call-records", json=body).status_code == 401
    assert _stored(ctx) == 0
    assert (
        api.post("/api/v1/call-records", json=body, headers=auth(people.tokens["carol"])).status_code == 200
    )
    answer = api.post(
        "/api/v1/assurance/reconcile",
        params={"from": "2026-01-31T00:00:00Z"},
        headers=auth(people.tokens["pbx"]),
    )
    assert answer.status_code == 200 and answer.json()["reconciled"] == 3
    assert (
        api.post(
            "/api/v1/assurance/reconcile",
            params={"from": "2026-01-31T00:00:00"},
            headers=auth(people.tokens["pbx"]),
        ).status_code
        == 400
    )


def test_the_report_is_scoped_per_role_and_audited(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    api.post("/api/v1/call-records", json={"records": _records()}, headers=auth(people.tokens["pbx"]))
    period = {"from": "2026-01-31T00:00:00Z", "to": "2026-02-01T00:00:00Z"}

    def report(name: str, **extra: str) -> Any:
        return api.get("/api/v1/reports/assurance", params=period | extra, headers=auth(people.tokens[name]))

    everything = report("carol").json()
    assert everything["totals"]["expected"] == 2 and everything["totals"]["missing"] == 2
    assert {(a["agent"], a["team"], a["missing"]) for a in everything["by_agent"]} == {
        ("alice", "red", 1),
        ("bob", "blue", 1),
    }
    assert {(t["team"], t["expected"]) for t in everything["by_team"]} == {("red", 1), ("blue", 1)}
    assert [i["pbx_call_id"] for i in everything["items"]] == ["acd-1", "acd-2"]
    assert CUSTOMER not in str(everything) and "555-0199" not in str(everything)
    assert report("audrey").json()["totals"] == everything["totals"]
    red = report("sam").json()  # a supervisor: their team only
    assert red["totals"]["expected"] == 1 and [i["agent"] for i in red["items"]] == ["alice"]
    assert [t["team"] for t in red["by_team"]] == ["red"]
    for name in ("alice", "quinn", "pbx"):
        assert report(name).status_code == 403
    for bad in ({"from": "2026-01-31T00:00:00"}, {"outcome": "lost"}, {"limit": "0"}):
        assert report("carol", **bad).status_code == 400, bad
    assert (
        report("carol", **{"from": "2026-02-01T00:00:00Z", "to": "2026-01-31T00:00:00Z"}).status_code == 400
    )
    runs = [e for e in ctx.access_log.list(ADMIN, limit=1000) if e.action == "assurance_report"]
    assert {e.username for e in runs} >= {"carol", "audrey", "sam"}
    assert all(CUSTOMER not in (e.detail or "") for e in ctx.access_log.list(ADMIN, limit=1000))


def test_a_missing_must_record_call_raises_one_alert_and_the_gauges_are_on_metrics(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    must_record(ctx, "alice")
    api.post("/api/v1/call-records", json={"records": _records()}, headers=auth(people.tokens["pbx"]))
    api.post("/api/v1/assurance/reconcile", headers=auth(people.tokens["carol"]))
    alerts = api.get(
        "/api/v1/alerts", params={"kind": "must_record_not_recorded"}, headers=auth(people.tokens["carol"])
    ).json()["items"]
    assert sorted(a["detail"].split()[2] for a in alerts) == [
        "acd-1",
        "acd-3",
    ]  # alice's two; bob is not regulated
    metrics = api.get("/metrics", headers=auth(people.tokens["carol"])).text
    assert 'callvault_assurance_last_calls{outcome="missing"}' in metrics
    assert "callvault_assurance_last_reconciliation_timestamp_seconds" in metrics


def test_a_csv_file_can_be_posted_and_a_bad_line_or_an_oversized_body_is_refused(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    headers = auth(people.tokens["pbx"]) | {"content-type": "text/csv; charset=utf-8"}
    csv = "pbx_call_id,started_at,agent\nacd-1,2026-01-31T09:00:00Z,alice\n"
    bad = api.post("/api/v1/call-records", content=csv + "acd-2,soon,bob\n", headers=headers)
    assert bad.status_code == 400 and bad.json()["detail"].startswith("line 3: started_at:")
    huge = api.post(
        "/api/v1/call-records", content=b" " * (16 * 2**20 + 1), headers=auth(people.tokens["pbx"])
    )
    assert huge.status_code == 413
    assert _stored(ctx) == 0
    good = api.post("/api/v1/call-records", content=csv, headers=headers)
    assert good.status_code == 200 and good.json()["created"] == 1
