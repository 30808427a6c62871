"""Uploads: team scope, uploader and source in the signed manifest, audit, and no body read before auth."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from callvault.api.app import create_app
from callvault.services.context import ServiceContext, open_context
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff, create_staff

RATE = 8000
URL = "/api/v1/recordings"


def _wav(seed: int = 1) -> bytes:
    return stereo_wav(voice(1, RATE, 120, seed), voice(1, RATE, 220, seed + 1), RATE)


def _post(client: TestClient, token: str, **fields: str) -> Any:
    return client.post(
        URL, headers=auth(token), files={"file": ("call.wav", _wav(), "audio/wav")}, data=fields
    )


def _trail(client: TestClient, staff: Staff) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit/access-events", headers=auth(staff.tokens["carol"]))
    assert response.status_code == 200
    return [e for e in response.json()["items"] if e["action"] == "upload"]


def test_supervisor_uploads_only_for_agents_of_their_team_and_every_attempt_is_audited(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    own = _post(client, staff.tokens["sam"], agent="alice")  # sam supervises red, alice is red
    assert own.status_code == 201, own.text
    for fields in ({"agent": "bob"}, {"agent": "sip:1002@pbx.example"}, {}):  # bob is blue; no agent
        refused = _post(client, staff.tokens["sam"], **fields)
        assert refused.status_code == 403, (fields, refused.text)
        assert refused.json()["error"] == "permission_denied"
    assert _post(client, staff.tokens["alice"]).status_code == 403  # agents never upload
    listing = client.get(URL, headers=auth(staff.tokens["carol"])).json()
    assert [item["id"] for item in listing["items"]] == [own.json()["id"]]
    assert len(list(ctx.blobs.list(""))) == 1

    trail = _trail(client, staff)
    allowed = [e for e in trail if e["outcome"] == "ok"]
    assert [(e["user"], e["recording_id"]) for e in allowed] == [("sam", own.json()["id"])]
    denied = [(e["user"], e["outcome"]) for e in trail if e["outcome"] != "ok"]
    assert denied.count(("sam", "denied")) == 3
    assert ("alice", "denied") in denied
    # Phone numbers and SIP identities named by the uploader stay out of the trail.
    assert all("1002" not in (e["detail"] or "") for e in trail)


def test_manifest_signs_uploader_source_and_receipt_time_and_verify_catches_changes(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    claimed = "2024-03-01T09:30:00+00:00"
    response = _post(client, staff.tokens["sam"], agent="alice", started_at=claimed)
    assert response.status_code == 201, response.text
    recording_id = response.json()["id"]
    with ctx.catalog.engine.connect() as conn:
        manifest = json.loads(
            conn.execute(
                text("SELECT manifest FROM recordings WHERE id = :id"), {"id": recording_id}
            ).scalar_one()
        )
    # Backdating is kept as the uploader's claim; who sent it and when it arrived are signed beside it.
    assert manifest["recording"]["started_at"].startswith("2024-03-01T09:30:00")
    source = manifest["source"]
    assert source["kind"] == "upload"
    assert source["user"] == "sam"
    assert source["user_id"] == staff.principals["sam"].user_id
    assert source["address"] == "testclient"
    assert source["received_at"] > "2025"
    assert ctx.integrity.verify(ADMIN)[0].ok

    forged = {**source, "user": "alice"}
    with ctx.catalog.engine.begin() as conn:
        conn.execute(
            text("UPDATE recordings SET ingest_source = :s WHERE id = :id"),
            {"s": json.dumps(forged), "id": recording_id},
        )
    assert ctx.integrity.verify(ADMIN)[0].problems == ["catalog rows differ from the signed manifest"]
    with ctx.catalog.engine.begin() as conn:
        conn.execute(text("UPDATE recordings SET ingest_source = NULL WHERE id = :id"), {"id": recording_id})
    assert ctx.integrity.verify(ADMIN)[0].problems == ["catalog rows differ from the signed manifest"]


def test_a_start_time_in_the_future_is_refused(client: TestClient, staff: Staff) -> None:
    response = _post(client, staff.tokens["carol"], started_at="2999-01-01T00:00:00Z")
    assert response.status_code == 400
    assert "future" in response.json()["detail"]
    assert ("carol", "refused") in {(e["user"], e["outcome"]) for e in _trail(client, staff)}


class CountingApp:
    """ASGI wrapper counting the request-body bytes the application pulled from the client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.received = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting_receive() -> Any:
            message = await receive()
            if message.get("type") == "http.request":
                self.received += len(message.get("body", b""))
            return message

        await self.app(scope, counting_receive, send)


