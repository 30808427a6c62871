"""The web UI's journeys in a real browser, against a server holding calls recorded through SIPREC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from callvault.db.models import AccessEvent
from tests.support.web_server import WebServer
from tests.web.conftest import assert_accessible, screenshot, sign_in


@pytest.fixture(scope="module")
def call_id(web: WebServer) -> Iterator[str]:
    """One call of alice's with +1 415 555 0199, recorded by the test SRC."""
    yield web.call(4.0)


def _events(web: WebServer, action: str, username: str) -> list[AccessEvent]:
    with web.running.ctx.catalog.read() as session:
        rows = session.query(AccessEvent).filter_by(action=action, username=username).all()
        session.expunge_all()
        return rows


def test_wrong_password_shows_an_error_and_is_audited(web: WebServer, context: BrowserContext) -> None:
    page = sign_in(context, "quinn", "not-the-password")
    expect(page.locator("#login-error")).to_contain_text("Wrong username or password")
    assert page.url.endswith("/login")
    assert [e.outcome for e in _events(web, "login", "quinn")] == ["failed"]
    assert_accessible(page)
    screenshot(page, "sign-in-error")


def test_search_finds_the_call_by_a_differently_written_number(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "sam")
    expect(page).to_have_url(f"{web.url}/recordings")
    page.fill("#f-customer", "(415) 555-0199")
    page.click("form[role=search] button[type=submit]")
    expect(page).to_have_url(f"{web.url}/recordings?" + page.url.split("?", 1)[1])
    assert "customer=%28415%29+555-0199" in page.url  # the URL holds the query: bookmarkable
    rows = page.locator("table.results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+14155550199")
    expect(rows.first.locator("a")).to_have_attribute("href", f"/recordings/{call_id}")
    assert_accessible(page)
    screenshot(page, "search")
    page.fill("#f-customer", "+1 415 555 0000")
    page.click("form[role=search] button[type=submit]")
    expect(page.locator("#no-results")).to_contain_text("No recordings match")
