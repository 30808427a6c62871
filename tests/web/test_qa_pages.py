"""Quality management in the browser: an evaluation filled in beside the player, the agent's answer."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from callvault.db.models import AccessEvent
from callvault.services.access import Principal
from tests.qa.conftest import FORM
from tests.support.people import ADMIN, password_of
from tests.support.processes import wait_for
from tests.support.transcripts import transcript
from tests.support.vault_calls import seal_call
from tests.support.web_server import WebServer
from tests.web.conftest import assert_accessible, screenshot, sign_in

# FORM answered: disclosure yes (100, w60), identity N/A (drops out) -> compliance 100;
# empathy 4 of 5 -> 75, closing "partial" 1 of 4 points -> 25, each w50 -> soft skills 50;
# the evaluation: 0.4 * 100 + 0.6 * 50 = 70.
HAND_SCORE = "70.0"


@pytest.fixture(scope="module")
def call_id(web: WebServer) -> Iterator[str]:
    yield web.call(4.0)


@pytest.fixture(scope="module")
def forms(web: WebServer) -> Iterator[list[dict[str, Any]]]:
    qa = web.running.ctx.qa.forms
    yield [qa.create(ADMIN, {**FORM, "name": name}) for name in ("First look", "Second look", "Third look")]


def _principal(web: WebServer, name: str) -> Principal:
    return web.running.ctx.users.authenticate_password(name, password_of(name))


def _events(web: WebServer, action: str, username: str) -> list[AccessEvent]:
    with web.running.ctx.catalog.read() as session:
        rows = session.query(AccessEvent).filter_by(action=action, username=username).all()
        session.expunge_all()
        return rows


def _question_ids(form: dict[str, Any]) -> list[int]:
    return [q["id"] for s in form["sections"] for q in s["questions"]]


def test_an_evaluator_scores_a_call_beside_the_player_with_a_pinned_answer(
    web: WebServer, context: BrowserContext, call_id: str, forms: list[dict[str, Any]]
) -> None:
    disclosure, identity, empathy, closing, notes = _question_ids(forms[0])
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}")
    page.click("#evaluate-link")
    page.select_option("#form-id", str(forms[0]["id"]))
    page.click("#start-form button[type=submit]")
    expect(page.locator("#eval-state")).to_have_text("draft")
    evaluation_id = int(page.url.rsplit("/", 1)[1])

    page.click("#play")
    wait_for(
        lambda: page.evaluate("() => document.getElementById('audio').currentTime") > 1.2, 20, "playback"
    )
    page.click("#play")  # pause at the moment the disclosure was (not) read
    paused_at = page.evaluate("() => document.getElementById('audio').currentTime")
    page.click(f"#pin{disclosure}")
    expect(page.locator(f"#at{disclosure}")).not_to_have_value("")
    page.select_option(f"#q{disclosure}", "yes")
    page.select_option(f"#q{empathy}", "4")
    page.fill(f"#c{notes}", "Good call opening")
    page.click("#save-draft")
    expect(page.locator("#eval-done")).to_have_text("Evaluation saved.")
    expect(page.locator(f"#q{empathy}")).to_have_value("4")  # the draft is kept
    assert_accessible(page)

    page.click("#submit-evaluation")  # two scored questions still unanswered: refused, nothing lost
    expect(page.locator("#eval-error")).to_be_visible()
    expect(page.locator("#eval-state")).to_have_text("draft")
    page.select_option(f"#q{identity}", "na")
    page.select_option(f"#q{closing}", "partial")
    page.click("#submit-evaluation")
    expect(page.locator("#eval-done")).to_have_text("Evaluation submitted.")
    expect(page.locator("#eval-state")).to_have_text("submitted")
    expect(page.locator("#eval-score")).to_have_text(HAND_SCORE)
    jump = page.locator(f"#question-{disclosure} button.at")
    expect(jump).to_have_count(1)
    screenshot(page, "qa-evaluation")

    saved = web.running.ctx.qa.evaluations.get(ADMIN, evaluation_id)
    pinned = next(a for a in saved["answers"] if a["question_id"] == disclosure)
    assert pinned["at"] is not None and abs(pinned["at"] - paused_at) < 1.0
    assert saved["score"] == float(HAND_SCORE)
    assert any(e.recording_id == call_id for e in _events(web, "qa_evaluate", "sam"))
    assert any(e.recording_id == call_id for e in _events(web, "view", "sam"))


def _submitted(web: WebServer, call_id: str, form: dict[str, Any]) -> int:
    """An evaluation by ada (an admin), so that sam, alice's supervisor, may review its dispute."""
    sam = _principal(web, "ada")
    service = web.running.ctx.qa.evaluations
    made = service.create(sam, {"recording_id": call_id, "form_id": form["id"]})
    disclosure, identity, empathy, closing, _ = _question_ids(form)
    answers = [
        {"question_id": disclosure, "value": "no", "at": 1.0},
        {"question_id": identity, "value": "yes"},
        {"question_id": empathy, "value": 5},
        {"question_id": closing, "value": "full"},
    ]
    service.save(sam, made["id"], {"answers": answers})
    service.submit(sam, made["id"])
    return int(made["id"])