def _chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    yield head
    sent = len(head)
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"\x00" * piece


BIG = 60 * 1024 * 1024
MULTIPART = {"Content-Type": "multipart/form-data; boundary=xyz"}


def test_unauthenticated_60mb_upload_is_answered_401_before_the_body_is_read(
    ctx: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    app = CountingApp(create_app(ctx))
    with TestClient(app) as client:
        response = client.post(URL, content=b"\x00" * BIG, headers=MULTIPART)
        assert response.status_code == 401
        assert response.json()["error"] == "authentication_failed"
        # Streamed by a client that sends without waiting: still not one byte pulled.
        status, _, pulled = asyncio.run(_stream_post(app.app, MULTIPART, _chunks(BIG)))
        assert status == 401
        assert pulled == 0
    assert app.received == 0
    assert list(spool.iterdir()) == []


async def _stream_post(app: Any, headers: dict[str, str], chunks: Iterator[bytes]) -> tuple[int, bytes, int]:
    """POST ``chunks`` to the ASGI ``app`` as a client streaming a chunked body; (status, body, bytes pulled)."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), body, pulled


def test_over_cap_upload_is_refused_413_early_and_audited(data_dir: Path, database_url: str) -> None:
    cap = 100_000
    ctx = open_context(make_settings(data_dir, database_url, max_upload_bytes=str(cap)))
    try:
        staff = create_staff(ctx)
        app = CountingApp(create_app(ctx))
        with TestClient(app) as client:
            headers = {**auth(staff.tokens["carol"]), **MULTIPART}
            # A declared length over the cap: refused before one byte is read.
            declared = client.post(URL, content=b"\x00" * BIG, headers=headers)
            assert declared.status_code == 413
            assert app.received == 0
        # No declared length (chunked, as a client streams it): refused once the running count passes
        # the cap. (TestClient reads a streamed body whole, so the ASGI app is driven directly.)
        status, body, pulled = asyncio.run(_stream_post(app.app, headers, _chunks(BIG)))
        assert status == 413
        assert "CALLVAULT_MAX_UPLOAD_BYTES" in json.loads(body)["detail"]
        assert pulled < cap + 256 * 1024
        # An agent may never upload: refused before the body too.
        alice = {**auth(staff.tokens["alice"]), **MULTIPART}
        status, _, pulled = asyncio.run(_stream_post(app.app, alice, _chunks(BIG)))
        assert status == 403
        assert pulled == 0
        assert list(ctx.blobs.list("")) == []
        refused = [e for e in ctx.access_log.list(ADMIN) if e.action == "upload"]
        assert [e.outcome for e in refused].count("refused") == 2
        assert all("larger than" in (e.detail or "") for e in refused if e.outcome == "refused")
        assert ("alice", "denied") in {(e.username, e.outcome) for e in refused}
    finally:
        ctx.close()


def test_malformed_forms_are_refused_precisely(client: TestClient, staff: Staff) -> None:
    headers = auth(staff.tokens["carol"])
    no_file = client.post(URL, headers=headers, data={"agent": "alice"}, files={"other": ("x", b"abc")})
    assert no_file.status_code == 400
    not_multipart = client.post(URL, headers={**headers, "Content-Type": "audio/wav"}, content=_wav())
    assert not_multipart.status_code == 415
    unknown = client.post(URL, headers=headers, files={"file": ("a.wav", _wav())}, data={"agnet": "alice"})
    assert unknown.status_code == 400
    assert "agnet" in unknown.json()["detail"]
    assert client.get("/healthz").status_code == 200
