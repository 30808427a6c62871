"""GET /api/v1/recordings/{id}/transcript over HTTP: scoped like the recording, every read audited."""

from __future__ import annotations

import httpx

from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.asr.test_transcript_store import sample
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff


def alices_call(ctx: ServiceContext) -> str:
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 200, 2), 8000)
    return ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))


def test_who_may_play_may_read_in_the_same_scope(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    rid = alices_call(ctx)
    ctx.transcripts.store(rid, sample(), 1.4)
    path = f"/api/v1/recordings/{rid}/transcript"
    statuses = {
        name: client.get(path, headers=auth(token)).status_code for name, token in staff.tokens.items()
    }
    # alice's own call, her team's supervisor, compliance; dana (same team, own scope), bob and the
    # other team's QA get the recording's own 404; the auditor never reads what was said.
    assert statuses == {
        "alice": 200,
        "sam": 200,
        "carol": 200,
        "dana": 404,
        "bob": 404,
        "quinn": 404,
        "audrey": 403,
    }
    body = client.get(path, headers=auth(staff.tokens["alice"])).json()
    customer = next(c for c in body["channels"] if c["speaker"] == "customer")
    assert customer["segments"][0]["words"][1] == {
        "start": 1.1,
        "end": 1.5,
        "text": "refund",
        "confidence": 0.8,
    }
    assert [(t["speaker"], t["text"]) for t in body["turns"]] == [
        ("agent", "Hello"),
        ("customer", "I want a refund"),
    ]
    trail = [
        (e.username, e.outcome) for e in ctx.access_log.list(ADMIN, rid) if e.action == "read_transcript"
    ]
    assert sorted(trail) == sorted(
        [("alice", "ok"), ("alice", "ok"), ("sam", "ok"), ("carol", "ok")]
        + [(name, "not_found") for name in ("dana", "bob", "quinn")]
    )


def test_not_transcribed_yet_is_409_and_destroyed_is_410(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    rid = alices_call(ctx)
    path = f"/api/v1/recordings/{rid}/transcript"
    waiting = client.get(path, headers=auth(staff.tokens["carol"]))
    assert waiting.status_code == 409
    assert waiting.json()["error"] == "transcript_not_ready"
    assert "not transcribed yet" in waiting.json()["detail"]
    ctx.transcripts.store(rid, sample(), 1.4)
    ctx.playback.destroy_audio(ADMIN, rid, "erasure request")
    assert client.get(path, headers=auth(staff.tokens["carol"])).status_code == 410
    outcomes = [e.outcome for e in ctx.access_log.list(ADMIN, rid) if e.action == "read_transcript"]
    assert sorted(outcomes) == ["destroyed", "not_ready"]
