"""Logins, passwords and tokens through the API: throttling, policy, one-time admin password,
token lifetime, disabled users, and the access trail of every refusal."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.services.context import ServiceContext, open_context
from tests.api.conftest import auth
from tests.conftest import make_settings
from tests.support.people import ADMIN, Staff, create_staff, password_of

LOGIN = "/api/v1/auth/token"


@pytest.fixture
def strict_ctx(data_dir: Path, database_url: str) -> Iterator[ServiceContext]:
    """Three failures lock a username; five lock an address; tokens live at most 48 hours."""
    context = open_context(
        make_settings(
            data_dir,
            database_url,
            sip_port="0",
            http_port="0",
            login_max_failures="3",
            login_max_address_failures="5",
            login_lockout_seconds="600",
            token_max_lifetime_hours="48",
        )
    )
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def strict(strict_ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(strict_ctx)) as client:
        yield client


def trail(ctx: ServiceContext, action: str | None = None) -> list[tuple[str | None, str, str, str | None]]:
    events = ctx.access_log.list(ADMIN, limit=1000)
    return [
        (e.username, e.action, e.outcome, e.detail)
        for e in reversed(events)
        if action is None or e.action == action
    ]


def test_failed_logins_lock_the_username_with_429_and_are_audited(
    strict: TestClient, strict_ctx: ServiceContext
) -> None:
    create_staff(strict_ctx)
    for _ in range(3):
        bad = strict.post(LOGIN, data={"username": "alice", "password": "wrong-guess-123"})
        assert bad.status_code == 401
    locked = strict.post(LOGIN, data={"username": "alice", "password": password_of("alice")})
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "too_many_attempts"
    assert 590 <= int(locked.headers["retry-after"]) <= 600
    # Another user from the same address is not locked by alice's lock-out (3 < 5 failures).
    assert strict.post(LOGIN, data={"username": "bob", "password": password_of("bob")}).status_code == 200
    logins = trail(strict_ctx, "login")
    assert [o for u, _, o, _ in logins if u == "alice"] == ["failed", "failed", "failed", "locked"]
    lockouts = trail(strict_ctx, "login_lockout")
    assert lockouts == [
        ("alice", "login_lockout", "locked", "username locked for 600 s after 3 failed logins")
    ]
    # No password, right or wrong, is in any event.
    for event in trail(strict_ctx):
        assert "wrong-guess" not in str(event) and password_of("alice") not in str(event)


def test_unknown_usernames_lock_out_the_same_way(strict: TestClient, strict_ctx: ServiceContext) -> None:
    answers = [
        strict.post(LOGIN, json={"username": "nobody", "password": "guess-number-x"}).status_code
        for _ in range(4)
    ]
    assert answers == [401, 401, 401, 429]
    assert [o for u, _, o, _ in trail(strict_ctx, "login") if u == "nobody"] == [
        "failed",
        "failed",
        "failed",
        "locked",
    ]


def test_an_address_spraying_many_usernames_is_locked(strict: TestClient, strict_ctx: ServiceContext) -> None:
    create_staff(strict_ctx)
    for name in ("u1", "u2", "u3", "u4", "u5"):
        assert strict.post(LOGIN, data={"username": name, "password": "spray-password-1"}).status_code == 401
    # Right password, fresh username, same address: still refused while the address is locked.
    response = strict.post(LOGIN, data={"username": "carol", "password": password_of("carol")})
    assert response.status_code == 429
    assert any("client address locked" in (d or "") for *_, d in trail(strict_ctx, "login_lockout"))


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-one", "at least 12 characters"),
        ("password1234", "too weak"),
        ("qwertyuiop123", "too weak"),
        ("aaaaaaaaaaaaaaaa", "too weak"),
        ("x" * 1025, "at most 1024"),
    ],
)
def test_weak_short_and_common_passwords_are_refused(
    client: TestClient, ctx: ServiceContext, password: str, reason: str
) -> None:
    from callvault.errors import InvalidInput

    with pytest.raises(InvalidInput, match=reason):
        ctx.users.create_user(ADMIN, "weakling", "agent", password=password)
    ctx.users.create_user(ADMIN, "dora", "agent", password="dora-first-passphrase")
    token = client.post(LOGIN, data={"username": "dora", "password": "dora-first-passphrase"}).json()
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "dora-first-passphrase", "new_password": password},
        headers=auth(token["access_token"]),
    )
    assert response.status_code == 400, response.text
    assert reason in response.json()["detail"]
    assert password not in response.text


def test_first_start_admin_must_change_the_one_time_password(client: TestClient, ctx: ServiceContext) -> None:
    one_time = ctx.users.ensure_initial_admin()
    assert one_time
    login = client.post(LOGIN, data={"username": "admin", "password": one_time})
    assert login.status_code == 200
    assert login.json()["password_change_required"] is True
    token = login.json()["access_token"]
    for method, path in (
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/recordings"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/tokens"),
    ):
        refused = client.request(method, path, headers=auth(token), json={})
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"] == "password_change_required"
    wrong = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-the-one-time", "new_password": "admin-chosen-passphrase"},
        headers=auth(token),
    )
    assert wrong.status_code == 401
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": one_time, "new_password": "admin-chosen-passphrase"},
        headers=auth(token),
    )
    assert changed.status_code == 204, changed.text
    assert client.get("/api/v1/me", headers=auth(token)).json()["role"] == "admin"
    assert client.post(LOGIN, data={"username": "admin", "password": one_time}).status_code == 401
    again = client.post(LOGIN, data={"username": "admin", "password": "admin-chosen-passphrase"})
    assert again.status_code == 200 and "password_change_required" not in again.json()
    assert ("admin", "password_change", "ok", None) in trail(ctx)
    assert ("admin", "refused", "forbidden", "GET /api/v1/me: password_change_required") in trail(ctx)


@pytest.mark.parametrize(
    "fields",
    [
        {"username": "", "password": "something-long"},
        {"username": "alice", "password": ""},
        {"username": "a" * 1_000_000, "password": "something-long"},
        {"username": "alice", "password": "p" * 1_000_000},
        {"username": "alice"},
        {},
    ],
    ids=["empty-user", "empty-password", "1MB-user", "1MB-password", "no-password", "nothing"],
)
@pytest.mark.parametrize("encoding", ["form", "json", "multipart"])
def test_odd_login_fields_answer_4xx_never_500(
    client: TestClient, fields: dict[str, str], encoding: str
) -> None:
    if encoding == "form":
        response = client.post(LOGIN, data=fields)
    elif encoding == "json":
        response = client.post(LOGIN, json=fields)
    else:
        response = client.post(LOGIN, files={k: (None, v) for k, v in fields.items()} or {"x": (None, "")})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"] in {"invalid_input", "payload_too_large", "http_error"}


def test_odd_login_bodies(client: TestClient) -> None:
    for body, content_type in (
        (b"[1, 2]", "application/json"),
        (b"{not json", "application/json"),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded"),
    ):
        response = client.post(LOGIN, content=body, headers={"content-type": content_type})
        assert response.status_code == 400, body


def test_no_part_of_a_password_reaches_the_log(
    client: TestClient, staff: Staff, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Zebra-Quartz-Mango-7781"
    caplog.set_level(logging.DEBUG)
    client.post(LOGIN, data={"username": "alice", "password": secret})
    client.post(LOGIN, json={"username": "alice", "password": secret + "x" * 2000})
    client.post(LOGIN, json={"username": secret, "password": ""})
    token = client.post(LOGIN, data={"username": "alice", "password": password_of("alice")}).json()
    client.post(
        "/api/v1/auth/password",
        json={"current_password": secret, "new_password": secret},
        headers=auth(token["access_token"]),
    )
    client.post(
        "/api/v1/auth/password",
        json={"current_password": password_of("alice"), "new_password": "Zebra12345678"},
        headers=auth(token["access_token"]),
    )
    assert caplog.records, "the failed logins should have been logged"
    for fragment in (secret[:8], secret[-8:], "Zebra1234", password_of("alice")):
        assert fragment not in caplog.text


def test_token_lifetime_is_clamped_to_the_maximum(strict: TestClient, strict_ctx: ServiceContext) -> None:
    staff = create_staff(strict_ctx)
    before = datetime.now(UTC)
    response = strict.post(
        "/api/v1/tokens", json={"name": "long", "ttl_hours": 24 * 300}, headers=auth(staff.tokens["alice"])
    )
    assert response.status_code == 201
    expires = datetime.fromisoformat(response.json()["expires_at"])
    assert before + timedelta(hours=47.9) < expires <= datetime.now(UTC) + timedelta(hours=48)
    # Tokens the admin makes (CLI: admin create-token) are capped the same way, default included.
    issued = strict_ctx.users.issue_token(ADMIN, "bob", "cli")
    assert issued.expires_at <= datetime.now(UTC) + timedelta(hours=48)
    listed = strict_ctx.users.list_tokens(ADMIN, "bob")
    assert all(t.expires_at <= datetime.now(UTC) + timedelta(hours=48) for t in listed)


def test_a_token_past_the_maximum_stops_working(
    ctx: ServiceContext, data_dir: Path, database_url: str
) -> None:
    """Lowering the maximum shortens tokens already issued."""
    staff = create_staff(ctx)
    shorter = open_context(make_settings(data_dir, database_url, token_max_lifetime_hours="1"))
    try:
        assert shorter.users.authenticate_token(staff.tokens["alice"]).username == "alice"
        from callvault.db.models import ApiToken

        with shorter.catalog.write() as session:
            for row in session.query(ApiToken).all():
                row.created_at = datetime.now(UTC) - timedelta(hours=2)
        from callvault.errors import AuthenticationFailed

        with pytest.raises(AuthenticationFailed):
            shorter.users.authenticate_token(staff.tokens["alice"])
        assert ctx.users.authenticate_token(staff.tokens["alice"]).username == "alice"
    finally:
        shorter.close()


def test_disabled_users_tokens_stop_working_and_tokens_are_listed_and_revoked(
    client: TestClient, staff: Staff, ctx: ServiceContext
) -> None:
    admin = ctx.users.create_user(ADMIN, "root", "admin", password="root-admin-passphrase")
    admin_token = ctx.users.create_token(ADMIN, admin.username, "ops")
    second = client.post("/api/v1/tokens", json={"name": "softphone"}, headers=auth(staff.tokens["alice"]))
    assert second.status_code == 201
    listed = client.get("/api/v1/users/alice/tokens", headers=auth(admin_token))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert [t["name"] for t in items] == ["softphone", "test"]
    assert all(t["active"] and "token" not in t for t in items)
    # Alice sees her own tokens, not bob's.
    assert client.get("/api/v1/users/alice/tokens", headers=auth(staff.tokens["alice"])).status_code == 200
    assert client.get("/api/v1/users/bob/tokens", headers=auth(staff.tokens["alice"])).status_code == 403
    revoked = client.delete(f"/api/v1/users/alice/tokens/{items[0]['id']}", headers=auth(admin_token))
    assert revoked.status_code == 204
    assert client.get("/api/v1/me", headers=auth(second.json()["token"])).status_code == 401
    assert client.get("/api/v1/me", headers=auth(staff.tokens["alice"])).status_code == 200
    assert client.delete("/api/v1/users/bob/tokens/999999", headers=auth(admin_token)).status_code == 404
    assert client.delete(f"/api/v1/users/bob/tokens/{10**30}", headers=auth(admin_token)).status_code == 400

    assert client.post("/api/v1/users/alice/disable", headers=auth(staff.tokens["carol"])).status_code == 403
    assert client.post("/api/v1/users/alice/disable", headers=auth(admin_token)).status_code == 204
    assert client.get("/api/v1/me", headers=auth(staff.tokens["alice"])).status_code == 401
    assert client.post(LOGIN, data={"username": "alice", "password": password_of("alice")}).status_code == 401
    users = {u["username"]: u for u in client.get("/api/v1/users", headers=auth(admin_token)).json()["items"]}
    assert users["alice"]["disabled"] is True and users["bob"]["disabled"] is False
    assert client.post("/api/v1/users/root/disable", headers=auth(admin_token)).status_code == 409
    assert client.post("/api/v1/users/alice/enable", headers=auth(admin_token)).status_code == 204
    assert client.get("/api/v1/me", headers=auth(staff.tokens["alice"])).status_code == 200
    actions = [(u, a, d) for u, a, _, d in trail(ctx)]
    assert ("root", "user_disable", "user=alice") in actions
    assert ("root", "token_revoke", f"user=alice token={items[0]['id']}") in actions
