"""Issue 11's "done when" through the API of a running `callvault serve` (its own composition
root, on uvloop): a SIPREC-recorded call evaluated, disputed and reviewed; a 20 s coaching clip
of an uploaded call played by the agent it was shared with and no one else's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from callvault.db.models import AccessEvent
from tests.compliance.test_done_when import siprec_call
from tests.qa.conftest import FORM
from tests.siprec.conftest import Recorder, start_recorder
from tests.support.audio import read_wav, stereo_wav, voice
from tests.support.people import ADMIN
from tests.support.transcripts import transcript


@pytest.mark.asyncio
async def test_quality_management_on_a_running_server(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(tmp_path / "data", database_url) as recorder:
        try:
            recorded = await siprec_call(recorder, "sip:+14155550123@carrier.example")
            await asyncio.to_thread(_scenario, recorder, recorded)
        except BaseException:
            recorder.print_log()
            raise


def _scenario(recorder: Recorder, recorded: str) -> None:
    ctx = recorder.ctx
    tokens = {"carol": recorder.token}
    for name, role, team in (
        ("sam", "supervisor", "red"),
        ("rita", "qa_evaluator", "red"),
        ("zoe", "agent", "blue"),
    ):
        ctx.users.create_user(ADMIN, name, role, team=team)
    for name in ("sam", "rita", "zoe", "alice", "bob"):
        tokens[name] = ctx.users.create_token(ADMIN, name, "test")
    http = httpx.Client(base_url=f"http://127.0.0.1:{recorder.http_port}/api/v1", timeout=60)

    def as_(name: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        return http.request(method, path, headers={"Authorization": f"Bearer {tokens[name]}"}, **kwargs)  # type: ignore[arg-type]

    # A QA lead's form with an auto-fail question; an evaluator scores the SIPREC call.
    form = as_("sam", "POST", "/qa/forms", json=FORM).json()
    evaluation = as_(
        "rita", "POST", "/qa/evaluations", json={"recording_id": recorded, "form_id": form["id"]}
    )
    assert evaluation.status_code == 201, evaluation.text
    evaluation_id, duration = evaluation.json()["id"], evaluation.json()["duration_seconds"]
    assert duration == as_("carol", "GET", f"/recordings/{recorded}").json()["duration"]
    assert 0.5 < duration < 5
    pinned = [
        {"question_id": 1, "value": "yes", "at": 0.1},
        {"question_id": 2, "value": "na"},
        {"question_id": 3, "value": 3, "at": round(duration / 2, 2)},
        {"question_id": 4, "value": "partial", "at": round(duration - 0.1, 2)},
    ]
    past_end = [{**pinned[0], "at": duration + 5}]
    assert (
        as_("rita", "PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": past_end}).status_code == 400
    )
    assert as_("rita", "PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": pinned}).status_code == 200
    submitted = as_("rita", "POST", f"/qa/evaluations/{evaluation_id}/submit").json()
    # Compliance: identity N/A → the disclosure alone, 100. Soft skills: empathy 3 of 5 → 50,
    # closing 1 of 4 points → 25: 37.5. Evaluation: (40·100 + 60·37.5)/100 = 62.5.
    assert submitted["score"] == 62.5 and submitted["section_scores"] == {"1": 100.0, "2": 37.5}
    assert [a["at"] for a in submitted["answers"]] == [
        0.1,
        None,
        round(duration / 2, 2),
        round(duration - 0.1, 2),
    ]

    # The agent sees it and disputes it; the supervisor's change is kept with its history.
    seen = as_("alice", "GET", f"/qa/evaluations/{evaluation_id}")
    assert seen.status_code == 200 and seen.json()["score"] == 62.5
    assert as_("bob", "GET", f"/qa/evaluations/{evaluation_id}").status_code == 404
    assert (
        as_(
            "alice",
            "POST",
            f"/qa/evaluations/{evaluation_id}/dispute",
            json={"reason": "I offered the full close"},
        ).status_code
        == 201
    )
    change = {
        "outcome": "change",
        "answers": [*pinned[:3], {"question_id": 4, "value": "full"}],
        "note": "agreed",
    }
    reviewed = as_("sam", "POST", f"/qa/evaluations/{evaluation_id}/review", json=change).json()
    # Soft skills now (50·50 + 50·100)/100 = 75 → (40·100 + 60·75)/100 = 85.
    assert reviewed["score"] == 85.0
    assert [(h["reason"], h["score"]) for h in reviewed["history"]] == [
        ("submitted", 62.5),
        ("dispute_changed", 85.0),
    ]

    # A 20 s clip of a 30 s uploaded call of alice's, shared with her.
    left, right = voice(30.0, 8000, 140.0, 5), voice(30.0, 8000, 230.0, 6)
    upload = as_(
        "carol",
        "POST",
        "/recordings",
        files={"file": ("call.wav", stereo_wav(left, right, 8000), "audio/wav")},
        data={"customer": "+14155550199", "agent": "alice"},
    )
    assert upload.status_code == 201, upload.text
    long_call = upload.json()["id"]
    # Transcribed as the job does it (no worker runs here): the agent hears the clip's span of
    # the redacted rendition, which silences nothing in this call (tests/qa/test_clip_redaction.py
    # has a card number read out).
    assert ctx.transcripts.store(long_call, transcript(agent=[(6.0, "thank you for calling")]), 2.0)
    clip_body = {
        "recording_id": long_call,
        "start": 5.0,
        "end": 25.0,
        "title": "Good close",
        "tags": ["closing"],
    }
    outside = as_("sam", "POST", "/qa/clips", json={**clip_body, "end": 31.0})
    assert outside.status_code == 400 and "past the end of the call" in outside.json()["detail"]
    assert as_("sam", "POST", "/qa/clips", json={**clip_body, "share": {"users": ["zoe"]}}).status_code == 403
    clip = as_("sam", "POST", "/qa/clips", json={**clip_body, "share": {"users": ["alice"]}})
    assert clip.status_code == 201, clip.text
    clip_id = clip.json()["id"]
    played = as_("alice", "GET", f"/qa/clips/{clip_id}/audio")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    samples, rate = read_wav(played.content)
    assert rate == 8000 and samples.shape == (2, 20 * 8000)
    whole, _ = read_wav(
        as_("carol", "GET", f"/recordings/{long_call}/audio", params={"format": "wav"}).content
    )
    assert (samples == whole[:, 5 * 8000 : 25 * 8000]).all()  # the very span, cut server-side
    tail = http.get(
        f"/qa/clips/{clip_id}/audio",
        headers={"Authorization": f"Bearer {tokens['alice']}", "Range": "bytes=-3200"},
    )
    assert tail.status_code == 206 and tail.content == played.content[-3200:]
    assert as_("zoe", "GET", f"/qa/clips/{clip_id}/audio").status_code == 404  # another team's agent
    assert as_("bob", "GET", f"/qa/clips/{clip_id}").status_code == 404  # not shared with him
    assert as_("alice", "POST", f"/qa/clips/{clip_id}/watched").json()["watched_at"] is not None
    with ctx.catalog.read() as session:
        plays = session.scalars(
            select(AccessEvent.username).where(
                AccessEvent.action == "clip_play", AccessEvent.recording_id == long_call
            )
        ).all()
        refused = session.scalars(select(AccessEvent.detail).where(AccessEvent.username == "zoe")).all()
    assert list(plays) == ["alice", "alice"]  # the whole clip, then a range of it
    assert any(f"/qa/clips/{clip_id}/audio: not_found" in (d or "") for d in refused)

    # A compliance officer exports it under a policy: the one copy that outlives the recording.
    basis = "training library policy TL-3"
    assert as_("sam", "GET", f"/qa/clips/{clip_id}/export", params={"basis": basis}).status_code == 403
    assert as_("carol", "GET", f"/qa/clips/{clip_id}/export").status_code == 400  # no basis
    exported = as_("carol", "GET", f"/qa/clips/{clip_id}/export", params={"basis": basis})
    assert exported.status_code == 200 and exported.content == played.content
    assert exported.headers["content-disposition"] == f'attachment; filename="clip-{clip_id}.wav"'
    with ctx.catalog.read() as session:
        details = session.scalars(
            select(AccessEvent.detail).where(AccessEvent.action == "export", AccessEvent.username == "carol")
        ).all()
    assert details == [f"clip {clip_id} {basis}"]

    # The clip's audio dies with its recording's.
    ctx.playback.destroy_audio(ADMIN, long_call, "retention test")
    assert as_("alice", "GET", f"/qa/clips/{clip_id}/audio").status_code == 410
    assert as_("sam", "POST", "/qa/clips", json=clip_body).status_code == 410