def test_the_agent_disputes_the_supervisor_changes_the_score_with_history_and_dana_sees_none(
    web: WebServer, context: BrowserContext, browser: Browser, call_id: str, forms: list[dict[str, Any]]
) -> None:
    acknowledged_id = _submitted(web, call_id, forms[2])
    evaluation_id = _submitted(web, call_id, forms[1])
    page = sign_in(context, "alice")
    page.goto(f"/qa/evaluations/{acknowledged_id}")
    page.click("#acknowledge")
    expect(page.locator("#eval-done")).to_have_text("Evaluation acknowledged.")
    expect(page.locator("#eval-state")).to_have_text("acknowledged")
    expect(page.locator("#acknowledge")).to_have_count(0)
    expect(page.locator("#dispute-form")).to_have_count(0)  # an acknowledged one cannot be disputed

    page.goto("/qa")
    page.click(f"a[href='/qa/evaluations/{evaluation_id}']")
    expect(page.locator("#eval-score")).to_have_text("0.0")  # the disclosure was not read
    expect(page.locator("#auto-failed")).to_be_visible()
    expect(page.locator("#evaluation-form")).to_have_count(0)  # agents cannot evaluate
    page.fill("#reason", "The disclosure was read at 0:01, before the customer spoke")
    page.click("#dispute-submit")
    expect(page.locator("#eval-done")).to_have_text("Evaluation disputed.")
    expect(page.locator("#eval-state")).to_have_text("disputed")
    expect(page.locator("#dispute")).to_contain_text("before the customer spoke")
    expect(page.locator("#dispute-form")).to_have_count(0)  # disputed once
    assert_accessible(page)

    dana_context = browser.new_context(base_url=web.url)
    try:
        other = sign_in(dana_context, "dana")
        expect(other).to_have_url(f"{web.url}/recordings")
        for hidden in (evaluation_id, acknowledged_id):
            answer = other.goto(f"/qa/evaluations/{hidden}")
            assert answer is not None and answer.status == 404
        other.goto("/qa")
        expect(other.locator("#no-evaluations")).to_be_visible()
    finally:
        dana_context.close()

    disclosure = _question_ids(forms[1])[0]
    reviewer_context = browser.new_context(base_url=web.url)
    try:
        reviewer = sign_in(reviewer_context, "sam")
        expect(reviewer).to_have_url(f"{web.url}/recordings")
        reviewer.goto(f"/qa/evaluations/{evaluation_id}")
        expect(reviewer.locator(f"#q{disclosure}")).to_have_value("no")  # the answers as given
        reviewer.select_option(f"#q{disclosure}", "yes")
        reviewer.check("#outcome-change")
        reviewer.fill("#review-note", "Disclosure heard at 0:01")
        reviewer.click("#review-submit")
        expect(reviewer.locator("#eval-done")).to_have_text("Evaluation reviewed.")
        expect(reviewer.locator("#eval-score")).to_have_text("100.0")
        assert_accessible(reviewer)
    finally:
        reviewer_context.close()

    page.goto(f"/qa/evaluations/{evaluation_id}")
    expect(page.locator("#eval-state")).to_have_text("reviewed")
    expect(page.locator("#dispute")).to_contain_text("changed by sam (0.0 → 100.0)")
    expect(page.locator("#history li")).not_to_have_count(0)
    expect(page.locator("#history")).to_contain_text("dispute_changed by sam · score 100.0")
    page.click("#acknowledge")
    expect(page.locator("#eval-state")).to_have_text("acknowledged")
    expect(page.locator("#dispute")).to_contain_text("before the customer spoke")  # history stays


def _week_of(days_ago: float) -> str:
    year, week, _ = (datetime.now(UTC) - timedelta(days=days_ago)).isocalendar()
    return f"{year:04d}-W{week:02d}"


