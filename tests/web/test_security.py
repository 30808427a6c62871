"""The web UI's session, CSRF, headers and hostile input, over HTTP against a real `callvault serve`
(and the admin pages in the browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import select, update

from callvault.db.models import AccessEvent, ApiToken
from callvault.db.web_models import RecordingComment, RecordingPeaks
from callvault.services.web_sessions import SESSION_NAME
from tests.support.people import password_of
from tests.support.processes import wait_for
from tests.support.web_server import WebServer
from tests.web.conftest import assert_accessible, screenshot, sign_in

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def call_id(web: WebServer) -> str:
    return web.call(2.0)


def _client(web: WebServer) -> httpx.Client:
    return httpx.Client(base_url=web.url, headers=HTML, timeout=30)


def _login_csrf(client: httpx.Client) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match is not None
    return match.group(1)


@contextmanager
def _signed_in(web: WebServer, username: str) -> Iterator[httpx.Client]:
    with _client(web) as client:
        csrf = _login_csrf(client)
        answer = client.post(
            "/login", data={"username": username, "password": password_of(username), "csrf": csrf}
        )
        assert answer.status_code == 303, answer.text
        yield client


def _page_csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def _audit(web: WebServer, action: str, username: str) -> list[AccessEvent]:
    with web.running.ctx.catalog.read() as session:
        rows = list(
            session.scalars(
                select(AccessEvent).where(AccessEvent.action == action, AccessEvent.username == username)
            )
        )
        session.expunge_all()
        return rows


def test_the_session_cookie_is_http_only_and_same_site(web: WebServer) -> None:
    with _client(web) as client:
        csrf = _login_csrf(client)
        answer = client.post("/login", data={"username": "sam", "password": password_of("sam"), "csrf": csrf})
        cookie = answer.headers["set-cookie"].lower()
        assert answer.status_code == 303 and answer.headers["location"] == "/recordings"
        assert "callvault_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "secure" not in cookie  # plain HTTP here; Secure whenever callvault speaks HTTPS
        page = client.get("/recordings")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["x-frame-options"] == "DENY"


def test_forms_without_the_csrf_token_or_from_another_origin_change_nothing(
    web: WebServer, call_id: str
) -> None:
    with _signed_in(web, "sam") as client:
        csrf = _page_csrf(client, f"/recordings/{call_id}")
        for data, headers in (
            ({"at": "0:01", "body": "forged"}, {}),
            ({"at": "0:01", "body": "forged", "csrf": "0" * 64}, {}),
            ({"at": "0:01", "body": "forged", "csrf": csrf}, {"Origin": "http://evil.example"}),
        ):
            answer = client.post(f"/recordings/{call_id}/comments", data=data, headers=headers)
            assert answer.status_code == 403, answer.text
        assert client.post("/login", data={"username": "sam", "password": "x"}).status_code == 403
        with web.running.ctx.catalog.read() as session:
            assert session.scalar(select(RecordingComment).where(RecordingComment.body == "forged")) is None
        hostile = '<img src=x onerror="alert(1)">'
        answer = client.post(
            f"/recordings/{call_id}/comments", data={"at": "0:01", "body": hostile, "csrf": csrf}
        )
        assert answer.status_code == 303
        page = client.get(f"/recordings/{call_id}").text
        assert hostile not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_sign_in_never_redirects_off_site(web: WebServer) -> None:
    with _client(web) as client:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            csrf = _login_csrf(client)
            answer = client.post(
                "/login",
                data={"username": "sam", "password": password_of("sam"), "csrf": csrf, "next": target},
            )
            assert answer.headers["location"] == "/recordings", target
        answer = client.get("/recordings?tag=vip")
        assert answer.status_code == 200
    with _client(web) as client:
        answer = client.get("/recordings?tag=vip")
        assert (
            answer.status_code == 303
            and answer.headers["location"] == "/login?next=%2Frecordings%3Ftag%3Dvip"
        )


def test_repeated_failures_lock_the_username_out_and_are_audited(web: WebServer) -> None:
    with _client(web) as client:
        csrf = _login_csrf(client)
        statuses = [
            client.post("/login", data={"username": "bob", "password": "wrong", "csrf": csrf}).status_code
            for _ in range(6)
        ]
        assert statuses == [401] * 5 + [429]
        locked = client.post("/login", data={"username": "bob", "password": password_of("bob"), "csrf": csrf})
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert _audit(web, "login_lockout", "bob")
    assert [e.outcome for e in _audit(web, "login", "bob")].count("failed") == 5


def test_an_idle_session_ends_and_sign_out_revokes_it(web: WebServer) -> None:
    with _signed_in(web, "quinn") as client:
        idle = datetime.now(UTC) - timedelta(minutes=web.running.settings.web_idle_minutes + 1)
        with web.running.ctx.catalog.write() as session:
            session.execute(update(ApiToken).where(ApiToken.name == SESSION_NAME).values(last_used_at=idle))
        answer = client.get("/recordings")
        assert answer.status_code == 303 and "reason=expired" in answer.headers["location"]
    assert _audit(web, "session_expired", "quinn")
    with _signed_in(web, "carol") as client:
        cookie = client.cookies["callvault_session"]
        assert client.post("/logout", data={"csrf": _page_csrf(client, "/recordings")}).status_code == 303
    with _client(web) as stale:
        stale.cookies.set("callvault_session", cookie)
        assert stale.get("/recordings").status_code == 303
    assert _audit(web, "logout", "carol")


def test_an_api_token_is_not_a_session(web: WebServer) -> None:
    token = web.running.ctx.users.create_token(
        web.running.ctx.users.authenticate_password("ada", password_of("ada")), "ada", "api"
    )
    with _client(web) as client:
        client.cookies.set("callvault_session", token)
        assert client.get("/recordings").status_code == 303


@pytest.mark.parametrize(
    "path",
    [
        "/recordings?from=yesterday",
        "/recordings?min_duration=-1",
        "/recordings?offset=99999999999999999999",
        "/recordings?direction=sideways",
        "/recordings?customer=%3Cscript%3E",
        "/recordings?limit=0",
    ],
)
def test_hostile_search_input_gets_a_message_not_a_failure(web: WebServer, path: str) -> None:
    with _signed_in(web, "sam") as client:
        answer = client.get(path)
        assert answer.status_code == 400
        assert 'id="search-error"' in answer.text and "<script>" not in answer.text


def test_hostile_comments_and_peaks_requests_are_refused(web: WebServer, call_id: str) -> None:
    with _signed_in(web, "sam") as client:
        csrf = _page_csrf(client, f"/recordings/{call_id}")
        for data in (
            {"at": "1:00:00", "body": "late"},
            {"at": "abc", "body": "x"},
            {"at": "0:01", "body": "x" * 2001},
        ):
            answer = client.post(f"/recordings/{call_id}/comments", data={**data, "csrf": csrf})
            assert answer.status_code == 303 and "comment_error=" in answer.headers["location"]
        assert client.get(f"/recordings/{call_id}/peaks?points=0").status_code == 400
        assert client.get("/recordings/%3Cscript%3E").status_code == 404
        big = client.post(
            f"/recordings/{call_id}/comments",
            content=b"a=" + b"x" * 100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413
    with _client(web) as anonymous:
        assert (
            anonymous.get(f"/recordings/{call_id}/peaks", headers={"Accept": "application/json"}).status_code
            == 401
        )


def test_comments_and_peaks_through_the_api(web: WebServer, call_id: str) -> None:
    users = web.running.ctx.users
    base = f"{web.url}/api/v1/recordings/{call_id}"

    def cached() -> bool:  # computed when the call was sealed, before anybody asked
        with web.running.ctx.catalog.read() as session:
            return session.get(RecordingPeaks, call_id) is not None

    wait_for(cached, 30, "the peaks computed at sealing")

    def bearer(name: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {users.create_token(users.authenticate_password(name, password_of(name)), name, 'api')}"
        }

    added = httpx.post(
        f"{base}/comments", json={"offset_seconds": 1.5, "body": "from the API"}, headers=bearer("carol")
    )
    assert added.status_code == 201 and added.json()["author"] == "carol"
    listed = httpx.get(f"{base}/comments", headers=bearer("sam")).json()["items"]
    assert ("from the API", 1.5) in [(c["body"], c["offset_seconds"]) for c in listed]
    peaks = httpx.get(f"{base}/peaks?points=500", headers=bearer("sam")).json()
    # Fewer points asked than buckets there are: one per 50 ms bucket of the ~2 s call.
    assert len(peaks["lanes"]) == 2 and abs(len(peaks["lanes"][0]) * 0.05 - peaks["duration"]) < 0.06
    assert max(peaks["lanes"][0]) > 150 and max(peaks["lanes"][1]) > 150
    assert httpx.get(f"{base}/comments", headers=bearer("dana")).status_code == 404
    assert httpx.get(f"{base}/peaks", headers=bearer("audrey")).status_code == 403
    refused = httpx.post(
        f"{base}/comments", json={"offset_seconds": -1, "body": "x"}, headers=bearer("carol")
    )
    assert refused.status_code == 400


def test_an_admin_creates_a_user_and_issues_and_revokes_a_token(
    web: WebServer, context: BrowserContext
) -> None:
    page = sign_in(context, "ada")
    page.goto("/admin")
    page.fill("#n-username", "erin")
    page.select_option("#n-role", "agent")
    page.fill("#n-team", "blue")
    page.fill("#n-sip", "sip:1009@pbx.example")
    page.click("button[value=create_user]")
    expect(page.locator("#admin-notice")).to_have_text("User erin created.")
    expect(page.locator("#user-table tr", has_text="erin")).to_contain_text("1009@pbx.example")
    page.locator("#user-table tr", has_text="erin").get_by_role("link", name="Tokens of erin").click()
    page.click("button[value=issue_token]")
    token = page.locator("#issued-token").input_value()
    assert web.running.ctx.users.authenticate_token(token).username == "erin"
    assert_accessible(page)
    screenshot(page, "admin")
    page.locator("#tokens button[value=revoke_token]").first.click()
    expect(page.locator("#admin-notice")).to_contain_text("revoked")
    with httpx.Client(base_url=web.url) as api:
        assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    page = sign_in(context, "sam")
    assert page.goto("/admin").status == 403  # type: ignore[union-attr]
