"""The live page's packet loss per stream and recorder health, updated in place without reload."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, expect

from callvault.web.pages_live import HEALTH_EVERY
from tests.support.web_server import WebServer, conversation
from tests.web.conftest import assert_accessible, screenshot, sign_in

SKIPPED = 10  # sequence numbers the customer's stream jumps over: packets lost on the way


def test_the_live_page_shows_each_streams_packet_loss_and_the_recorders_health(
    web: WebServer, context: BrowserContext
) -> None:
    page = sign_in(context, "sam")
    page.goto("/live")
    health = page.locator("#health")
    expect(health.locator("[data-transport=udp]")).to_contain_text(f"listening on {web.sip_port}")
    expect(health.locator("[data-transport=tcp]")).to_contain_text(f"listening on {web.sip_port}")
    expect(health.locator("[data-transport=tls]")).to_contain_text("not configured")
    expect(health.locator("dd[data-key=finalise_backlog]")).to_have_text("0")
    expect(health.locator("dd[data-key=open_calls]")).to_have_text("0")
    live = web.open_call()
    try:
        recording_id = web.recording_of(live)
        row = page.locator(f"#live-calls tbody tr[data-recording='{recording_id}']")
        live.send(*conversation(1.0))
        ssrc, seq, ts = live._sequence["customer"]
        live._sequence["customer"] = (ssrc, seq + SKIPPED, ts + 160 * SKIPPED)
        live.send(*conversation(1.0))
        frames = 2 * 50  # two seconds of 20 ms packets per stream
        customer = row.locator("[data-stream=customer]")
        expect(customer).to_have_attribute("data-received", str(frames))
        expect(customer).to_have_attribute("data-expected", str(frames + SKIPPED))
        expect(customer).to_have_attribute("data-lost", str(SKIPPED))
        expect(customer).to_contain_text(f"{SKIPPED} of {frames + SKIPPED} lost")
        expect(row.locator("[data-stream=agent]")).to_have_attribute("data-lost", "0")
        # The health part follows the event stream too (every few seconds): the open call
        # shows without a reload. The call goes on meanwhile, or the recorder's RTP timeout ends it.
        open_calls = health.locator("dd[data-key=open_calls]")
        for _ in range(3 * HEALTH_EVERY):
            if open_calls.inner_text() == "1":
                break
            live.send(*conversation(1.0))
        expect(open_calls).to_have_text("1")
        assert_accessible(page)
        screenshot(page, "live-loss")
    finally:
        live.hang_up()
    expect(row).to_have_count(0)
    web.sealed(live)
    expect(open_calls).to_have_text("0", timeout=3_000 * HEALTH_EVERY)
    expect(health.locator("dd[data-key=finalise_backlog]")).to_have_text("0")
