"""Announcements over the API (upload, refusals, list, delete, audit), the check's verdicts on
sealed recordings, the recordings search filter and the disclosure report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.media.announcement_match import fingerprint
from callvault.media.band_envelope import EnvelopeFollower
from callvault.services import disclosure_check
from callvault.services.call_record import CallOpening
from callvault.services.context import ServiceContext
from callvault.services.disclosure_policy import needs_disclosure
from tests.api.conftest import auth
from tests.support.audio import mono_wav
from tests.support.people import ADMIN, Staff, create_staff, password_of
from tests.support.phone_line import ANNOUNCEMENT, RATE, conversation, place, speak, through
from tests.support.vault_calls import seal_call

WINDOW = 10.0


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as http:
        yield http


@pytest.fixture
def staff(ctx: ServiceContext) -> Staff:
    people = create_staff(ctx)
    ctx.users.create_user(ADMIN, "ada", "admin", password=password_of("ada"))
    people.tokens["ada"] = ctx.users.create_token(ADMIN, "ada", "test")
    return people


@pytest.fixture(scope="module")
def announcement() -> np.ndarray:
    return speak(ANNOUNCEMENT)


def _upload(
    client: TestClient, token: str, data: bytes, name: str | None = "greeting", file: str = "greeting.wav"
) -> Any:
    fields = {"name": name} if name is not None else {}
    return client.post(
        "/api/v1/announcements", headers=auth(token), files={"file": (file, data, "audio/wav")}, data=fields
    )


def _trail(client: TestClient, staff: Staff, prefix: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit/access-events", headers=auth(staff.tokens["carol"]))
    assert response.status_code == 200
    return [e for e in response.json()["items"] if e["action"].startswith(prefix)]


def test_admin_uploads_lists_and_removes_an_announcement_audited(
    client: TestClient, staff: Staff, announcement: np.ndarray
) -> None:
    wav = mono_wav(announcement, RATE)
    added = _upload(client, staff.tokens["ada"], wav)
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["name"] == "greeting" and body["file_name"] == "greeting.wav"
    assert 3.0 < body["duration_seconds"] < 4.5  # the sentence, without the file's silence
    assert _upload(client, staff.tokens["ada"], wav).status_code == 409  # the name is taken
    unnamed = _upload(client, staff.tokens["ada"], wav, name=None, file="welcome.wav")  # named after the file
    assert unnamed.status_code == 201 and unnamed.json()["name"] == "welcome"
    listing = client.get("/api/v1/announcements", headers=auth(staff.tokens["carol"]))
    assert listing.status_code == 200
    assert [a["name"] for a in listing.json()["items"]] == ["greeting", "welcome"]
    assert client.get("/api/v1/announcements", headers=auth(staff.tokens["alice"])).status_code == 403
    assert _upload(client, staff.tokens["carol"], wav, name="other").status_code == 403  # admins only

    assert (
        client.delete("/api/v1/announcements/greeting", headers=auth(staff.tokens["carol"])).status_code
        == 403
    )
    assert (
        client.delete("/api/v1/announcements/greeting", headers=auth(staff.tokens["ada"])).status_code == 204
    )
    assert (
        client.delete(f"/api/v1/announcements/{body['id']}", headers=auth(staff.tokens["ada"])).status_code
        == 404
    )
    remaining = client.get("/api/v1/announcements", headers=auth(staff.tokens["ada"])).json()["items"]
    assert [a["name"] for a in remaining] == ["welcome"]

    trail = _trail(client, staff, "announcement_")
    done = [(e["action"], e["user"], e["outcome"]) for e in reversed(trail)]
    assert ("announcement_add", "ada", "ok") in done and ("announcement_remove", "ada", "ok") in done
    assert ("announcement_add", "ada", "refused") in done  # the duplicate name
    assert ("announcement_add", "carol", "denied") in done


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"hello, this is not audio at all\n" * 40, 415, "not an audio file"),
        (mono_wav(np.zeros(RATE * 3, dtype=np.int16), RATE), 422, "silent"),
        (b"", 400, "empty"),
    ],
)
def test_what_cannot_be_an_announcement_is_refused_precisely(
    client: TestClient, staff: Staff, data: bytes, status: int, message: str
) -> None:
    response = _upload(client, staff.tokens["ada"], data)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert client.get("/api/v1/announcements", headers=auth(staff.tokens["ada"])).json()["items"] == []


def _opening(agent: np.ndarray, customer: np.ndarray) -> CallOpening:
    decoded = [through("PCMU", side)[0] for side in (agent, customer)]
    follower = EnvelopeFollower(8000, 2, WINDOW)
    follower.feed(np.stack([d[: min(x.size for x in decoded)] for d in decoded]))
    return CallOpening(follower.envelopes(), ("agent", "customer"), WINDOW)


def test_calls_are_verified_or_missing_searchable_and_reported(
    client: TestClient, ctx: ServiceContext, staff: Staff, announcement: np.ndarray
) -> None:
    assert _upload(client, staff.tokens["ada"], mono_wav(announcement, RATE)).status_code == 201
    heard_at = 2.5
    played = _opening(conversation(WINDOW, 1), place(WINDOW, [(heard_at, announcement)]))
    silent = _opening(conversation(WINDOW, 2), conversation(WINDOW, 3))
    verified_id, missing_id = seal_call(ctx), seal_call(ctx)
    verdict = ctx.disclosure.check(verified_id, played)
    assert verdict.status == "verified" and verdict.heard is not None
    assert verdict.heard.channel == "customer"
    expected_offset = heard_at + fingerprint(announcement, RATE).lead_seconds
    [event] = verdict.events()
    assert event.kind == "disclosure_heard" and event.offset_seconds == pytest.approx(
        expected_offset, abs=0.05
    )
    assert ctx.disclosure.check(missing_id, silent).status == "missing"
    assert ctx.disclosure.check(seal_call(ctx), None).status == "missing"  # nothing to hear it in

    carol = auth(staff.tokens["carol"])
    detail = client.get(f"/api/v1/recordings/{verified_id}", headers=carol).json()["disclosure"]
    assert detail["status"] == "verified" and detail["channel"] == "customer"
    assert detail["announcement"] == "greeting"
    assert detail["offset_seconds"] == pytest.approx(expected_offset, abs=0.05)
    found = client.get("/api/v1/recordings", params={"disclosure": "missing"}, headers=carol).json()
    assert missing_id in [r["id"] for r in found["items"]] and verified_id not in [
        r["id"] for r in found["items"]
    ]
    assert all(r["disclosure"]["status"] == "missing" for r in found["items"])
    bad = client.get("/api/v1/recordings", params={"disclosure": "maybe"}, headers=carol)
    assert bad.status_code == 400

    now = datetime.now(UTC)
    period = {"from": (now - timedelta(hours=1)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}
    report = client.get("/api/v1/reports/disclosure", params=period, headers=carol)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["counts"] == {"verified": 1, "missing": 2, "not_required": 0}
    assert missing_id in [i["recording_id"] for i in body["items"]] and body["total"] == 2
    assert verified_id not in [i["recording_id"] for i in body["items"]]
    earlier = {"from": (now - timedelta(days=2)).isoformat(), "to": (now - timedelta(days=1)).isoformat()}
    assert client.get("/api/v1/reports/disclosure", params=earlier, headers=carol).json()["items"] == []
    backwards = {"from": period["to"], "to": period["from"]}
    assert client.get("/api/v1/reports/disclosure", params=backwards, headers=carol).status_code == 400
    for who in ("sam", "alice", "audrey"):
        assert client.get("/api/v1/reports/disclosure", headers=auth(staff.tokens[who])).status_code == 403
    assert [e["user"] for e in _trail(client, staff, "disclosure_report")][:1] == ["carol"]


def test_a_one_party_call_without_the_announcement_is_not_required(
    ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not needs_disclosure("one_party")
    assert needs_disclosure("all_party_notification") and needs_disclosure(None)
    monkeypatch.setattr(disclosure_check, "consent_requirement", lambda recording: "one_party")
    verdict = ctx.disclosure.check(seal_call(ctx), None)
    assert (verdict.status, verdict.requirement) == ("not_required", "one_party")
