"""Import → search → play through the HTTP API, with access control and Range requests."""

from __future__ import annotations

import io

import av
import numpy as np
from fastapi.testclient import TestClient

from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.support.audio import correlation, read_wav, stereo_wav, voice
from tests.support.people import Staff, password_of

RATE = 8000


def upload(client: TestClient, token: str, wav: bytes, **fields: str | list[str]) -> str:
    response = client.post(
        "/api/v1/recordings",
        headers=auth(token),
        files={"file": ("call.wav", wav, "audio/wav")},
        data=fields,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def decode_ogg(data: bytes) -> tuple[np.ndarray, int]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    pcm = np.concatenate(frames, axis=1)
    if pcm.dtype != np.int16:
        pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    return pcm, rate


def test_stereo_import_is_searchable_and_plays_back_with_channels_kept(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    agent_voice, customer_voice = voice(6, RATE, 120, 1), voice(6, RATE, 210, 2)
    recording_id = upload(
        client,
        staff.tokens["sam"],
        stereo_wav(agent_voice, customer_voice, RATE),
        agent="alice",
        customer="(415) 555-0100",
        direction="inbound",
        queue="billing",
        tag=["vip", "escalation"],
    )
    listing = client.get(
        "/api/v1/recordings", params={"customer": "+1 415 555 0100"}, headers=auth(staff.tokens["carol"])
    )
    assert listing.status_code == 200
    assert [item["id"] for item in listing.json()["items"]] == [recording_id]
    assert listing.json()["total"] == 1

    detail = client.get(f"/api/v1/recordings/{recording_id}", headers=auth(staff.tokens["carol"])).json()
    assert detail["status"] == "complete"
    assert abs(detail["duration"] - 6.0) < 0.05
    assert {p["role"] for p in detail["participants"]} == {"agent", "customer"}
    assert detail["started_at"]

    audio = client.get(f"/api/v1/recordings/{recording_id}/audio", headers=auth(staff.tokens["carol"]))
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/ogg"
    assert audio.content[:4] == b"OggS"
    pcm, rate = decode_ogg(audio.content)
    if rate != RATE:
        import scipy.signal

        pcm = np.stack(
            [scipy.signal.resample_poly(ch.astype(float), RATE, rate).astype(np.int16) for ch in pcm]
        )
    assert pcm.shape[0] == 2
    assert correlation(pcm[0], agent_voice) >= 0.9
    assert correlation(pcm[1], customer_voice) >= 0.9
    assert correlation(pcm[0], customer_voice) < 0.5

    wav = client.get(
        f"/api/v1/recordings/{recording_id}/audio",
        params={"format": "wav"},
        headers=auth(staff.tokens["carol"]),
    )
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    wav_pcm, wav_rate = read_wav(wav.content)
    assert wav_rate == RATE and abs(wav_pcm.shape[1] - agent_voice.size) <= RATE * 0.05


def test_range_requests_return_the_right_bytes(client: TestClient, staff: Staff) -> None:
    recording_id = upload(
        client, staff.tokens["carol"], stereo_wav(voice(20, RATE, 130, 3), voice(20, RATE, 200, 4), RATE)
    )
    url = f"/api/v1/recordings/{recording_id}/audio"
    whole = client.get(url, headers=auth(staff.tokens["carol"])).content
    size = len(whole)
    for header, (start, end) in {
        "bytes=0-99": (0, 100),
        f"bytes=1000-{size - 1}": (1000, size),
        "bytes=65530-65545": (65530, 65546),
        "bytes=-300": (size - 300, size),
        "bytes=500-": (500, size),
    }.items():
        if start >= size:
            continue
        response = client.get(url, headers={**auth(staff.tokens["carol"]), "Range": header})
        assert response.status_code == 206, header
        assert response.content == whole[start:end], header
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
    beyond = client.get(url, headers={**auth(staff.tokens["carol"]), "Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416
    assert beyond.json()["error"] == "range_not_satisfiable"
    assert beyond.headers["content-range"] == f"bytes */{size}"
    malformed = client.get(url, headers={**auth(staff.tokens["carol"]), "Range": "bytes=500-100"})
    assert malformed.status_code == 416
    assert malformed.headers["content-range"] == f"bytes */{size}"
    # The WAV rendition answers ranges too, streamed, with the same bytes as the whole file.
    wav_url = url + "?format=wav"
    wav = client.get(wav_url, headers=auth(staff.tokens["carol"])).content
    assert wav.startswith(b"RIFF") and len(wav) == 44 + 20 * RATE * 2 * 2
    part = client.get(wav_url, headers={**auth(staff.tokens["carol"]), "Range": "bytes=300000-300999"})
    assert part.status_code == 206
    assert part.content == wav[300000:301000]
    assert part.headers["content-range"] == f"bytes 300000-300999/{len(wav)}"


def test_scope_agent_supervisor_auditor(client: TestClient, staff: Staff) -> None:
    wav = stereo_wav(voice(2, RATE, 120, 5), voice(2, RATE, 220, 6), RATE)
    alices = upload(client, staff.tokens["carol"], wav, agent="alice")
    bobs = upload(client, staff.tokens["carol"], wav, agent="sip:1002@pbx.example")

    def ids(token: str) -> set[str]:
        body = client.get("/api/v1/recordings", headers=auth(token)).json()
        return {item["id"] for item in body["items"]}

    assert ids(staff.tokens["alice"]) == {alices}
    assert ids(staff.tokens["bob"]) == {bobs}
    assert ids(staff.tokens["dana"]) == set()  # red team like alice: own is not team
    assert ids(staff.tokens["sam"]) == {alices}  # red team supervisor
    assert ids(staff.tokens["quinn"]) == {bobs}  # blue team QA
    assert ids(staff.tokens["carol"]) == {alices, bobs}
    # Another agent's recording does not exist as far as alice can tell.
    for path in (f"/api/v1/recordings/{bobs}", f"/api/v1/recordings/{bobs}/audio"):
        response = client.get(path, headers=auth(staff.tokens["alice"]))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert (
        client.get(f"/api/v1/recordings/{alices}/audio", headers=auth(staff.tokens["alice"])).status_code
        == 200
    )
    # Auditors see the trail and metadata, never audio.
    assert (
        client.get(f"/api/v1/recordings/{alices}/audio", headers=auth(staff.tokens["audrey"])).status_code
        == 403
    )
    trail = client.get("/api/v1/audit/access-events", headers=auth(staff.tokens["audrey"]))
    assert trail.status_code == 200
    actions = {(e["user"], e["action"], e["outcome"]) for e in trail.json()["items"]}
    assert ("alice", "play", "ok") in actions
    assert ("alice", "view", "not_found") in actions
    assert client.get("/api/v1/audit/access-events", headers=auth(staff.tokens["alice"])).status_code == 403


def test_login_and_bad_credentials(client: TestClient, staff: Staff) -> None:
    ok = client.post("/api/v1/auth/token", data={"username": "alice", "password": password_of("alice")})
    assert ok.status_code == 200
    token = ok.json()["access_token"]
    assert client.get("/api/v1/me", headers=auth(token)).json()["role"] == "agent"
    bad = client.post("/api/v1/auth/token", json={"username": "alice", "password": "wrong"})
    assert bad.status_code == 401 and bad.json()["error"] == "authentication_failed"
    nobody = client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x"})
    assert nobody.status_code == 401
    assert client.get("/api/v1/recordings").status_code == 401
    assert client.get("/api/v1/recordings", headers=auth("cv_forged")).status_code == 401


def test_search_filters(client: TestClient, staff: Staff) -> None:
    wav2 = stereo_wav(voice(2, RATE, 120, 7), voice(2, RATE, 220, 8), RATE)
    wav5 = stereo_wav(voice(5, RATE, 120, 7), voice(5, RATE, 220, 8), RATE)
    token = staff.tokens["carol"]
    a = upload(
        client,
        token,
        wav2,
        agent="alice",
        direction="inbound",
        queue="sales",
        tag=["vip"],
        started_at="2026-03-01T10:00:00Z",
        customer="+442071838750",
    )
    b = upload(
        client,
        token,
        wav5,
        agent="bob",
        direction="outbound",
        queue="support",
        started_at="2026-03-02T10:00:00Z",
        customer="4155550100",
    )

    def found(**params: str) -> list[str]:
        response = client.get("/api/v1/recordings", params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert found(agent="alice") == [a]
    assert found(agent="sip:1002@pbx.example") == [b]
    assert found(direction="outbound") == [b]
    assert found(queue="sales") == [a]
    assert found(tag="vip") == [a]
    assert found(min_duration="3") == [b]
    assert found(max_duration="3") == [a]
    assert found(**{"from": "2026-03-02T00:00:00Z"}) == [b]
    assert found(to="2026-03-02T00:00:00Z") == [a]
    assert found(customer="+44 20 7183 8750") == [a]
    assert found(customer="(415) 555-0100") == [b]
    assert found(sort="started_at") == [a, b]
    assert found(sort="-started_at", limit="1") == [b]
    assert found(sort="-started_at", limit="1", offset="1") == [a]
    for params in (
        {"direction": "sideways"},
        {"limit": "0"},
        {"from": "yesterday"},
        {"sort": "agent"},
        {"customer": "not-a-number"},
        {"min_duration": "-1"},
        {"queue": "sales\x00"},  # PostgreSQL refuses NUL: a 400 naming the field, not a 500
        {"tag": "vip\x1b[2J"},
    ):
        response = client.get("/api/v1/recordings", params=params, headers=auth(token))
        assert response.status_code == 400, params
        assert response.json()["error"] == "invalid_input"
        assert response.json()["detail"]
    assert (
        "queue must not contain control characters"
        in client.get("/api/v1/recordings", params={"queue": "a\x00"}, headers=auth(token)).json()["detail"]
    )


def test_bad_uploads_leave_nothing_behind(client: TestClient, staff: Staff, ctx: ServiceContext) -> None:
    token = staff.tokens["carol"]
    good = stereo_wav(voice(1, RATE, 120, 9), voice(1, RATE, 220, 10), RATE)
    cases = {
        "empty": (b"", 400),
        "not audio": (b"hello, this is not audio at all" * 10, 415),
        "truncated wav header": (good[:30], 415),
        "garbage ogg": (b"OggS" + bytes(range(256)) * 4, 415),
    }
    for name, (payload, status) in cases.items():
        response = client.post(
            "/api/v1/recordings",
            headers=auth(token),
            files={"file": ("../../etc/passwd", payload, "audio/wav")},
        )
        assert response.status_code == status, (name, response.text)
        assert response.json()["detail"], name
    assert client.get("/api/v1/recordings", headers=auth(token)).json()["total"] == 0
    assert list(ctx.blobs.list("")) == []
    # A field with a bad value is refused too, and the server keeps serving.
    response = client.post(
        "/api/v1/recordings",
        headers=auth(token),
        files={"file": ("a.wav", good, "audio/wav")},
        data={"direction": "sideways"},
    )
    assert response.status_code == 400
    response = client.post(
        "/api/v1/recordings",
        headers=auth(token),
        files={"file": ("a.wav", good, "audio/wav")},
        data={"agent": "nobody-such"},
    )
    assert response.status_code == 400
    assert client.get("/healthz").status_code == 200
    # Agents may not upload.
    denied = client.post(
        "/api/v1/recordings",
        headers=auth(staff.tokens["alice"]),
        files={"file": ("a.wav", good, "audio/wav")},
    )
    assert denied.status_code == 403


def test_mono_upload_is_stored_mixed(client: TestClient, staff: Staff) -> None:
    from tests.support.audio import mono_wav

    recording_id = upload(client, staff.tokens["carol"], mono_wav(voice(2, 16000, 150, 11), 16000))
    detail = client.get(f"/api/v1/recordings/{recording_id}", headers=auth(staff.tokens["carol"])).json()
    assert detail["mixed"] is True
    assert detail["channels"] == 1
    assert detail["sample_rate"] == 16000


def test_openapi_health_and_metrics(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/recordings/{recording_id}/audio" in spec["paths"]
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics")
    assert "callvault_http_requests_total" in metrics.text


def test_tokens_created_and_revoked_through_the_api(client: TestClient, staff: Staff) -> None:
    created = client.post("/api/v1/tokens", json={"name": "softphone"}, headers=auth(staff.tokens["alice"]))
    assert created.status_code == 201
    token = created.json()["token"]
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 200
    # An agent cannot mint tokens for someone else; an admin-less role gets 403.
    other = client.post("/api/v1/tokens", json={"username": "bob"}, headers=auth(staff.tokens["alice"]))
    assert other.status_code == 403
    assert (
        client.post(
            "/api/v1/tokens/revoke", json={"token": token}, headers=auth(staff.tokens["bob"])
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/tokens/revoke", json={"token": token}, headers=auth(staff.tokens["alice"])
        ).status_code
        == 204
    )
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401
    bad = client.post("/api/v1/tokens", json={"ttl_hours": -1}, headers=auth(staff.tokens["alice"]))
    assert bad.status_code == 400
