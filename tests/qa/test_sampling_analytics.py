"""Targeted sampling by what speech analytics found: phrase categories, overtalk, customer sentiment.

The analytics are seeded through the insight store as the ``analyse`` job writes them (a real
call would have to be transcribed first: seconds each); the rules, the run and the queue go
through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callvault.services.context import ServiceContext
from callvault.services.insight_store import save_insight
from callvault.speech.phrases import Hit
from callvault.speech.sentiment import SideSentiment
from callvault.speech.talk_metrics import TalkMetrics
from tests.qa.conftest import FORM, Api
from tests.qa.test_evaluations_api import ALICE
from tests.qa.test_queue_and_scorecards_api import evaluate, week_of
from tests.support.people import ADMIN
from tests.support.vault_calls import seal_call


def seed_insight(
    ctx: ServiceContext,
    recording_id: str,
    *,
    overtalk: float = 0.0,
    customer: float | None = 0.3,
    last_quarter: float | None = 0.3,
    categories: tuple[int, ...] = (),
) -> None:
    metrics = TalkMetrics(60.0, 25.0, 25.0, 10.0, overtalk, 0.0, 9.0, 8.0, 0.5, 1, 1, 140.0, 150.0)
    sides = [
        SideSentiment("agent", 0.4, (0.4, 0.4, 0.4, 0.4)),
        SideSentiment("customer", customer, (customer, customer, customer, last_quarter)),
    ]
    hits = [Hit(c, "customer", "phrase", 10.0 + i, 11.0 + i) for i, c in enumerate(categories)]
    with ctx.catalog.write() as session:
        save_insight(session, recording_id, "audio", metrics, sides, [], hits, [])


def mid_last_week() -> float:
    """Days ago of last week's Thursday noon: every call of the test falls in one ISO week."""
    last_week = datetime.now(UTC) - timedelta(weeks=1)
    thursday = last_week.replace(hour=12) + timedelta(days=3 - last_week.weekday())
    return (datetime.now(UTC) - thursday).total_seconds() / 86400


def test_targeted_rules_by_category_overtalk_and_sentiment(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, alice = qa_api.as_("sam"), qa_api.as_("rita"), qa_api.as_("alice")
    complaint = ctx.phrase_categories.create(ADMIN, {"name": "Complaint", "phrases": ["not happy"]})
    cancel = ctx.phrase_categories.create(ADMIN, {"name": "Cancellation", "phrases": ["cancel"]})
    greeting = ctx.phrase_categories.create(ADMIN, {"name": "Greeting", "phrases": ["hello"]})
    form = sam("POST", "/qa/forms", json=FORM).json()
    days = mid_last_week()
    call = {name: seal_call(ctx, agent_aor=ALICE, days_ago=days) for name in "abcdefgh"}
    seed_insight(ctx, call["a"], categories=(complaint["id"],), overtalk=1.0)
    seed_insight(ctx, call["b"], overtalk=8.0)
    seed_insight(ctx, call["c"], customer=-0.6, last_quarter=None)  # silent at the end
    seed_insight(ctx, call["d"], customer=0.2, last_quarter=-0.7)  # a good call that ended badly
    # e and f match every rule; e is evaluated and its evaluation disputed.
    for twin in "ef":
        seed_insight(
            ctx, call[twin], categories=(cancel["id"],), overtalk=12.0, customer=-0.9, last_quarter=-0.9
        )
    # g hit only a category no rule asks for; h was never analysed.
    seed_insight(ctx, call["g"], categories=(greeting["id"],))
    disputed = evaluate(qa_api, "rita", call["e"], form["id"], ("yes", "yes", 5, "full"))
    assert (
        alice("POST", f"/qa/evaluations/{disputed['id']}/dispute", json={"reason": "unfair"}).status_code
        == 201
    )

    def rule(name: str, criteria: dict[str, object]) -> dict[str, object]:
        body = {"name": name, "form_id": form["id"], "kind": "targeted", "per_week": 10, "criteria": criteria}
        made = sam("POST", "/qa/sampling-rules", json=body)
        assert made.status_code == 201, made.text
        return dict(made.json())

    by_category = rule("Complaints", {"categories": ["Complaint", "Cancellation"]})
    assert by_category["criteria"] == {"categories": ["Cancellation", "Complaint"]}
    rule("Overtalk", {"min_overtalk": 5})
    ends = rule("Ended badly", {"customer_ends_negative": True})
    assert ends["criteria"] == {"customer_ends_negative": True}
    rule("Unhappy", {"max_customer_sentiment": -0.2})  # after "Ended badly": c is not one of its

    sampled = rita("POST", "/qa/queue/sample", params={"week": week_of(days)})
    assert sampled.status_code == 200, sampled.text
    picked = {item["recording_id"]: item["reason"] for item in sampled.json()["items"]}
    # Rules run in order and a call is queued once: f (matching all) goes to the first.
    assert picked == {
        call["a"]: "targeted: Complaints",
        call["f"]: "targeted: Complaints",
        call["b"]: "targeted: Overtalk",
        call["d"]: "targeted: Ended badly",
        call["c"]: "targeted: Unhappy",
    }
    assert call["e"] not in picked  # evaluated and under dispute: never sampled again
    assert rita("POST", "/qa/queue/sample", params={"week": week_of(days)}).json()["added"] == 0

    # Once h is analysed, the next daily run picks it up: the rule's week still has room.
    seed_insight(ctx, call["h"], overtalk=6.0)
    again = rita("POST", "/qa/queue/sample", params={"week": week_of(days)}).json()
    assert [(i["recording_id"], i["reason"]) for i in again["items"]] == [(call["h"], "targeted: Overtalk")]


def test_analytics_criteria_are_checked(ctx: ServiceContext, qa_api: Api) -> None:
    sam = qa_api.as_("sam")
    ctx.phrase_categories.create(ADMIN, {"name": "Complaint", "phrases": ["not happy"]})
    form = sam("POST", "/qa/forms", json=FORM).json()
    base = {"name": "x", "form_id": form["id"], "kind": "targeted", "per_week": 3}
    for criteria, words in [
        ({"categories": ["Complaint", "Refund"]}, "no phrase category named 'Refund'"),
        ({"categories": "Complaint"}, "criteria.categories must be a list"),
        ({"categories": ["x" * 81]}, "criteria.categories must be a list"),
        ({"min_overtalk": -1}, "criteria.min_overtalk must be seconds"),
        ({"min_overtalk": "5"}, "criteria.min_overtalk must be seconds"),
        ({"max_customer_sentiment": 1.5}, "from -1 to 1"),
        ({"max_customer_sentiment": True}, "from -1 to 1"),
        ({"customer_ends_negative": "yes"}, "true or false"),
        ({"sentiment": "negative"}, "criteria may have"),
    ]:
        refused = sam("POST", "/qa/sampling-rules", json={**base, "criteria": criteria})
        assert refused.status_code == 400 and words in refused.json()["detail"], (criteria, refused.text)
    assert sam("GET", "/qa/sampling-rules").json()["items"] == []  # nothing half-saved
