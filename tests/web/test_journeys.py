"""The web UI's journeys in a real browser, against a server holding calls recorded through SIPREC."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from callvault.db.models import AccessEvent
from tests.support.processes import wait_for
from tests.support.web_server import WebServer, conversation
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


def _lane_playhead(page: Page, lane: str) -> float:
    return float(page.locator(f"#lane-{lane}").get_attribute("data-playhead") or 0)


def test_recording_plays_on_both_lanes_and_seeks_by_clicking_the_customer_lane(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    expect(page.locator("#player")).to_have_attribute("data-peaks-loaded", "true")
    page.click("#play")
    # Polled from here: the page's policy forbids the eval that wait_for_function needs.
    wait_for(
        lambda: page.evaluate("() => document.getElementById('audio').currentTime") > 0.5, 20, "playback"
    )
    wait_for(
        lambda: _lane_playhead(page, "agent") > 0.5 and _lane_playhead(page, "customer") > 0.5,
        10,
        "the playhead to move on both lanes",
    )
    assert _lane_playhead(page, "agent") > 0.5 and _lane_playhead(page, "customer") > 0.5
    page.click("#play")  # pause
    expect(page.locator("#play")).to_have_text("Play")
    box = page.locator("#lane-customer").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] / 2)
    duration = page.evaluate("document.getElementById('audio').duration")
    at = page.evaluate("document.getElementById('audio').currentTime")
    assert abs(at - 0.75 * duration) < 0.25, (at, duration)
    expect(page.locator("#lane-agent")).to_have_attribute("data-playhead", f"{at:.3f}")
    expect(page.locator("#download")).to_be_visible()  # a supervisor may download
    assert_accessible(page)
    screenshot(page, "recording")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "recording-tablet")
    assert [e.recording_id for e in _events(web, "view", "sam")].count(call_id) >= 1
    assert call_id in [e.recording_id for e in _events(web, "play", "sam")]


def test_a_comment_at_a_moment_is_there_after_reload_and_jumps_there(
    context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    page.fill("#comment-at", "0:02")
    page.fill("#comment-body", "Customer asks for the manager here")
    page.click("#comment-form button[type=submit]")
    item = page.locator("#comment-list li", has_text="Customer asks for the manager here")
    expect(item).to_have_count(1)  # saved (the reload must not cut the post short)
    page.reload()
    expect(item).to_have_count(1)
    expect(item).to_contain_text("sam")
    item.locator("button.at").click()
    assert abs(page.evaluate("() => document.getElementById('audio').currentTime") - 2.0) < 0.05
    expect(page.locator("#timeline .mark-comment")).to_have_count(1)


def test_an_agent_cannot_open_a_colleagues_call_and_has_no_download(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "dana")  # alice's teammate, also an agent
    response = page.goto(f"/recordings/{call_id}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    assert ("not_found", call_id) in [(e.outcome, e.recording_id) for e in _events(web, "view", "dana")]
    page.goto("/recordings")
    expect(page.locator("#no-results")).to_be_visible()
    owner = sign_in(context.browser.new_context(base_url=web.url), "alice")  # type: ignore[union-attr]
    owner.goto(f"/recordings/{call_id}")
    expect(owner.locator("#play")).to_be_visible()
    expect(owner.locator("#download")).to_have_count(0)
    owner.context.close()


def test_an_auditor_sees_the_playback_in_the_audit_trail(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    player = context.browser.new_context(base_url=web.url)  # type: ignore[union-attr]
    listener = sign_in(player, "carol")
    listener.goto(f"/recordings/{call_id}")
    listener.click("#play")
    wait_for(lambda: call_id in [e.recording_id for e in _events(web, "play", "carol")], 20, "carol's play")
    player.close()
    page = sign_in(context, "audrey")
    page.goto(f"/audit?recording_id={call_id}")
    plays = page.locator("#audit-events tbody tr", has_text="play")
    expect(plays.filter(has_text="carol").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "audit")
    page.goto(f"/recordings/{call_id}")
    expect(page.locator("#player")).to_have_count(0)  # auditors see metadata, never audio


def test_the_live_page_shows_a_call_in_progress_and_drops_it_after_bye(
    web: WebServer, context: BrowserContext
) -> None:
    page = sign_in(context, "sam")
    page.goto("/live")
    live = web.open_call()
    try:
        recording_id = web.recording_of(live)
        row = page.locator(f"#live-calls tbody tr[data-recording='{recording_id}']")
        live.send(*conversation(1.0))
        expect(row).to_contain_text("alice")
        expect(row).to_contain_text("+14155550199")
        assert_accessible(page)
        screenshot(page, "live")
    finally:
        live.hang_up()
    expect(row).to_have_count(0)
    expect(page.locator("#no-live")).to_be_visible()