def test_the_team_scorecard_draws_the_trend_over_two_weeks_and_exports_csv(
    web: WebServer, context: BrowserContext, browser: Browser, forms: list[dict[str, Any]]
) -> None:
    ctx, sam = web.running.ctx, _principal(web, "sam")
    form = ctx.qa.forms.create(ADMIN, {**FORM, "name": "Trend"})
    disclosure, identity, empathy, closing, _ = _question_ids(form)
    for days_ago, identified in ((10, "no"), (3, "yes")):
        recording = seal_call(ctx, agent_aor="sip:1001@pbx.example", days_ago=days_ago)
        made = ctx.qa.evaluations.create(sam, {"recording_id": recording, "form_id": form["id"]})
        answers = [
            {"question_id": disclosure, "value": "yes"},
            {"question_id": identity, "value": identified},
            {"question_id": empathy, "value": 4},
            {"question_id": closing, "value": "partial"},
        ]
        ctx.qa.evaluations.save(sam, made["id"], {"answers": answers})
        ctx.qa.evaluations.submit(sam, made["id"])  # 54 with identity "no", 70 with "yes"

    page = sign_in(context, "sam")
    page.goto("/qa")
    page.click("#scorecards-link")
    page.fill("#sc-weeks", "3")
    page.click("#scorecard-form button[type=submit]")
    card = page.locator("section.scorecard", has_text="red")
    expect(card).to_have_count(1)
    earlier = card.locator(f"circle.trend-point[data-week='{_week_of(10)}']")
    expect(earlier).to_have_attribute("data-score", "54.0")
    expect(card.locator("circle.trend-point")).not_to_have_count(1)  # two weeks or more: a line
    expect(card.locator("polyline.trend-line")).to_have_count(1)
    assert_accessible(page)
    screenshot(page, "qa-scorecards")

    exported = context.request.get(page.locator("#csv-link").get_attribute("href") or "")
    assert exported.status == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text())))
    assert ("red", _week_of(10), "1") in {(r["name"], r["week"], r["evaluations"]) for r in rows}
    assert any(e.detail and e.detail.startswith("team:") for e in _events(web, "qa_scorecard", "sam"))

    blue_context = browser.new_context(base_url=web.url)
    try:
        bob = sign_in(blue_context, "bob")
        expect(bob).to_have_url(f"{web.url}/recordings")
        bob.goto("/qa/scorecards?group=team&weeks=3")
        expect(bob.locator("#no-scorecards")).to_be_visible()  # red's scores are not his to see
    finally:
        blue_context.close()


def test_a_clip_shared_through_coaching_plays_for_its_agent_and_not_for_another_team(
    web: WebServer, context: BrowserContext, browser: Browser, call_id: str
) -> None:
    ctx, sam = web.running.ctx, _principal(web, "sam")
    clip = ctx.qa.library.create_clip(
        sam,
        {"recording_id": call_id, "start": 0.5, "end": 3.5, "title": "Warm opening", "tags": ["greeting"]},
    )
    item = ctx.qa.coaching.create(
        sam, {"agent": "alice", "title": "Openings", "due": "2027-01-15", "clip_ids": [clip["id"]]}
    )
    # Transcribed as the job would (no worker here): an agent hears a clip's redacted rendition
    # (nothing here to silence), and nothing before the call is transcribed.
    web.running.ctx.transcripts.store(call_id, transcript(agent=[(0.2, "Hello how can I help")]), 1.0)
    page = sign_in(context, "alice")
    page.goto("/qa")
    page.click("#coaching-link")
    entry = page.locator(f"#clip-{clip['id']}")
    expect(entry).to_contain_text("Warm opening")
    expect(entry.locator(".redacted")).to_have_text("personal data silenced")
    expect(page.locator(f"#coaching-{item['id']}")).to_contain_text("Openings")
    assert_accessible(page)
    entry.locator("audio").evaluate("audio => audio.play()")
    wait_for(
        lambda: entry.locator("audio").evaluate("audio => audio.currentTime") > 0.5, 20, "the clip to play"
    )
    assert any(e.detail == f"clip {clip['id']} redacted=0" for e in _events(web, "clip_play", "alice"))
    page.click(f"#watched-{clip['id']}")
    expect(entry.locator(".watched")).to_be_visible()
    page.click(f"#acknowledge-coaching-{item['id']}")
    expect(page.locator(f"#coaching-{item['id']}")).to_contain_text("Acknowledged")
    screenshot(page, "qa-coaching")

    blue_context = browser.new_context(base_url=web.url)
    try:
        bob = sign_in(blue_context, "bob")
        expect(bob).to_have_url(f"{web.url}/recordings")
        bob.goto("/qa/coaching")
        expect(bob.locator("#no-clips")).to_be_visible()
        refused = blue_context.request.get(f"/qa/clips/{clip['id']}/audio")
        assert refused.status == 404
        assert not _events(web, "clip_play", "bob")
    finally:
        blue_context.close()


