"""Coaching clips, playlists and coaching items through the API: who sees what, bad input."""

from __future__ import annotations

from callvault.services.context import ServiceContext
from tests.qa.conftest import FORM, Api
from tests.qa.test_evaluations_api import ALICE, BOB, answers
from tests.support.vault_calls import seal_call


def test_clips_playlists_and_sharing(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, alice, dana, bob, quinn = (
        qa_api.as_(n) for n in ("sam", "rita", "alice", "dana", "bob", "quinn")
    )
    recording, blue_call = seal_call(ctx, agent_aor=ALICE), seal_call(ctx, agent_aor=BOB)  # 3.0 s each
    body = {
        "recording_id": recording,
        "start": 0.5,
        "end": 2.5,
        "title": "Warm greeting",
        "tags": ["greeting"],
    }
    for bad, status, words in [
        ({**body, "start": 2.5, "end": 0.5}, 400, "at least 0.5 s later"),
        ({**body, "end": 3.5}, 400, "past the end of the call"),
        ({**body, "start": "0"}, 400, "start must be seconds"),
        ({**body, "start": -1}, 400, "start must be seconds"),
        ({**body, "colour": "red"}, 400, "a clip has the fields"),
        ({**body, "tags": ["x" * 65]}, 400, "tags must be"),
        ({**body, "recording_id": blue_call}, 404, "not found"),
        ({**body, "share": {"users": ["bob"]}}, 403, "outside your team"),
        ({**body, "share": {"users": ["nobody"]}}, 400, "no user named"),
    ]:
        refused = sam("POST", "/qa/clips", json=bad)
        assert refused.status_code == status and words in refused.json()["detail"], (bad, refused.text)
    assert alice("POST", "/qa/clips", json=body).status_code == 403
    assert sam("GET", "/qa/clips").json()["items"] == []  # nothing half-saved

    clip = sam("POST", "/qa/clips", json=body)
    assert clip.status_code == 201, clip.text
    clip_id = clip.json()["id"]
    assert clip.json()["duration_seconds"] == 2.0
    assert [c["id"] for c in rita("GET", "/qa/clips").json()["items"]] == [clip_id]
    assert quinn("GET", "/qa/clips").json()["items"] == []
    assert alice("GET", "/qa/clips").json()["items"] == []  # not shared yet
    assert alice("GET", f"/qa/clips/{clip_id}").status_code == 404

    playlist = sam(
        "POST",
        "/qa/playlists",
        json={"name": "Greetings", "topic": "openings", "clip_ids": [clip_id], "share": {"teams": ["red"]}},
    )
    assert playlist.status_code == 201, playlist.text
    assert sam("POST", "/qa/playlists", json={"name": "x", "share": {"teams": ["blue"]}}).status_code == 403
    assert sam("POST", "/qa/playlists", json={"name": "x", "clip_ids": [clip_id + 100]}).status_code == 404
    for agent in (alice, dana):
        assert [c["id"] for c in agent("GET", "/qa/clips", params={"tag": "greeting"}).json()["items"]] == [
            clip_id
        ]
        assert [p["name"] for p in agent("GET", "/qa/playlists").json()["items"]] == ["Greetings"]
    assert bob("GET", "/qa/clips").json()["items"] == []
    assert bob("GET", "/qa/playlists").json()["items"] == []
    assert bob("POST", f"/qa/clips/{clip_id}/watched").status_code == 404
    watched = alice("POST", f"/qa/clips/{clip_id}/watched").json()
    assert watched["watched_at"] is not None
    assert alice("POST", f"/qa/clips/{clip_id}/watched").json()["watched_at"] == watched["watched_at"]
    assert dana("GET", f"/qa/clips/{clip_id}").json()["watched_at"] is None  # per person


def test_coaching_items(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, alice, dana, bob = (qa_api.as_(n) for n in ("sam", "rita", "alice", "dana", "bob"))
    form = sam("POST", "/qa/forms", json=FORM).json()
    recording = seal_call(ctx, agent_aor=ALICE)
    evaluation = rita(
        "POST", "/qa/evaluations", json={"recording_id": recording, "form_id": form["id"]}
    ).json()
    rita("PUT", f"/qa/evaluations/{evaluation['id']}", json={"answers": answers("yes", "no", 2, "none")})
    rita("POST", f"/qa/evaluations/{evaluation['id']}/submit")
    clip = sam(
        "POST", "/qa/clips", json={"recording_id": recording, "start": 1, "end": 3, "title": "Closing"}
    ).json()
    item = {
        "agent": "alice",
        "title": "Closing the call",
        "due": "2026-12-31",
        "evaluation_ids": [evaluation["id"]],
        "clip_ids": [clip["id"]],
    }
    for bad, words in [
        ({**item, "agent": "bob"}, "not an agent you coach"),
        ({**item, "agent": "rita"}, "not an agent you coach"),
        ({**item, "due": "soon"}, "ISO 8601"),
        ({**item, "evaluation_ids": [evaluation["id"] + 50]}, "is not an evaluation of alice"),
        ({**item, "clip_ids": [clip["id"], clip["id"]]}, "distinct ids"),
    ]:
        refused = sam("POST", "/qa/coaching", json=bad)
        assert refused.status_code == 400 and words in refused.json()["detail"], refused.text
    assert alice("POST", "/qa/coaching", json=item).status_code == 403
    assert alice("GET", f"/qa/clips/{clip['id']}").status_code == 404  # refused items shared nothing
    created = sam("POST", "/qa/coaching", json=item)
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    assert [c["title"] for c in alice("GET", "/qa/coaching").json()["items"]] == ["Closing the call"]
    assert alice("GET", f"/qa/clips/{clip['id']}").status_code == 200  # the item shares its clips
    assert dana("GET", "/qa/coaching").json()["items"] == []
    assert bob("GET", "/qa/coaching").json()["items"] == []
    assert dana("POST", f"/qa/coaching/{item_id}/acknowledge").status_code == 404
    assert sam("POST", f"/qa/coaching/{item_id}/acknowledge").status_code == 403
    assert alice("POST", f"/qa/coaching/{item_id}/acknowledge").json()["acknowledged_at"] is not None
    assert alice("POST", f"/qa/coaching/{item_id}/acknowledge").status_code == 409
