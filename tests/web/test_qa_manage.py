"""A QA lead's pages in the browser: building and versioning a form, sampling rules and the queue
they fill, setting up a calibration, and the coaching library (a 20 s clip, a playlist shared with
an agent, a coaching item), against a server holding calls recorded through SIPREC."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from callvault.db.models import AccessEvent
from callvault.services.access import Principal
from tests.qa.conftest import FORM
from tests.support.people import ADMIN, password_of
from tests.support.processes import wait_for
from tests.support.transcripts import transcript
from tests.support.web_server import WebServer
from tests.web.conftest import assert_accessible, screenshot, sign_in

CALL_SECONDS = 24.0  # long enough for a 20 s clip
SAMPLED_CALL_SECONDS = 12.0  # over the sampling rule's 10 s minimum


@pytest.fixture(scope="module")
def module_calls(web: WebServer) -> tuple[str, str]:
    """The module's call, and the sampling test's own (the other tests evaluate the module's call,
    and evaluated calls are not sampled): placed at once, the two cost the longer one's time."""
    shared, sampled = web.calls_at_once(CALL_SECONDS, SAMPLED_CALL_SECONDS)
    return shared, sampled


@pytest.fixture(scope="module")
def call_id(module_calls: tuple[str, str]) -> str:
    return module_calls[0]


def _principal(web: WebServer, name: str) -> Principal:
    return web.running.ctx.users.authenticate_password(name, password_of(name))


def _events(web: WebServer, action: str, username: str) -> list[AccessEvent]:
    with web.running.ctx.catalog.read() as session:
        rows = session.query(AccessEvent).filter_by(action=action, username=username).all()
        session.expunge_all()
        return rows


def _fill_question(page: Page, prefix: str, text: str, kind: str, weight: str = "", **extra: str) -> None:
    page.fill(f"#{prefix}_text", text)
    page.select_option(f"#{prefix}_kind", kind)
    if weight:
        page.fill(f"#{prefix}_weight", weight)
    for name, value in extra.items():
        if value == "on":
            page.check(f"#{prefix}_{name}")
        else:
            page.fill(f"#{prefix}_{name}", value)