def _calibration_answers(form: dict[str, Any], identified: str, empathy: int) -> list[dict[str, Any]]:
    disclosure, identity, empathy_id, closing, _ = _question_ids(form)
    return [
        {"question_id": disclosure, "value": "yes"},
        {"question_id": identity, "value": identified},
        {"question_id": empathy_id, "value": empathy},
        {"question_id": closing, "value": "full"},
    ]


def test_three_evaluators_calibrate_one_call_and_the_variance_shows(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    ctx = web.running.ctx
    ctx.users.create_user(ADMIN, "rita", "qa_evaluator", team="red", password=password_of("rita"))
    form = ctx.qa.forms.create(ADMIN, {**FORM, "name": "Calibration"})
    ada, rita = _principal(web, "ada"), _principal(web, "rita")
    session = ctx.qa.calibrations.create(
        ada,
        {
            "name": "December",
            "recording_id": call_id,
            "form_id": form["id"],
            "evaluators": ["sam", "ada", "rita"],
        },
    )
    for who, identified, empathy in ((ada, "yes", 5), (rita, "no", 1)):
        made = ctx.qa.evaluations.create(
            who, {"recording_id": call_id, "form_id": form["id"], "calibration_id": session["id"]}
        )
        ctx.qa.evaluations.save(who, made["id"], {"answers": _calibration_answers(form, identified, empathy)})
        ctx.qa.evaluations.submit(who, made["id"])

    page = sign_in(context, "sam")
    page.goto("/qa")
    page.click("#calibrations-link")
    page.click("#calibrations a:has-text('December')")
    expect(page.locator("#calibration-waiting")).to_contain_text("Submit your own evaluation")
    expect(page.locator("#calibration-questions")).to_have_count(0)  # no peeking first
    page.click("#calibrate")
    disclosure, identity, empathy, closing, _ = _question_ids(form)
    page.select_option(f"#q{disclosure}", "yes")
    page.select_option(f"#q{identity}", "yes")
    page.select_option(f"#q{empathy}", "5")
    page.select_option(f"#q{closing}", "full")
    page.click("#submit-evaluation")
    expect(page.locator("#eval-state")).to_have_text("submitted")
    page.click("#calibration-link")
    # sam and ada scored 100, rita 40 (identity no, empathy 1): rita is out of line, first.
    expect(page.locator("#calibration-evaluators tbody tr").first).to_have_attribute("data-evaluator", "rita")
    identity_row = page.locator(f"#calibration-questions tr[data-question='{identity}']")
    expect(identity_row.locator(".variance")).not_to_have_text("0.0")
    expect(page.locator(f"#calibration-questions tr[data-question='{closing}'] .variance")).to_have_text(
        "0.0"
    )
    expect(page.locator("#score-variance")).not_to_have_text("0.0")
    assert_accessible(page)
    screenshot(page, "qa-calibration")


def test_the_draft_saves_itself_and_bad_posts_are_refused_without_saving(
    web: WebServer, context: BrowserContext, call_id: str
) -> None:
    form = web.running.ctx.qa.forms.create(ADMIN, {**FORM, "name": "Autosave"})
    disclosure, _, empathy, _, _ = _question_ids(form)
    page = sign_in(context, "sam")
    page.goto(f"/recordings/{call_id}/evaluate")
    page.select_option("#form-id", str(form["id"]))
    page.click("#start-form button[type=submit]")
    expect(page.locator("#eval-state")).to_have_text("draft")
    evaluation_id = int(page.url.rsplit("/", 1)[1])
    # The script listens once it has run; a change before that would not save itself.
    expect(page.locator("#evaluation-form")).to_have_attribute("data-autosave", "on")
    page.select_option(f"#q{empathy}", "3")
    expect(page.locator("#autosave")).to_contain_text("Draft saved at", timeout=15_000)
    page.reload()
    expect(page.locator(f"#q{empathy}")).to_have_value("3")

    page.select_option(f"#q{disclosure}", "yes")
    page.fill(f"#at{disclosure}", "9:00")  # past the end of a 4 s call
    page.click("#save-draft")
    expect(page.locator("#eval-error")).to_be_visible()
    saved = web.running.ctx.qa.evaluations.get(ADMIN, evaluation_id)
    assert [a["question_id"] for a in saved["answers"]] == [empathy]  # nothing half-saved

    forged = context.request.post(
        f"/qa/evaluations/{evaluation_id}",
        form={"csrf": "forged", "action": "submit", f"q{empathy}": "5"},
        headers={"Accept": "text/html"},
    )
    assert forged.status == 403
    assert web.running.ctx.qa.evaluations.get(ADMIN, evaluation_id)["state"] == "draft"
