"""``/api/v1/calls/{ref}``: pause and resume a live SIPREC call by any of its references, within scope."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select, update

from callvault.db.models import AccessEvent, Recording
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.audio import stereo_wav, voice
from tests.support.live_call import open_call
from tests.support.people import ADMIN
from tests.support.reports import test_failed as failed

UCID = "00001002891700000001"


@pytest.fixture
async def recorder(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Any:
    # The call sends no RTP while the API is exercised: a loaded machine must not time it out.
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout="60") as running:
        yield running
        if failed(request):
            running.print_log()


def _tokens(recorder: Recorder) -> dict[str, str]:
    ctx = recorder.ctx
    ctx.users.create_user(ADMIN, "sam", "supervisor", team="red")
    ctx.users.create_user(ADMIN, "vic", "supervisor", team="blue")
    ctx.users.create_user(ADMIN, "payments", "integration")
    names = ("alice", "bob", "sam", "vic", "payments", "carol")
    return {name: ctx.users.create_token(ADMIN, name, "test") for name in names}


def _post(recorder: Recorder, token: str, path: str) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{recorder.http_port}/api/v1/calls/{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _get(recorder: Recorder, token: str, path: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{recorder.http_port}/api/v1/calls/{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


async def test_pause_and_resume_by_any_reference_within_scope(recorder: Recorder) -> None:
    tokens = await asyncio.to_thread(_tokens, recorder)
    call = await as_peer(lambda: open_call(recorder.port, ucid=UCID))
    recording_id = await recorder.recording_for(call.call_id)

    async def post(name: str, path: str) -> httpx.Response:
        return await asyncio.to_thread(_post, recorder, tokens[name], path)

    paused = await post("alice", f"{call.call_id}/pause")  # her own call, by its SIP Call-ID
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["recording_id"] == recording_id and body["recording_ids"] == [recording_id]
    assert body["live"] is True and body["state"] == "paused"
    [silence] = body["silences"]
    assert (silence["cause"], silence["channels"], silence["by"]) == ("api", "all", "alice")
    assert silence["since"].endswith("Z") and silence["resumes_at"] > silence["since"]
    again = await post("payments", f"{UCID}/pause")  # an integration, by the vendor id: renewed
    assert again.status_code == 200 and again.json()["silences"][0]["resumes_at"] >= silence["resumes_at"]
    state = await asyncio.to_thread(_get, recorder, tokens["sam"], recording_id)
    assert state.status_code == 200 and state.json()["state"] == "paused"

    # Out of scope and unknown answer alike; a role that never controls calls gets 403.
    not_found = {"error": "not_found", "detail": "call not found"}
    for name, ref in (("bob", call.call_id), ("vic", recording_id), ("alice", "nobody@nowhere")):
        refused = await post(name, f"{ref}/resume")
        assert (refused.status_code, refused.json()) == (404, not_found), name
    assert (await post("carol", f"{recording_id}/pause")).status_code == 403
    too_long = await post("alice", "x" * 300 + "/pause")
    assert too_long.status_code == 400 and too_long.json()["error"] == "invalid_input"

    resumed = await post("sam", f"{recording_id}/resume")  # alice's supervisor
    assert resumed.status_code == 200 and resumed.json()["state"] == "recording"
    assert resumed.json()["silences"] == []
    twice = await post("sam", f"{recording_id}/resume")
    assert twice.status_code == 409 and "not paused" in twice.json()["detail"]
    assert (await post("payments", f"{UCID}/pause")).status_code == 200  # left paused at hang-up
    metrics = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{recorder.http_port}/metrics")
    counted = [
        line for line in metrics.text.splitlines() if line.startswith("callvault_recording_pauses_total")
    ]
    assert any('cause="api"' in line and float(line.split()[-1]) >= 2 for line in counted), counted

    await as_peer(lambda: call.send(np.zeros(4000, np.int16), np.zeros(4000, np.int16)))
    await as_peer(call.hang_up)
    await recorder.finished(recording_id)
    ended = await post("alice", f"{call.call_id}/pause")
    assert ended.status_code == 409 and ended.json()["detail"] == "cannot pause the call: it has ended"
    gone = await asyncio.to_thread(_get, recorder, tokens["alice"], call.call_id)
    assert gone.json()["state"] == "ended" and gone.json()["live"] is False

    detail = await asyncio.to_thread(recorder.detail, recording_id)
    timeline = [
        (e["kind"], e["data"]["by"], e["data"].get("reason"))
        for e in detail["events"]
        if e["kind"] in ("pause", "resume")
    ]
    assert timeline == [
        ("pause", "alice", None),
        ("resume", "sam", "request"),
        ("pause", "payments", None),
        ("resume", "system", "call_ended"),
    ]
    with recorder.ctx.catalog.read() as session:
        trail = [
            (e.username, e.action, e.outcome)
            for e in session.scalars(
                select(AccessEvent)
                .where(AccessEvent.action.in_(("call_pause", "call_resume")))
                .order_by(AccessEvent.seq)
            )
        ]
    assert trail == [
        ("alice", "call_pause", "ok"),
        ("payments", "call_pause", "ok"),
        ("sam", "call_resume", "ok"),
        ("sam", "call_resume", "conflict"),
        ("payments", "call_pause", "ok"),
        ("system", "call_resume", "ok"),
        ("alice", "call_pause", "conflict"),
    ]


async def test_calls_that_are_not_live_answer_409(recorder: Recorder) -> None:
    tokens = await asyncio.to_thread(_tokens, recorder)
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 200, 2), 8000)
    uploaded = await asyncio.to_thread(
        lambda: httpx.post(
            f"http://127.0.0.1:{recorder.http_port}/api/v1/recordings",
            headers={"Authorization": f"Bearer {tokens['sam']}"},
            files={"file": ("call.wav", wav, "audio/wav")},
            data={"agent": "alice"},
            timeout=60,
        )
    )
    assert uploaded.status_code == 201, uploaded.text
    imported = uploaded.json()["id"]
    for verb in ("pause", "resume"):
        refused = await asyncio.to_thread(_post, recorder, tokens["alice"], f"{imported}/{verb}")
        assert refused.status_code == 409
        assert refused.json()["detail"] == f"cannot {verb} the call: it has ended"
    # A call the recording rules left unrecorded is catalogued but never live.
    with recorder.ctx.catalog.write() as session:
        session.execute(update(Recording).where(Recording.id == imported).values(status="not_recorded"))
    never = await asyncio.to_thread(_post, recorder, tokens["alice"], f"{imported}/pause")
    assert (never.status_code, never.json()["detail"]) == (
        409,
        "cannot pause the call: it is not being recorded",
    )
