"""The access trail holds every search, view, playback and download, refused ones too,
with who, what, which recording, from where and how it ended."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.support.audio import stereo_wav, voice
from tests.support.people import Staff

RATE = 8000


def import_for(ctx: ServiceContext, staff: Staff, agent: str, queue: str) -> str:
    wav = stereo_wav(voice(1, RATE, 120, 31), voice(1, RATE, 210, 32), RATE)
    return ctx.importer.import_bytes(staff.principals["carol"], wav, ImportRequest(agent=agent, queue=queue))


def trail(client: TestClient, staff: Staff, users: set[str]) -> list[dict[str, Any]]:
    """The trail as an auditor reads it, oldest first, for the given users only."""
    response = client.get("/api/v1/audit/access-events", headers=auth(staff.tokens["audrey"]))
    assert response.status_code == 200, response.text
    return [e for e in reversed(response.json()["items"]) if e["user"] in users]


def test_searches_views_plays_and_downloads_are_recorded(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    alices = import_for(ctx, staff, "alice", "billing")
    bobs = import_for(ctx, staff, "bob", "billing")

    def get(user: str, path: str, **params: str) -> int:
        return client.get(path, params=params, headers=auth(staff.tokens[user])).status_code

    base = "/api/v1/recordings"
    assert get("alice", base, queue="billing") == 200
    assert get("alice", f"{base}/{alices}") == 200
    assert get("alice", f"{base}/{bobs}") == 404  # out of scope: not found, and recorded as such
    assert get("alice", f"{base}/{alices}/audio") == 200
    assert get("alice", f"{base}/{bobs}/audio") == 404
    assert get("sam", f"{base}/{alices}/audio", download="true") == 200
    assert get("sam", f"{base}/{bobs}/audio", download="true", format="wav") == 404

    events = trail(client, staff, {"alice", "sam"})
    assert [(e["user"], e["action"], e["recording_id"], e["outcome"]) for e in events] == [
        ("alice", "search", None, "ok"),
        ("alice", "view", alices, "ok"),
        ("alice", "view", bobs, "not_found"),
        ("alice", "play", alices, "ok"),
        ("alice", "play", bobs, "not_found"),
        ("sam", "download", alices, "ok"),
        ("sam", "download", bobs, "not_found"),
    ]
    assert "queue=billing" in events[0]["detail"]  # what was searched for
    assert events[3]["detail"] == "format=ogg"
    assert all(e["remote_addr"] == "127.0.0.1" for e in events)  # where from
    assert all(e["at"] for e in events)
    # The trail can be read per recording.
    per_recording = client.get(
        "/api/v1/audit/access-events", params={"recording_id": bobs}, headers=auth(staff.tokens["carol"])
    ).json()["items"]
    assert {(e["user"], e["action"]) for e in per_recording} == {
        ("carol", "upload"),  # the import itself
        ("alice", "view"),
        ("alice", "play"),
        ("sam", "download"),
    }


def test_refused_playback_and_download_are_recorded(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    alices = import_for(ctx, staff, "alice", "billing")
    audio = f"/api/v1/recordings/{alices}/audio"
    for user, params in (("audrey", {}), ("alice", {"download": "true"}), ("quinn", {"download": "true"})):
        response = client.get(audio, params=params, headers=auth(staff.tokens[user]))
        assert response.status_code == 403, (user, response.text)
    events = trail(client, staff, {"audrey", "alice", "quinn"})
    assert [(e["user"], e["action"], e["recording_id"], e["outcome"]) for e in events] == [
        ("audrey", "refused", alices, "forbidden"),
        ("alice", "refused", alices, "forbidden"),
        ("quinn", "refused", alices, "forbidden"),
    ]
    assert all(e["detail"] == f"GET {audio}: permission_denied" for e in events), events
    assert all(e["remote_addr"] == "127.0.0.1" for e in events)
