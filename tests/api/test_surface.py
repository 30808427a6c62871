"""The API surface: security headers everywhere, optional tokens for /metrics and the docs,
a minimal /healthz, refusals in the access trail, and 400/503 instead of 500s."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from callvault.api.app import create_app
from callvault.db.catalog import Catalog
from callvault.services.context import ServiceContext, open_context
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff

HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}


def upload(client: TestClient, token: str, **fields: str) -> str:
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 220, 2), 8000)
    response = client.post(
        "/api/v1/recordings", headers=auth(token), files={"file": ("a.wav", wav)}, data=fields
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_secure(response: Any) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_security_headers_on_every_kind_of_response(client: TestClient, staff: Staff) -> None:
    recording_id = upload(client, staff.tokens["carol"], agent="alice")
    carol = auth(staff.tokens["carol"])
    responses = [
        client.get("/api/v1/recordings", headers=carol),  # JSON
        client.get("/api/v1/recordings"),  # 401
        client.get("/api/v1/recordings/nope", headers=carol),  # 404
        client.get("/api/v1/recordings", params={"limit": "0"}, headers=carol),  # 400
        client.get("/api/v1/no-such-route"),  # router 404
        client.get(f"/api/v1/recordings/{recording_id}/audio", headers=carol),  # streamed audio
        client.get(f"/api/v1/recordings/{recording_id}/audio", headers={**carol, "Range": "bytes=0-9"}),
        client.get("/api/v1/docs"),  # HTML
        client.get("/api/v1/openapi.json"),
        client.get("/metrics"),
        client.get("/healthz"),
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 400, 404, 200, 206, 200, 200, 200, 200]
    for response in responses:
        assert_secure(response)
    assert "strict-transport-security" not in responses[0].headers  # plain HTTP here
    assert "cdn.jsdelivr.net" in responses[7].headers["content-security-policy"]
    assert "/api/v1/recordings" in responses[8].json()["paths"]


def test_an_unexpected_error_is_json_500_with_the_headers(ctx: ServiceContext, staff: Staff) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom: internal detail")

    ctx.search.search = broken  # type: ignore[method-assign]
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        response = client.get("/api/v1/recordings", headers=auth(staff.tokens["carol"]))
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "boom" not in response.text
    assert_secure(response)


@pytest.fixture
def guarded(data_dir: Path, database_url: str) -> Iterator[tuple[TestClient, ServiceContext]]:
    ctx = open_context(
        make_settings(data_dir, database_url, metrics_require_token="true", docs_require_token="true")
    )
    try:
        with TestClient(create_app(ctx)) as client:
            yield client, ctx
    finally:
        ctx.close()


def test_metrics_and_docs_can_require_a_token(guarded: tuple[TestClient, ServiceContext]) -> None:
    client, ctx = guarded
    ctx.users.create_user(ADMIN, "prom", "auditor")
    token = ctx.users.create_token(ADMIN, "prom", "scrape")
    for path in ("/metrics", "/api/v1/docs", "/api/v1/openapi.json"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=auth("cv_wrong")).status_code == 401, path
        assert client.get(path, headers=auth(token)).status_code == 200, path
    assert client.get("/healthz").status_code == 200


def test_healthz_tells_strangers_only_ok_and_admins_the_details(ctx: ServiceContext, staff: Staff) -> None:
    reasons: list[str] = []

    def extra() -> dict[str, Any]:
        return {"sip": "listening", "degraded": list(reasons)}

    admin = ctx.users.create_user(ADMIN, "root", "admin")
    admin_token = ctx.users.create_token(ADMIN, admin.username)
    with TestClient(create_app(ctx, health_extra=extra)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/healthz", headers=auth(staff.tokens["carol"])).json() == {"status": "ok"}
        assert client.get("/healthz", headers=auth("cv_forged")).json() == {"status": "ok"}
        detail = client.get("/healthz", headers=auth(admin_token)).json()
        assert detail["status"] == "ok" and detail["catalog"] == "ok" and detail["sip"] == "listening"
        assert "version" in detail and "storage" in detail and detail["degraded"] == []
        reasons.append("disk nearly full")
        degraded = client.get("/healthz")
        assert degraded.status_code == 503 and degraded.json() == {"status": "degraded"}
        assert client.get("/healthz", headers=auth(admin_token)).json()["degraded"] == ["disk nearly full"]


def test_refusals_are_in_the_access_trail(client: TestClient, staff: Staff, ctx: ServiceContext) -> None:
    recording_id = upload(client, staff.tokens["carol"], agent="sip:1002@pbx.example")  # bob's
    alice, audrey = auth(staff.tokens["alice"]), auth(staff.tokens["audrey"])
    assert client.get("/api/v1/audit/access-events", headers=alice).status_code == 403
    assert client.get(f"/api/v1/recordings/{recording_id}/audio", headers=audrey).status_code == 403
    assert client.get(f"/api/v1/recordings/{recording_id}", headers=alice).status_code == 404
    assert client.get(f"/api/v1/recordings/{recording_id}/audio", headers=alice).status_code == 404
    assert client.get("/api/v1/users/bob/tokens", headers=alice).status_code == 403
    assert client.post("/api/v1/users/bob/disable", headers=alice).status_code == 403
    events = [
        (e.username, e.action, e.outcome, e.recording_id, e.detail)
        for e in reversed(ctx.access_log.list(ADMIN, limit=1000))
        if e.outcome != "ok"
    ]
    assert events == [
        ("alice", "refused", "forbidden", None, "GET /api/v1/audit/access-events: permission_denied"),
        (
            "audrey",
            "refused",
            "forbidden",
            recording_id,
            f"GET /api/v1/recordings/{recording_id}/audio: permission_denied",
        ),
        # The services write their own out-of-scope 404s: once, not twice.
        ("alice", "view", "not_found", recording_id, None),
        ("alice", "play", "not_found", recording_id, None),
        ("alice", "refused", "forbidden", None, "GET /api/v1/users/bob/tokens: permission_denied"),
        ("alice", "refused", "forbidden", None, "POST /api/v1/users/bob/disable: permission_denied"),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"offset": str(10**30)},
        {"offset": str(2**63)},
        {"limit": str(10**30)},
        {"min_duration": "1e400"},
        {"max_duration": "nan"},
    ],
)
def test_out_of_range_numbers_answer_400(client: TestClient, staff: Staff, params: dict[str, str]) -> None:
    response = client.get("/api/v1/recordings", params=params, headers=auth(staff.tokens["carol"]))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_input"


def test_huge_numbers_elsewhere_answer_400(client: TestClient, staff: Staff) -> None:
    carol = auth(staff.tokens["carol"])
    assert (
        client.get("/api/v1/audit/access-events", params={"limit": 10**30}, headers=carol).status_code == 400
    )
    for body in ('{"ttl_hours": 1e999}', '{"ttl_hours": NaN}', '{"ttl_hours": 1e30}'):
        ttl = client.post(
            "/api/v1/tokens", content=body, headers={**carol, "content-type": "application/json"}
        )
        assert ttl.status_code == 400, body


def test_a_locked_sqlite_catalog_answers_json_503(
    data_dir: Path, db_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite's file lock; PostgreSQL is covered by the unreachable-server test")
    monkeypatch.setattr("callvault.db.catalog.BUSY_TIMEOUT_MS", 200)
    ctx = open_context(make_settings(data_dir, ""))
    try:
        ctx.users.create_user(ADMIN, "carol", "compliance_officer")
        token = ctx.users.create_token(ADMIN, "carol")
        other = sqlite3.connect(data_dir / "catalog.sqlite3", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with TestClient(create_app(ctx)) as client:
                # A search writes its access event: the writer cannot get the lock.
                response = client.get("/api/v1/recordings", headers=auth(token))
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "catalog_unavailable"
        assert response.headers["retry-after"] == "5"
    finally:
        ctx.close()


def test_an_unreachable_postgresql_answers_json_503(ctx: ServiceContext, staff: Staff) -> None:
    real = ctx.catalog
    # Nothing listens on port 9 (discard): the driver's connection fails at once.
    ctx.catalog = Catalog("postgresql+psycopg://postgres@127.0.0.1:9/test")
    ctx.users._catalog = ctx.catalog  # noqa: SLF001 - point the service at the dead server
    try:
        with TestClient(create_app(ctx)) as client:
            response = client.get("/api/v1/me", headers=auth(staff.tokens["carol"]))
            health = client.get("/healthz")
    finally:
        ctx.catalog.dispose()
        ctx.catalog = real
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "catalog_unavailable"
    assert "127.0.0.1" not in response.text
    assert health.status_code == 503 and health.json() == {"status": "degraded"}


def test_a_full_disk_answers_json_503(client: TestClient, staff: Staff, ctx: ServiceContext) -> None:
    def no_space(*_args: object, **_kwargs: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    ctx.importer.import_file = no_space  # type: ignore[method-assign]
    wav = stereo_wav(voice(1, 8000, 120, 1), voice(1, 8000, 220, 2), 8000)
    response = client.post(
        "/api/v1/recordings", headers=auth(staff.tokens["carol"]), files={"file": ("a.wav", wav)}
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "storage_full"
    assert_secure(response)


def test_a_full_sqlite_catalog_answers_json_503(data_dir: Path, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite's page limit stands in for a full disk")
    ctx = open_context(make_settings(data_dir, ""))
    try:
        ctx.users.create_user(ADMIN, "carol", "compliance_officer")
        token = ctx.users.create_token(ADMIN, "carol")

        def cap(dbapi_connection: Any, _record: Any) -> None:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count={pages}")

        event.listen(ctx.catalog.engine, "connect", cap)
        ctx.catalog.engine.dispose()
        with TestClient(create_app(ctx)) as client:
            statuses = set()
            for i in range(200):  # each search appends an access event until the pages run out
                response = client.get(
                    "/api/v1/recordings", params={"queue": "q" * 500 + str(i)}, headers=auth(token)
                )
                statuses.add(response.status_code)
                if response.status_code != 200:
                    break
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "storage_full"
    finally:
        ctx.close()


def test_the_sqlite_catalog_is_private(ctx: ServiceContext, settings: Any, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("a file only on SQLite")
    ctx.users.create_user(ADMIN, "carol", "compliance_officer")
    catalog = settings.data_dir / "catalog.sqlite3"
    for path in (catalog, catalog.with_name("catalog.sqlite3-wal")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    # A catalog left readable by an older version is tightened at the next start.
    os.chmod(catalog, 0o644)
    open_context(settings).close()
    assert stat.S_IMODE(os.stat(catalog).st_mode) == 0o600