def test_a_qa_lead_builds_a_form_and_editing_it_in_use_makes_a_new_version(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    forms = web.running.ctx.qa.forms
    before = len(forms.list(ADMIN))
    page = sign_in(context, "sam")
    page.goto("/qa")
    page.click("#forms-link")
    page.click("#new-form")
    page.fill("#f-name", "Phone basics")
    page.fill("#s0_title", "Compliance")
    page.fill("#s0_weight", "40")
    _fill_question(page, "q0_0", "Disclosure read?", "yes_no", "100", auto_fail="on")
    page.fill("#s1_title", "Soft skills")
    page.fill("#s1_weight", "50")  # 40 + 50: refused
    _fill_question(page, "q1_0", "Empathy", "scale", "50", scale_max="5")
    _fill_question(page, "q1_1", "Closing", "choice", "50", choices="full=4; partial=1; none=0")
    _fill_question(page, "q1_2", "Notes", "comment", allow_na="on")
    assert_accessible(page)
    page.click("#save-form")
    expect(page.locator("#form-error")).to_contain_text("add up to 100")
    assert len(forms.list(ADMIN)) == before  # nothing half-saved
    expect(page.locator("#q1_1_choices")).to_have_value("full=4; partial=1; none=0")  # what was typed stays
    page.fill("#s1_weight", "60")
    page.click("#save-form")
    expect(page.locator("#form-notice")).to_have_text("Form Phone basics saved (version 1).")
    made = next(f for f in forms.list(ADMIN) if f["name"] == "Phone basics")
    compliance, soft = made["sections"]
    assert compliance["questions"][0]["auto_fail"] is True and compliance["weight"] == 40
    empathy, closing, notes = soft["questions"]
    assert (empathy["kind"], empathy["scale_max"], closing["kind"], notes["kind"]) == (
        "scale",
        5,
        "choice",
        "comment",
    )
    assert [c["points"] for c in closing["choices"]] == [4, 1, 0] and notes["allow_na"] is True
    assert any(f"form {made['id']}" in (e.detail or "") for e in _events(web, "qa_form_create", "sam"))

    # In use: an evaluation made with it keeps version 1 when the form is edited.
    evaluation = web.running.ctx.qa.evaluations.create(
        _principal(web, "sam"), {"recording_id": call_id, "form_id": made["id"]}
    )
    page.locator(f"#forms tr[data-form='{made['id']}']").get_by_role("link").click()
    expect(page.locator("#in-use-note")).to_contain_text("saving makes version 2")
    page.fill("#q1_0_text", "Empathy shown?")
    page.click("#save-form")
    expect(page.locator("#form-notice")).to_have_text("Form Phone basics saved (version 2).")
    successor = next(f for f in forms.list(ADMIN) if f["name"] == "Phone basics")
    assert successor["id"] != made["id"] and successor["version"] == 2
    assert successor["sections"][1]["questions"][0]["text"] == "Empathy shown?"
    assert [q["id"] for s in successor["sections"] for q in s["questions"]] == [
        q["id"] for s in made["sections"] for q in s["questions"]
    ]
    assert forms.get(ADMIN, made["id"])["current"] is False
    kept = web.running.ctx.qa.evaluations.get(ADMIN, evaluation["id"])
    assert kept["form_id"] == made["id"]
    assert any("->" in (e.detail or "") for e in _events(web, "qa_form_version", "sam"))
    screenshot(page, "qa-forms")


def test_a_sampling_rule_fills_the_evaluators_queue(
    web: WebServer, context: BrowserContext, module_calls: tuple[str, str]
) -> None:
    form = web.running.ctx.qa.forms.create(ADMIN, {**FORM, "name": "Sampled"})
    # A call of its own, never evaluated (module_calls). Two a week per agent picks it whatever
    # else alice has this week (at most the module's call).
    call_id = module_calls[1]
    page = sign_in(context, "sam")
    page.goto("/qa")
    page.click("#queue-link")
    expect(page.locator("#empty-queue")).to_be_visible()
    page.fill("#r-name", "Two a week")
    page.select_option("#r-form", str(form["id"]))
    page.select_option("#r-kind", "random")
    page.fill("#r-per-week", "2")
    page.fill("#r-min", "10")
    page.check("#r-status-complete")
    page.click("#save-rule")
    expect(page.locator("#queue-notice")).to_have_text("Rule Two a week saved.")
    expect(page.locator("#rules")).to_contain_text("min duration 10.0")
    page.click("#run-sampling")
    expect(page.locator("#queue-notice")).to_contain_text("call(s) added to the queue")
    row = page.locator(f"#queue tr[data-recording='{call_id}']")
    expect(row).to_contain_text("random: Two a week")
    expect(row).to_contain_text("alice")
    assert any(e.recording_id == call_id for e in _events(web, "qa_sample", "sam"))
    assert_accessible(page)
    screenshot(page, "qa-queue")
    row.get_by_role("link", name="Evaluate").click()
    expect(page).to_have_url(f"{web.url}/recordings/{call_id}/evaluate")
    # A targeted rule by speech analytics: the category, overtalk and sentiment fields.
    web.running.ctx.phrase_categories.create(ADMIN, {"name": "Complaint", "phrases": ["not happy"]})
    page.goto("/qa/queue")
    page.fill("#r-name", "Unhappy and talked over")
    page.select_option("#r-kind", "targeted")
    page.check("#r-categories >> input[value='Complaint']")
    page.fill("#r-overtalk", "5")
    page.fill("#r-sentiment", "-0.3")
    page.check("#r-ends-negative")
    page.click("#save-rule")
    expect(page.locator("#queue-notice")).to_have_text("Rule Unhappy and talked over saved.")
    saved = [
        r for r in web.running.ctx.qa.sampling.list_rules(ADMIN) if r["name"] == "Unhappy and talked over"
    ]
    assert saved[0]["criteria"] == {
        "categories": ["Complaint"],
        "min_overtalk": 5.0,
        "max_customer_sentiment": -0.3,
        "customer_ends_negative": True,
    }
    expect(page.locator("#rules")).to_contain_text("customer ends negative")
    page.fill("#r-name", "Broken")
    page.fill("#r-sentiment", "sad")
    page.click("#save-rule")
    expect(page.locator("#queue-error")).to_contain_text("customer sentiment at most")
    page.fill("#r-name", "Broken")
    page.fill("#r-per-week", "0")
    page.click("#save-rule")
    expect(page.locator("#queue-error")).to_contain_text("per_week")


def test_a_calibration_session_is_set_up_from_the_call(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    form = web.running.ctx.qa.forms.create(ADMIN, {**FORM, "name": "Calibrate me"})
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    page.click("#calibrate-link")
    expect(page.locator("#c-recording")).to_have_value(call_id)
    page.fill("#c-name", "December calibration")
    page.select_option("#c-form", str(form["id"]))
    page.check("#c-ev-sam")
    page.click("#create-calibration")  # one evaluator: refused
    expect(page.locator("#calibration-error")).to_contain_text("evaluators")
    expect(page.locator("#c-ev-sam")).to_be_checked()
    assert_accessible(page)
    page.check("#c-ev-ada")
    page.select_option("#c-expert", "ada")
    page.click("#create-calibration")
    expect(page.locator("h1")).to_contain_text("December calibration")
    made = [c for c in web.running.ctx.qa.calibrations.list(ADMIN) if c["name"] == "December calibration"]
    assert len(made) == 1 and made[0]["expert"] == "ada" and made[0]["recording_id"] == call_id
    assert sorted(e["username"] for e in made[0]["evaluators"]) == ["ada", "sam"]
    assert any(e.recording_id == call_id for e in _events(web, "qa_calibration", "sam"))


def _submitted_evaluation(web: WebServer, call_id: str) -> int:
    sam = _principal(web, "sam")
    service = web.running.ctx.qa.evaluations
    form = web.running.ctx.qa.forms.create(ADMIN, {**FORM, "name": "Coaching basis"})
    made = service.create(sam, {"recording_id": call_id, "form_id": form["id"]})
    ids = [q["id"] for s in form["sections"] for q in s["questions"]]
    values: list[Any] = ["yes", "yes", 4, "full"]
    service.save(
        sam,
        made["id"],
        {"answers": [{"question_id": q, "value": v} for q, v in zip(ids, values, strict=False)]},
    )
    service.submit(sam, made["id"])
    return int(made["id"])


def test_a_20_second_clip_in_a_playlist_and_a_coaching_item_reach_only_their_agent(
    web: WebServer, context: BrowserContext, browser: Browser, call_id: str
) -> None:
    evaluation_id = _submitted_evaluation(web, call_id)
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    page.click("#clip-link")
    expect(page.locator("#k-recording")).to_have_value(call_id)
    page.fill("#k-start", "0:02")
    page.fill("#k-end", "0:22")
    page.fill("#k-title", "Twenty seconds of a good opening")
    page.fill("#k-tags", "greeting")
    page.fill("#k-teams", "blue")  # not sam's team: refused, nothing saved
    page.click("#create-clip")
    expect(page.locator("#library-error")).to_contain_text("blue")
    assert not web.running.ctx.qa.library.list_clips(ADMIN)
    page.fill("#k-start", "0:02")
    page.fill("#k-end", "0:22")
    page.fill("#k-title", "Twenty seconds of a good opening")
    page.click("#create-clip")
    expect(page.locator("#library-notice")).to_contain_text("Clip")
    [clip] = web.running.ctx.qa.library.list_clips(ADMIN)
    assert (clip["start"], clip["end"], clip["duration_seconds"]) == (2.0, 22.0, 20.0)

    page.fill("#p-name", "Openings")
    page.fill("#p-topic", "greeting the customer")
    page.check(f"#p-clip-{clip['id']}")
    page.fill("#p-users", "alice")
    page.click("#create-playlist")
    expect(page.locator("#library-notice")).to_contain_text("Playlist")
    expect(page.locator("#playlists")).to_contain_text("Openings")

    page.select_option("#i-agent", "alice")
    page.fill("#i-title", "Work on openings")
    page.fill("#i-due", "2027-01-15")
    page.check(f"#i-ev-{evaluation_id}")
    page.check(f"#i-clip-{clip['id']}")
    page.click("#create-coaching")
    expect(page.locator("#library-notice")).to_contain_text("Coaching item")
    assert_accessible(page)
    screenshot(page, "qa-library")
    [item] = [c for c in web.running.ctx.qa.coaching.list(ADMIN) if c["title"] == "Work on openings"]
    assert item["agent"] == "alice" and item["due"].startswith("2027-01-15")
    assert item["evaluation_ids"] == [evaluation_id] and item["clip_ids"] == [clip["id"]]
    for action in ("clip_create", "playlist_create", "coaching_create"):
        assert _events(web, action, "sam"), action

    # Transcribed as the job would (no worker here): an agent hears a clip's redacted rendition
    # (nothing here to silence), and nothing before the call is transcribed.
    web.running.ctx.transcripts.store(call_id, transcript(agent=[(0.2, "Hello how can I help")]), 1.0)
    alice = sign_in(browser.new_context(base_url=web.url), "alice")
    alice.goto("/qa/coaching")
    expect(alice.locator(f"#coaching-{item['id']}")).to_contain_text("Work on openings")
    entry = alice.locator(f"#clip-{clip['id']}")
    expect(entry).to_contain_text("Twenty seconds of a good opening")
    audio = entry.locator("audio")
    audio.evaluate("audio => audio.play()")
    wait_for(lambda: audio.evaluate("audio => audio.currentTime") > 0.5, 20, "the clip to play")
    assert abs(audio.evaluate("audio => audio.duration") - 20.0) < 0.5
    assert any(e.detail == f"clip {clip['id']} redacted=0" for e in _events(web, "clip_play", "alice"))
    alice.context.close()

    blue = browser.new_context(base_url=web.url)
    try:
        bob = sign_in(blue, "bob")
        expect(bob).to_have_url(f"{web.url}/recordings")
        bob.goto("/qa/coaching")
        expect(bob.locator("#no-clips")).to_be_visible()
        assert blue.request.get(f"/qa/clips/{clip['id']}/audio").status == 404
        assert not _events(web, "clip_play", "bob")
    finally:
        blue.close()
