"""Auditors query the audit log over HTTP (JSON, CSV); access requests hand over a person's calls."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import httpx

from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff

RATE = 8000


def _recording(ctx: ServiceContext, customer: str, seed: int) -> str:
    wav = stereo_wav(voice(0.5, RATE, 120, seed), voice(0.5, RATE, 200, seed + 1), RATE)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(customer=customer, direction="inbound"))


def test_audit_events_filters_pages_and_csv(ctx: ServiceContext, client: httpx.Client, staff: Staff) -> None:
    recording_id = _recording(ctx, "+14155550100", 1)
    assert (
        client.get(f"/api/v1/recordings/{recording_id}", headers=auth(staff.tokens["carol"])).status_code
        == 200
    )
    auditor = auth(staff.tokens["audrey"])
    page = client.get("/api/v1/audit/events", params={"recording_id": recording_id}, headers=auditor).json()
    assert {item["action"] for item in page["items"]} >= {"upload", "view"}
    assert all(item["recording_id"] == recording_id for item in page["items"])
    by_carol = client.get("/api/v1/audit/events", params={"user": "carol", "action": "view"}, headers=auditor)
    assert [i["username"] for i in by_carol.json()["items"]] == ["carol"]
    first = client.get("/api/v1/audit/events", params={"limit": 2}, headers=auditor).json()
    second = client.get("/api/v1/audit/events", params={"limit": 2, "offset": 2}, headers=auditor).json()
    assert len(first["items"]) == 2 and first["items"][0]["seq"] > second["items"][0]["seq"]
    future = client.get("/api/v1/audit/events", params={"from": "2999-01-01T00:00:00Z"}, headers=auditor)
    assert future.json()["items"] == []
    sheet = client.get("/api/v1/audit/events", params={"format": "csv", "user": "carol"}, headers=auditor)
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert rows and all(r["username"] == "carol" for r in rows)
    assert client.get("/api/v1/audit/events", headers=auth(staff.tokens["alice"])).status_code == 403
    bad = client.get(
        "/api/v1/audit/events",
        params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        headers=auditor,
    )
    assert bad.status_code == 400
    # The queries themselves are on the trail.
    trail = client.get("/api/v1/audit/events", params={"action": "audit_query"}, headers=auditor).json()
    assert trail["total"] >= 5


def test_access_request_zip_holds_the_persons_recordings(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    mine = [_recording(ctx, "+1 415 555 0100", 1), _recording(ctx, "(415) 555-0100", 3)]
    _recording(ctx, "+14155550199", 5)
    officer = auth(staff.tokens["carol"])
    answer = client.post(
        "/api/v1/access-requests", json={"subject": {"phone": "415.555.0100"}}, headers=officer
    )
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = set(archive.namelist())
        index = json.loads(archive.read("index.json"))
    assert {r["recording_id"] for r in index["recordings"]} == set(mine)
    assert all(f"{r}/audio.opus" in names and f"{r}/metadata.json" in names for r in mine)
    unknown = client.post(
        "/api/v1/access-requests", json={"subject": {"phone": "+14155550111"}}, headers=officer
    )
    assert unknown.status_code == 404
    malformed = client.post("/api/v1/access-requests", json={"subject": {"name": "x"}}, headers=officer)
    assert malformed.status_code == 400
    supervisor = auth(staff.tokens["sam"])
    assert (
        client.post(
            "/api/v1/access-requests", json={"subject": {"phone": "+14155550100"}}, headers=supervisor
        ).status_code
        == 403
    )
    audited = client.get("/api/v1/audit/events", params={"action": "access_request"}, headers=officer).json()
    assert audited["total"] == 2 and "5550100" not in json.dumps(audited)
