"""Transcripts in the browser: search by what was said, jump to the moment, read the turns."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from callvault.services.access import Principal
from callvault.services.importer import ImportRequest
from callvault.speech.transcript import ChannelTranscript, Transcript
from tests.support.audio import stereo_wav, voice
from tests.support.processes import wait_for
from tests.support.transcripts import sentence, transcript, word_at
from tests.support.web_server import WebServer, serving, web_settings
from tests.web.conftest import assert_accessible, screenshot, sign_in

REFUND_AT = 1.6  # the customer's "I want a refund": "refund" is word 3


@pytest.fixture(scope="module")
def web(web_database_url: tuple[Path, str]) -> Iterator[WebServer]:
    """The server without automatic transcription: the test stores the transcript it knows."""
    data_dir, url = web_database_url
    with serving(dataclasses.replace(web_settings(data_dir, url), transcription_auto=False)) as server:
        yield server


@pytest.fixture(scope="module")
def call_id(web: WebServer) -> Iterator[str]:
    """alice's SIPREC call, its transcript stored as the transcription job does (and so indexed)."""
    recording = web.call(4.0)
    said = transcript(agent=[(0.2, "Hello how can I help")], customer=[(REFUND_AT, "I want a refund")])
    assert web.running.ctx.transcripts.store(recording, said, 3.0)
    yield recording


def _audio_time(page: Page) -> float:
    return float(page.evaluate("() => document.getElementById('audio').currentTime"))


def test_a_text_search_links_to_the_moment_and_the_transcript_seeks(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "sam")
    page.fill("#f-text", "refund")
    page.select_option("#f-speaker", "customer")
    page.click("form[role=search] button[type=submit]")
    assert "text=refund" in page.url and "speaker=customer" in page.url  # bookmarkable
    hit = page.locator("a.hit")
    expect(hit).to_have_count(1)
    start, _ = word_at(REFUND_AT, 3)
    expect(hit).to_have_attribute("href", f"/recordings/{call_id}#t={start:.2f}")
    expect(page.locator("ul.hits .snippet")).to_have_text("I want a refund")
    assert_accessible(page)
    screenshot(page, "search-transcript")
    hit.click()
    expect(page).to_have_url(f"{web.url}/recordings/{call_id}#t={start:.2f}")
    wait_for(lambda: abs(_audio_time(page) - start) < 0.05, 10, "the player to start at the hit")
    turns = page.locator("#turns li.turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text("Agent")
    expect(turns.nth(0)).to_contain_text("Hello how can I help")
    expect(turns.nth(1)).to_contain_text("I want a refund")
    expect(page.locator("#transcript-note")).not_to_contain_text("redacted")  # a supervisor reads originals
    expect(turns.nth(1)).to_have_class("turn turn-customer current")  # the turn being heard
    turns.nth(0).locator("button.at").click()
    assert abs(_audio_time(page) - 0.2) < 0.05
    expect(turns.nth(0)).to_have_class("turn turn-agent current")
    assert_accessible(page)
    screenshot(page, "recording-transcript")
    page.goto("/recordings?text=refund&speaker=agent")
    expect(page.locator("#no-results")).to_be_visible()


def test_only_those_who_may_hear_the_call_find_it_by_what_was_said(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    page = sign_in(context, "dana")  # alice's teammate, an agent: not her calls
    page.goto("/recordings?text=refund")
    expect(page.locator("#no-results")).to_be_visible()
    owner = sign_in(context.browser.new_context(base_url=web.url), "alice")  # type: ignore[union-attr]
    owner.goto("/recordings?text=%22want+a+refund%22")
    expect(owner.locator("a.hit")).to_have_count(1)
    owner.context.close()
    auditor = sign_in(context.browser.new_context(base_url=web.url), "audrey")  # type: ignore[union-attr]
    expect(auditor.locator("#f-text")).to_have_count(0)
    refused = auditor.goto("/recordings?text=refund")
    assert refused is not None and refused.status == 403
    expect(auditor.locator("main")).to_contain_text("needs a role that may read transcripts")
    auditor.goto(f"/recordings/{call_id}")
    expect(auditor.locator("#transcript")).to_have_count(0)  # content is for those who may listen
    auditor.context.close()
    page.goto("/recordings?text=" + "%22" * 3 + "NEAR(x")
    expect(page.locator("#no-results")).to_be_visible()


def test_the_recording_page_shows_the_calls_analytics(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    ctx = web.running.ctx
    said = ctx.transcripts.get(call_id)
    assert said is not None
    ctx.insights.analyse(call_id, said)  # what the analyse job does once the transcript is stored
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    section = page.locator("#analytics")
    expect(section).to_contain_text("Talk time")
    expect(section).to_contain_text("Longest monologue")
    expect(page.locator("#sentiment-agent")).to_have_text("positive (0.402)")  # "help"
    expect(page.locator("#categories")).to_have_text("Categories: none")
    assert_accessible(page)
    screenshot(page, "recording-analytics")


def test_a_channel_not_recognised_is_named_on_the_recording_page(
    web: WebServer, context: BrowserContext
) -> None:
    ctx = web.running.ctx
    wav = stereo_wav(voice(3, 8000, 120, 1), voice(3, 8000, 200, 2), 8000)
    rid = ctx.importer.import_bytes(Principal.system(), wav, ImportRequest(agent="alice"))
    reason = (
        "speech not recognised as English (en): 12.2 s of speech, the recogniser's mean log-probability -2.12"
    )
    said = Transcript(
        (
            ChannelTranscript("agent", (sentence(0.2, "Hello how can I help"),)),
            ChannelTranscript("customer", (), "en", reason),
        ),
        "test",
        "known-text",
    )
    assert ctx.transcripts.store(rid, said, 3.0)
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{rid}")
    expect(page.locator("#unrecognised-customer")).to_have_text(f"Customer: {reason}")
    expect(page.locator("#unrecognised-agent")).to_have_count(0)
    expect(page.locator("#turns li.turn")).to_have_count(1)
