"""Under HTTPS the session cookie is also Secure (the app as `callvault serve` builds it, in process)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from callvault.services.context import ServiceContext
from callvault.web.app import create_app
from tests.support.people import create_staff, password_of


def test_the_session_cookie_is_secure_over_https(ctx: ServiceContext) -> None:
    create_staff(ctx)
    client = TestClient(
        create_app(ctx), base_url="https://callvault.example", headers={"Accept": "text/html"}
    )
    login = client.get("/login")
    assert "secure" in login.headers["set-cookie"].lower()  # the sign-in form's CSRF cookie too
    csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"username": "sam", "password": password_of("sam"), "csrf": csrf.group(1)},
        headers={"Origin": "https://callvault.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "callvault_session=" in cookie and "secure" in cookie and "httponly" in cookie
    assert answer.headers["strict-transport-security"].startswith("max-age=")
