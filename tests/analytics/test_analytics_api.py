"""Phrase categories over HTTP: who may define them, bad bodies, and filtering recordings by one."""

from __future__ import annotations

import httpx

from callvault.services.context import ServiceContext
from tests.analytics.test_call_insights import TRANSCRIPT, import_call
from tests.api.conftest import auth, client, staff  # noqa: F401  (fixtures)
from tests.support.people import Staff

CANCEL = {"name": "cancellation", "speaker": "customer", "phrases": ["cancel my account", "close my account"]}


def test_categories_are_managed_by_qa_leads_and_filter_recordings(
    ctx: ServiceContext,
    client: httpx.Client,  # noqa: F811
    staff: Staff,  # noqa: F811
) -> None:
    qa, agent, admin = (auth(staff.tokens[name]) for name in ("quinn", "alice", "carol"))
    assert client.post("/api/v1/analytics/categories", json=CANCEL, headers=agent).status_code == 403
    created = client.post("/api/v1/analytics/categories", json=CANCEL, headers=qa)
    assert created.status_code == 201, created.text
    category = created.json()
    assert category["phrases"] == CANCEL["phrases"] and category["required"] is False
    assert client.post("/api/v1/analytics/categories", json=CANCEL, headers=qa).status_code == 409
    for bad in (
        {"name": "x", "phrases": []},
        {"name": "x", "phrases": ["..."]},
        {"name": "x", "phrases": ["ok"], "speaker": "robot"},
        {"name": "x", "phrases": ["ok"], "within_s": -1},
        {"name": "x", "phrases": ["ok"], "colour": "red"},
        {"name": "", "phrases": ["ok"]},
    ):
        response = client.post("/api/v1/analytics/categories", json=bad, headers=qa)
        assert response.status_code == 400, (bad, response.text)
    changed = client.patch(
        f"/api/v1/analytics/categories/{category['id']}", json={"within_s": 30, "speaker": "any"}, headers=qa
    )
    assert changed.status_code == 200 and changed.json()["required"] is True
    listed = client.get("/api/v1/analytics/categories", headers=agent).json()["items"]
    assert [c["name"] for c in listed] == ["cancellation"]

    rid = import_call(ctx)
    ctx.insights.analyse(rid, TRANSCRIPT)
    found = client.get("/api/v1/recordings", params={"category": "cancellation"}, headers=admin).json()
    assert [item["id"] for item in found["items"]] == [rid]
    assert client.get("/api/v1/recordings", params={"min_overtalk": 5}, headers=admin).json()["items"] == []
    assert client.get("/api/v1/recordings", params={"max_talk_ratio": 2}, headers=admin).status_code == 400
    detail = client.get(f"/api/v1/recordings/{rid}", headers=admin).json()["analytics"]
    assert detail["categories"] == ["cancellation"] and detail["metrics"]["overtalk_s"] > 0
    # the agent alice does not see a call that is not hers, filtered or not
    assert (
        client.get("/api/v1/recordings", params={"category": "cancellation"}, headers=agent).json()["items"]
        == []
    )

    # after categories change, transcribed calls in a range are analysed again, behind new calls
    assert ctx.transcripts.store(rid, TRANSCRIPT, 13.0) is True
    window = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    assert client.post("/api/v1/analytics/reanalyse", json=window, headers=agent).status_code == 403
    assert client.post("/api/v1/analytics/reanalyse", json={"from": "x"}, headers=qa).status_code == 400
    rerun = client.post("/api/v1/analytics/reanalyse", json=window, headers=qa)
    assert rerun.status_code == 200 and rerun.json() == {"queued": 1}
    jobs = ctx.jobs.list(kind="analyse")
    assert len(jobs) == 2 and {j.payload["recording_id"] for j in jobs} == {rid}

    assert client.delete(f"/api/v1/analytics/categories/{category['id']}", headers=agent).status_code == 403
    assert client.delete(f"/api/v1/analytics/categories/{category['id']}", headers=qa).status_code == 204
    assert client.get(f"/api/v1/analytics/categories/{category['id']}", headers=qa).status_code == 404
    found = client.get("/api/v1/recordings", params={"category": "cancellation"}, headers=admin).json()
    assert found["items"] == []
