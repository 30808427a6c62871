"""Webhooks over the HTTP API of a running server, to a real receiver on loopback."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import select

from callvault.db.webhook_models import WebhookDelivery, WebhookSubscription
from callvault.services.context import ServiceContext
from callvault.services.webhook_signing import SignatureMismatch, verify_signature
from tests.api.conftest import auth
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN
from tests.support.webhook_receiver import Receiver
from tests.webhooks.conftest import FAST_RETRY


def subscribe(client: httpx.Client, token: str, url: str, *events: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/webhooks",
        headers=auth(token),
        json={"url": url, "events": list(events or ["recording.sealed"])},
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def deliveries(client: httpx.Client, token: str, webhook_id: object) -> list[dict[str, object]]:
    response = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=auth(token))
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def wait_delivered(
    client: httpx.Client, token: str, webhook_id: object, status: str = "delivered"
) -> dict[str, object]:
    """The newest delivery once the server recorded its outcome (polled; the receiver may be faster)."""
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        items = deliveries(client, token, webhook_id)
        if items and items[0]["status"] == status:
            return items[0]
        time.sleep(0.05)
    raise AssertionError(f"no {status} delivery: {deliveries(client, token, webhook_id)}")


def test_upload_is_announced_signed_and_listed(
    client: httpx.Client, ctx: ServiceContext, admin_token: str, receiver: Receiver
) -> None:
    created = subscribe(client, admin_token, receiver.url, "recording.sealed", "hold.created")
    secret = str(created["secret"])
    assert secret.startswith("whsec_") and created["events"] == ["recording.sealed", "hold.created"]
    # The secret is shown once: not in the listing, not in the catalog in clear.
    listed = client.get("/api/v1/webhooks", headers=auth(admin_token)).json()["items"]
    assert [h["id"] for h in listed] == [created["id"]] and "secret" not in listed[0]
    with ctx.catalog.read() as session:
        row = session.scalars(select(WebhookSubscription)).one()
        assert secret.encode() not in row.secret_sealed

    wav = stereo_wav(voice(1.0, 8000, 140.0, seed=1), voice(1.0, 8000, 220.0, seed=2), 8000)
    uploaded = client.post(
        "/api/v1/recordings", headers=auth(admin_token), files={"file": ("call.wav", wav, "audio/wav")}
    )
    assert uploaded.status_code == 201, uploaded.text
    recording_id = uploaded.json()["id"]

    (request,) = receiver.wait_for(1)
    assert request.path == "/hooks/callvault?src=test"
    assert request.headers["content-type"] == "application/json"
    event = request.event
    assert (
        event["type"] == "recording.sealed" and request.headers["callvault-event-type"] == "recording.sealed"
    )
    assert event["id"] == request.headers["callvault-event-id"]
    data = event["data"]
    assert (
        data["recording_id"] == recording_id and data["status"] == "complete" and data["source"] == "upload"
    )
    detail = client.get(f"/api/v1/recordings/{recording_id}", headers=auth(admin_token)).json()
    assert data["audio_sha256"] == detail["audio_sha256"]
    signature = request.headers["callvault-signature"]
    verify_signature(secret, signature, request.body)
    try:
        verify_signature(secret, signature, request.body.replace(b"complete", b"incomplete"))
    except SignatureMismatch:
        pass
    else:
        raise AssertionError("an edited body verified")

    delivered = wait_delivered(client, admin_token, created["id"])
    assert delivered["attempts"] == 1 and delivered["last_status_code"] == 200
    assert delivered["event_id"] == event["id"] and delivered["event"] == "recording.sealed"
    # Documented in OpenAPI, with the event names as an enum.
    openapi = client.get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/webhooks",
        "/api/v1/webhooks/{webhook_id}/deliveries",
        "/api/v1/webhooks/{webhook_id}/test",
    } <= set(openapi["paths"])
    assert "erasure.executed" in json.dumps(openapi["components"]["schemas"]["WebhookCreate"])
    # Every webhook operation is in the access trail, the secret and the URL's path nowhere.
    trail = client.get("/api/v1/audit/access-events", headers=auth(admin_token)).json()["items"]
    actions = {e["action"] for e in trail}
    assert {"webhook.create", "webhook.list", "webhook.deliveries"} <= actions
    assert not any(secret in json.dumps(e) or "/hooks/callvault" in json.dumps(e) for e in trail)


def test_a_failing_receiver_is_retried_with_backoff_then_the_delivery_fails(
    client: httpx.Client, admin_token: str, receiver: Receiver
) -> None:
    created = subscribe(client, admin_token, receiver.url)
    receiver.answers = [500, 503, 200]
    ping = client.post(f"/api/v1/webhooks/{created['id']}/test", headers=auth(admin_token))
    assert ping.status_code == 202, ping.text
    first, second, third = receiver.wait_for(3)
    assert {r.event["id"] for r in (first, second, third)} == {ping.json()["event_id"]}
    assert [r.headers["callvault-delivery-attempt"] for r in (first, second, third)] == ["1", "2", "3"]
    # Equal jitter keeps at least half the step: 0.1 s, then 0.2 s.
    base = float(FAST_RETRY["webhook_backoff_seconds"])
    assert second.at - first.at >= base / 2 and third.at - second.at >= base
    # The body is the same bytes every time; each attempt is signed afresh.
    assert first.body == second.body == third.body
    delivered = wait_delivered(client, admin_token, created["id"])
    assert (
        delivered["attempts"] == 3
        and delivered["last_status_code"] == 200
        and delivered["last_error"] is None
    )

    receiver.answers = [500]  # never recovers: max attempts (3 here), then failed
    client.post(f"/api/v1/webhooks/{created['id']}/test", headers=auth(admin_token))
    failed = wait_delivered(client, admin_token, created["id"], status="failed")
    assert failed["attempts"] == 3 and failed["last_status_code"] == 500
    assert failed["last_error"] == "answered HTTP 500"
    counts = client.get(f"/api/v1/webhooks/{created['id']}", headers=auth(admin_token)).json()["deliveries"]
    assert counts == {"pending": 0, "delivered": 1, "failed": 1}
    only_failed = client.get(
        f"/api/v1/webhooks/{created['id']}/deliveries", params={"status": "failed"}, headers=auth(admin_token)
    ).json()["items"]
    assert [d["status"] for d in only_failed] == ["failed"]


def test_bad_input_is_refused_and_nothing_is_stored(
    client: httpx.Client, ctx: ServiceContext, admin_token: str, receiver: Receiver
) -> None:
    bad_bodies = [
        ({"url": receiver.url, "events": []}, "events"),
        ({"url": receiver.url, "events": ["recording.played"]}, "events.0"),
        ({"url": "ftp://example.com/x", "events": ["recording.sealed"]}, "https://"),
        ({"url": "https://user:pw@example.com/", "events": ["recording.sealed"]}, "credentials"),
        ({"url": "https://no-such-host.invalid/", "events": ["recording.sealed"]}, "does not resolve"),
        ({"url": receiver.url, "events": ["recording.sealed"], "secret": "short"}, "secret"),
        ({"events": ["recording.sealed"]}, "url"),
    ]
    for body, problem in bad_bodies:
        response = client.post("/api/v1/webhooks", headers=auth(admin_token), json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"] == "invalid_input" and problem in response.json()["detail"], (
            response.text
        )
    not_json = client.post(
        "/api/v1/webhooks", headers={**auth(admin_token), "Content-Type": "application/json"}, content=b"{"
    )
    assert not_json.status_code == 400
    for path in ("/api/v1/webhooks/nope", "/api/v1/webhooks/nope/deliveries"):
        assert client.get(path, headers=auth(admin_token)).status_code == 404
    assert client.delete("/api/v1/webhooks/nope", headers=auth(admin_token)).status_code == 404
    assert client.get("/api/v1/webhooks/" + "x" * 80, headers=auth(admin_token)).status_code == 400
    with ctx.catalog.read() as session:
        assert session.scalars(select(WebhookSubscription)).all() == []

    # Admins only; others get 403 and their attempt is in the trail.
    ctx.users.create_user(ADMIN, "carol", "compliance_officer")
    carol = ctx.users.create_token(ADMIN, "carol", "test")
    denied = client.post(
        "/api/v1/webhooks", headers=auth(carol), json={"url": receiver.url, "events": ["recording.sealed"]}
    )
    assert denied.status_code == 403
    assert client.get("/api/v1/webhooks", headers=auth(carol)).status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401
    trail = ctx.access_log.list(ADMIN, limit=1000)
    assert any(
        e.username == "carol" and e.action == "webhook.create" and e.outcome == "denied" for e in trail
    )
    assert any(e.action == "webhook.create" and e.outcome == "refused" for e in trail)

    # Removing a subscription drops what was still queued for it.
    created = subscribe(client, admin_token, receiver.url)
    receiver.answers = [500]
    client.post(f"/api/v1/webhooks/{created['id']}/test", headers=auth(admin_token))
    receiver.wait_for(1)
    assert client.delete(f"/api/v1/webhooks/{created['id']}", headers=auth(admin_token)).status_code == 204
    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=auth(admin_token)).status_code == 404
    with ctx.catalog.read() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []
