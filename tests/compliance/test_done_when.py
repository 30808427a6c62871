"""Issue 8's "done when" for retention, holds and erasure, against a running `callvault serve`
(its own composition root, on uvloop) fed by SIPREC calls and HTTP imports."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from callvault.db.models import Recording
from callvault.errors import Conflict
from callvault.services.events import DomainEvent
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN
from tests.support.test_src import (
    RtpSender,
    Stream,
    TestSrc,
    answered_ports,
    frames_for,
    metadata_xml,
    multipart,
    sdp_offer,
    send_rtp,
)

AGENT = "sip:1001@pbx.example"


class Events:
    def __init__(self) -> None:
        self.seen: list[DomainEvent] = []

    def handle(self, event: DomainEvent) -> None:
        self.seen.append(event)

    def types(self) -> set[str]:
        return {e.type for e in self.seen}


async def siprec_call(recorder: Recorder, customer_aor: str) -> str:
    """One two-party SIPREC call of 1 s; returns its recording id once sealed."""
    customer = Stream("1", "PCMU", sender_aor=customer_aor)
    agent = Stream("2", "PCMU", sender_aor=AGENT)
    content_type, body = multipart(
        sdp_offer([customer, agent]),
        metadata_xml([("cA==", customer_aor), ("YQ==", AGENT)], [customer, agent]),
    )
    frames = frames_for("PCMU", voice(1.0, 8000, 180.0, seed=3))

    def call() -> str:
        src = TestSrc("127.0.0.1", recorder.port, "UDP")
        try:
            response = src.invite(content_type, body)
            assert response.status == 200, response.status
            ports = answered_ports(response.body)
            send_rtp(
                [RtpSender("127.0.0.1", ports[s.label], s.payload_type, frames) for s in (customer, agent)]
            )
            assert src.bye().status == 200
            return src.call_id
        finally:
            src.close()

    call_id = await as_peer(call)
    recording_id = await recorder.recording_for(call_id)
    await recorder.finished(recording_id)
    return recording_id


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.asyncio
async def test_retention_holds_and_erasure_on_a_running_server(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    async with start_recorder(tmp_path / "data", database_url, retention_interval="1") as recorder:
        try:
            await asyncio.to_thread(_scenario, recorder, tmp_path, await _siprec_calls(recorder))
        except BaseException:
            recorder.print_log()
            raise


async def _siprec_calls(recorder: Recorder) -> dict[str, str]:
    return {
        "erase_me": await siprec_call(recorder, "sip:+14155550177@carrier.example"),
        "held": await siprec_call(recorder, "sip:+14155550142@carrier.example"),
    }


def _scenario(recorder: Recorder, tmp_path: Path, calls: dict[str, str]) -> None:
    ctx = recorder.ctx
    events = Events()
    ctx.events.subscribe(events)
    ctx.users.create_user(ADMIN, "dave", "compliance_officer")
    carol = {"Authorization": f"Bearer {recorder.token}"}
    dave = {"Authorization": f"Bearer {ctx.users.create_token(ADMIN, 'dave', 'test')}"}
    api = httpx.Client(base_url=f"http://127.0.0.1:{recorder.http_port}/api/v1", timeout=60)
    wav = stereo_wav(voice(1.0, 8000, 120.0, 1), voice(1.0, 8000, 210.0, 2), 8000)
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    def upload(customer: str, started_at: str, queue: str) -> str:
        response = api.post(
            "/recordings",
            headers=carol,
            files={"file": ("call.wav", wav, "audio/wav")},
            data={"customer": customer, "started_at": started_at, "queue": queue, "agent": "alice"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def row(recording_id: str) -> Recording:
        with ctx.catalog.read() as session:
            found = session.get(Recording, recording_id)
            assert found is not None
            return found

    hold = api.post(
        "/legal-holds",
        headers=carol,
        json={
            "name": "Doe v. Acme",
            "reason": "litigation",
            "criteria": {"customers": ["+1 (415) 555-0142"]},
        },
    )
    assert hold.status_code == 201, hold.text
    hold_id = hold.json()["id"]
    assert hold.json()["held"] == 1  # the SIPREC call so far
    due = upload("(415) 555-0111", long_ago, "sales")
    held_import = upload("415.555.0142", long_ago, "sales")  # imported after the hold: held too
    no_policy = upload("+1 212 555 0100", long_ago, "support")
    erase_imports = [upload("(415) 555-0177", yesterday, "sales"), upload("415.555.0177", yesterday, "sales")]
    due_object = row(due).object_key

    bad = api.post("/retention-policies", headers=carol, json={"name": "x", "keep_days": -1})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_input"
    policy = api.post(
        "/retention-policies",
        headers=carol,
        json={"name": "sales 1y", "keep_days": 365, "match": {"queues": ["sales"]}},
    )
    assert policy.status_code == 201 and policy.json()["id"], policy.text
    preview = api.get("/retention/preview", headers=carol, params={"days": 0}).json()
    assert preview["held"] == 1

    # The sweep scheduled inside serve deletes exactly what is due, and nothing held.
    wait_until(
        lambda: row(due).deleted_at is not None and row(due).deletion_state is None, "the scheduled sweep"
    )
    tomb = api.get(f"/recordings/{due}", headers=carol).json()
    assert tomb["status"] == "deleted" and tomb["tombstone"]["basis"] == "sales 1y"
    assert tomb["customer_number"] is None and tomb["calling_number"] is None
    assert api.get(f"/recordings/{due}/audio", headers=carol).status_code == 410
    assert not ctx.blobs.exists(str(due_object)) and row(due).wrapped_key is None
    for kept in (held_import, no_policy, *erase_imports, *calls.values()):
        assert row(kept).deleted_at is None, kept

    # A hold blocks destroy-audio (any role), erasure and retention; 409 names the hold.
    with pytest.raises(Conflict, match="Doe v. Acme"):
        ctx.playback.destroy_audio(ADMIN, calls["held"], "operator request")
    erasure = api.post("/erasure-requests", headers=carol, json={"subject": {"phone": "+1 415 555 0142"}})
    assert erasure.status_code == 201
    executed = api.post(f"/erasure-requests/{erasure.json()['id']}/execute", headers=carol).json()
    assert executed["erased"] == [] and all("Doe v. Acme" in k["reason"] for k in executed["kept"])
    assert {k["recording_id"] for k in executed["kept"]} == {held_import, calls["held"]}

    # Erasure of a number written three ways finds all of that customer's calls.
    unknown = api.post("/erasure-requests", headers=carol, json={"subject": {"phone": "+44 20 7946 0000"}})
    assert unknown.status_code == 404
    erasure = api.post("/erasure-requests", headers=carol, json={"subject": {"phone": "tel:+1-415-555-0177"}})
    assert erasure.status_code == 201
    assert set(erasure.json()["recording_ids"]) == {calls["erase_me"], *erase_imports}
    executed = api.post(f"/erasure-requests/{erasure.json()['id']}/execute", headers=carol).json()
    assert {e["recording_id"] for e in executed["erased"]} == {calls["erase_me"], *erase_imports}
    certificate = api.get(f"/erasure-requests/{erasure.json()['id']}/certificate", headers=carol)
    assert certificate.status_code == 200
    path = tmp_path / "certificate.json"
    path.write_bytes(certificate.content)
    verified = _verify_certificate(path, tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["destroyed"] == 3
    edited: dict[str, Any] = json.loads(certificate.content)
    edited["certificate"]["destroyed"].pop()
    path.write_text(json.dumps(edited))
    failed = _verify_certificate(path, tmp_path)
    assert failed.returncode == 5 and "edited" in failed.stderr

    # Release takes two people; then retention takes the held import.
    assert api.post(f"/legal-holds/{hold_id}/release", headers=carol).status_code == 200
    own = api.post(f"/legal-holds/{hold_id}/release/approve", headers=carol)
    assert own.status_code == 403
    assert api.post(f"/legal-holds/{hold_id}/release/approve", headers=dave).status_code == 200
    wait_until(lambda: row(held_import).deleted_at is not None, "the sweep after the release")
    assert row(no_policy).deleted_at is None and row(calls["held"]).deleted_at is None
    assert {"hold.created", "hold.released", "recording.deleted", "erasure.executed"} <= events.types()
    report = ctx.integrity.verify_all(ADMIN)
    assert report.ok, [(r.recording_id, r.problems) for r in report.results if not r.ok] + report.log_problems


def _verify_certificate(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`callvault verify-certificate` offline: no data directory, no database."""
    return subprocess.run(
        [sys.executable, "-m", "callvault", "verify-certificate", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": ":".join(sys.path),
            "CALLVAULT_DATA_DIR": str(cwd / "none"),
        },
        check=False,
    )
