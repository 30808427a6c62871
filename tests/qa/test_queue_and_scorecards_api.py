"""The sampling queue and scorecards through the API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from callvault.services.context import ServiceContext
from tests.qa.conftest import FORM, Api
from tests.qa.test_evaluations_api import ALICE, BOB, answers
from tests.support.vault_calls import seal_call

DANA = "sip:1003@pbx.example"


def week_of(days_ago: float) -> str:
    year, week, _ = (datetime.now(UTC) - timedelta(days=days_ago)).isocalendar()
    return f"{year:04d}-W{week:02d}"


def evaluate(
    api: Api, who: str, recording: str, form_id: int, values: tuple[str, str, int, str]
) -> dict[str, object]:
    call = api.as_(who)
    evaluation = call("POST", "/qa/evaluations", json={"recording_id": recording, "form_id": form_id})
    assert evaluation.status_code == 201, evaluation.text
    evaluation_id = evaluation.json()["id"]
    assert (
        call("PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": answers(*values)}).status_code == 200
    )
    submitted = call("POST", f"/qa/evaluations/{evaluation_id}/submit")
    assert submitted.status_code == 200, submitted.text
    return dict(submitted.json())


def test_sampling_fills_the_queue_once_per_call(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, alice, quinn = (qa_api.as_(n) for n in ("sam", "rita", "alice", "quinn"))
    form = sam("POST", "/qa/forms", json=FORM).json()
    # Mid-week of last week, so every call falls in one ISO week whatever today is.
    last_week = datetime.now(UTC) - timedelta(weeks=1)
    days = (
        datetime.now(UTC) - last_week.replace(hour=12) + timedelta(days=3 - last_week.weekday())
    ).total_seconds() / 86400
    calls = {
        "alice": [seal_call(ctx, agent_aor=ALICE, days_ago=days) for _ in range(3)],
        "dana": [seal_call(ctx, agent_aor=DANA, days_ago=days)],
        "bob": [seal_call(ctx, agent_aor=BOB, days_ago=days)],
    }
    week = week_of(days)
    assert (
        alice(
            "POST", "/qa/sampling-rules", json={"name": "x", "form_id": form["id"], "per_week": 1}
        ).status_code
        == 403
    )
    bad = sam("POST", "/qa/sampling-rules", json={"name": "x", "form_id": form["id"], "per_week": 0})
    assert bad.status_code == 400 and "per_week" in bad.json()["detail"]
    other_team = sam(
        "POST", "/qa/sampling-rules", json={"name": "x", "form_id": form["id"], "per_week": 1, "team": "blue"}
    )
    assert other_team.status_code == 403
    rule = sam(
        "POST",
        "/qa/sampling-rules",
        json={"name": "Weekly", "form_id": form["id"], "kind": "random", "per_week": 2},
    )
    assert rule.status_code == 201, rule.text
    assert rule.json()["team"] == "red"
    long_calls = {
        "name": "Long",
        "form_id": form["id"],
        "kind": "targeted",
        "per_week": 5,
        "criteria": {"min_duration": 600},
    }
    assert sam("POST", "/qa/sampling-rules", json=long_calls).status_code == 201
    assert sam("POST", "/qa/queue/sample", params={"week": "2026-W60"}).status_code == 400

    # One call of alice's is already evaluated: it is never sampled.
    evaluate(qa_api, "rita", calls["alice"][0], form["id"], ("yes", "yes", 5, "full"))
    sampled = rita("POST", "/qa/queue/sample", params={"week": week})
    assert sampled.status_code == 200, sampled.text
    picked = {item["recording_id"] for item in sampled.json()["items"]}
    assert picked == set(calls["alice"][1:]) | set(calls["dana"])  # 2 per agent; bob is blue; none long
    assert rita("POST", "/qa/queue/sample", params={"week": week}).json()["added"] == 0
    queue = rita("GET", "/qa/queue").json()["items"]
    assert {item["recording_id"] for item in queue} == picked
    assert quinn("GET", "/qa/queue").json()["items"] == []  # blue sees none of red's queue
    evaluation = rita(
        "POST", "/qa/evaluations", json={"recording_id": calls["dana"][0], "form_id": form["id"]}
    )
    assert evaluation.status_code == 201
    assert {item["recording_id"] for item in rita("GET", "/qa/queue").json()["items"]} == set(
        calls["alice"][1:]
    )


def test_team_scorecard_trend_over_two_weeks_and_csv(ctx: ServiceContext, qa_api: Api) -> None:
    sam, alice, dana = qa_api.as_("sam"), qa_api.as_("alice"), qa_api.as_("dana")
    form = sam("POST", "/qa/forms", json=FORM).json()
    sam("POST", "/qa/sampling-rules", json={"name": "Weekly", "form_id": form["id"], "per_week": 2})
    earlier, later = seal_call(ctx, agent_aor=ALICE, days_ago=10), seal_call(ctx, agent_aor=ALICE, days_ago=3)
    dana_call = seal_call(ctx, agent_aor=DANA, days_ago=3)
    evaluate(qa_api, "rita", earlier, form["id"], ("yes", "no", 4, "partial"))  # 54
    evaluate(qa_api, "rita", later, form["id"], ("yes", "yes", 5, "full"))  # 100
    evaluate(qa_api, "ray", dana_call, form["id"], ("no", "yes", 5, "full"))  # auto-fail: 0
    period = {
        "from": (datetime.now(UTC) - timedelta(days=14)).isoformat(),
        "to": datetime.now(UTC).isoformat(),
    }

    team = sam("GET", "/qa/scorecards", params={**period, "group": "team"}).json()
    (red,) = team["lines"]
    assert red["name"] == "red" and red["evaluations"] == 3
    assert red["average_score"] == round((54 + 100 + 0) / 3, 2)
    assert red["auto_fail_rate"] == round(1 / 3, 4)
    assert [(w["week"], w["evaluations"]) for w in red["trend"]] == [(week_of(10), 1), (week_of(3), 2)]
    assert red["trend"][0]["average_score"] == 54.0 and red["trend"][1]["average_score"] == 50.0
    assert red["target"] == 2 * 2 * 2  # 2 calls a week × 2 weeks × 2 red agents
    assert set(red["sections"]) == {"Compliance", "Soft skills"}

    mine = alice("GET", "/qa/scorecards", params=period).json()["lines"]
    assert [(line["name"], line["evaluations"]) for line in mine] == [("alice", 2)]
    assert [line["name"] for line in dana("GET", "/qa/scorecards", params=period).json()["lines"]] == ["dana"]

    exported = sam("GET", "/qa/scorecards", params={**period, "group": "agent", "format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["name"], r["week"], r["evaluations"]) for r in rows} == {
        ("alice", "all", "2"),
        ("alice", week_of(10), "1"),
        ("alice", week_of(3), "1"),
        ("dana", "all", "1"),
        ("dana", week_of(3), "1"),
    }
    backwards = sam("GET", "/qa/scorecards", params={"from": period["to"], "to": period["from"]})
    assert backwards.status_code == 400
