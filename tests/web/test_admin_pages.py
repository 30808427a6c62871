"""Admin pages in the browser: editing a user's role, team and SIP identities; key rotation
asked first; the system health page with its on-demand checks. Every form is CSRF-checked and
every change audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from playwright.sync_api import BrowserContext, expect
from sqlalchemy import select

from callvault.db.models import AccessEvent
from tests.support.people import ADMIN, password_of
from tests.support.web_server import WebServer
from tests.web.conftest import assert_accessible, screenshot, sign_in

HTML = {"Accept": "text/html"}


def _audit(web: WebServer, action: str) -> list[AccessEvent]:
    with web.running.ctx.catalog.read() as session:
        rows = list(session.scalars(select(AccessEvent).where(AccessEvent.action == action)))
        session.expunge_all()
        return rows


@contextmanager
def _signed_in(web: WebServer, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=web.url, headers=HTML, timeout=30) as client:
        answer = client.post(
            "/login",
            data={"username": username, "password": password_of(username), "csrf": _csrf(client, "/login")},
        )
        assert answer.status_code == 303, answer.text
        yield client


def _csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match is not None
    return match.group(1)


def _user(web: WebServer, username: str) -> tuple[str, str | None, list[str]]:
    found = [u for u in web.running.ctx.users.list_users(ADMIN) if u.username == username]
    return found[0].role, found[0].team, found[0].sip_identities


def test_an_admin_edits_a_users_role_team_and_sip_identities(web: WebServer, context: BrowserContext) -> None:
    ctx = web.running.ctx
    ctx.users.create_user(ADMIN, "gina", "agent", team="red", sip_identities=["sip:2001@pbx.example"])
    assert (
        ctx.directory.agent_for("sip:2001@pbx.example") is not None
    )  # cached by the directory before the change
    page = sign_in(context, "ada")
    page.goto("/admin")
    page.locator("#user-table tr", has_text="gina").get_by_role("link", name="Edit gina").click()
    expect(page.locator("h1")).to_have_text("User gina")
    assert_accessible(page)
    screenshot(page, "admin-user")
    page.select_option("#e-role", "supervisor")
    page.fill("#e-team", "green")
    page.fill("#e-sip", "sip:2002@pbx.example\n+1 415 555 0202")
    page.click("#user-edit button[type=submit]")
    expect(page.locator("#admin-notice")).to_have_text("User gina saved.")
    row = page.locator("#user-table tr", has_text="gina")
    expect(row).to_contain_text("supervisor")
    expect(row).to_contain_text("green")
    expect(row).to_contain_text("2002@pbx.example")
    role, team, identities = _user(web, "gina")
    assert (role, team, len(identities)) == ("supervisor", "green", 2)
    # The directory forgot the identity that moved: calls from 2001 are no longer gina's.
    assert ctx.directory.agent_for("sip:2001@pbx.example") is None
    assert ctx.directory.agent_for("sip:2002@pbx.example") is not None
    [entry] = [e for e in _audit(web, "user_update") if "user=gina" in (e.detail or "")]
    assert entry.username == "ada" and "role=agent->supervisor" in (entry.detail or "")
    assert "team=red->green" in (entry.detail or "")
    # Another user's identity is refused, and nothing of the change is kept.
    page.locator("#user-table tr", has_text="gina").get_by_role("link", name="Edit gina").click()
    page.select_option("#e-role", "agent")
    page.fill("#e-sip", "sip:1001@pbx.example")  # alice's
    page.click("#user-edit button[type=submit]")
    expect(page.locator("#admin-notice")).to_contain_text("already belongs to another user")
    assert _user(web, "gina")[0] == "supervisor"


def test_user_edits_need_the_csrf_token_and_an_admin(web: WebServer) -> None:
    with _signed_in(web, "ada") as client:
        csrf = _csrf(client, "/admin/users/dana")
        data = {"role": "admin", "team": "red", "sip_identities": "sip:1003@pbx.example"}
        assert client.post("/admin/users/dana", data=data).status_code == 403
        forged = {**data, "csrf": csrf}
        answer = client.post("/admin/users/dana", data=forged, headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403
        assert client.post("/admin/users/nobody", data=forged).status_code == 404
    assert _user(web, "dana")[0] == "agent"
    with _signed_in(web, "sam") as client:
        assert client.get("/admin/users/dana").status_code == 403
        assert client.get("/admin/health").status_code == 403
        assert client.get("/admin/keys/rotate").status_code == 403


def test_key_rotation_is_asked_first_and_audited(web: WebServer, context: BrowserContext) -> None:
    keys = web.running.ctx.keys
    before = keys.current_kek_id()
    with _signed_in(web, "ada") as client:
        csrf = _csrf(client, "/admin/keys/rotate")
        refused = client.post("/admin/keys/rotate", data={"csrf": csrf})
        assert refused.status_code == 400 and "nothing was changed" in refused.text
        assert client.post("/admin/keys/rotate", data={"confirm": "rotate"}).status_code == 403
    assert keys.current_kek_id() == before and not _audit(web, "keys_rotate")
    page = sign_in(context, "ada")
    page.goto("/admin")
    page.click("#rotate-keys")
    expect(page.locator("h2#confirm-h")).to_have_text("Are you sure?")
    assert_accessible(page)
    page.click("#rotate-confirm")
    expect(page.locator("#rotate-notice")).to_contain_text("data keys re-wrapped")
    assert keys.current_kek_id() != before
    assert [e.username for e in _audit(web, "keys_rotate")] == ["ada"]


def test_the_system_health_page_checks_everything_and_verifies_on_demand(
    web: WebServer, context: BrowserContext
) -> None:
    web.call(2.0)
    page = sign_in(context, "ada")
    page.goto("/admin")
    page.click("#health-details")
    expect(page.locator("#health-summary")).to_have_text("All checks pass.")
    expect(page.locator("dd[data-check=catalog]")).to_contain_text("reachable")
    expect(page.locator("dd[data-check=storage]")).to_have_text("yes")
    expect(page.locator("dd[data-transport=udp]")).to_have_text(f"listening on {web.sip_port}")
    expect(page.locator("dd[data-check=finalise_backlog]")).to_have_text("0")
    expect(page.locator("dd[data-check=render_workers]")).not_to_be_empty()
    expect(page.locator("dd[data-check=audit_entries]")).not_to_have_text("0")
    assert_accessible(page)
    screenshot(page, "admin-health")
    page.click("#check-audit")
    expect(page.locator("#audit-result")).to_contain_text("Audit chain intact")
    assert [e.outcome for e in _audit(web, "audit_verify")] == ["ok"]
    page.click("#check-integrity")
    expect(page.locator("#integrity-result")).to_contain_text("recordings checked, 0 failed")
    assert any(e.username == "ada" for e in _audit(web, "verify"))
    assert_accessible(page)
