"""``/api/v1/recording-rules`` and ``callvault rules``: changes, refusals, audit, the test endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callvault.api.app import create_app
from callvault.services.context import ServiceContext
from tests.api.conftest import auth
from tests.support.cli import invoke_cli
from tests.support.people import ADMIN, Staff, create_staff

HR = {"name": "HR line", "action": "do_not_record", "match": {"queues": ["hr"]}}


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as client:
        yield client


@pytest.fixture
def people(ctx: ServiceContext) -> Staff:
    return create_staff(ctx)


def _audit(ctx: ServiceContext) -> list[tuple[str, str | None]]:
    events = reversed(ctx.access_log.list(ADMIN, limit=1000))
    return [(e.action, e.detail) for e in events if e.action.startswith("recording_rule")]


def test_rules_are_ordered_changed_and_every_change_audited(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    carol = auth(people.tokens["carol"])
    created = api.post("/api/v1/recording-rules", json=HR, headers=carol)
    assert created.status_code == 201, created.text
    qa = {"name": "QA", "action": "sample", "sample_percent": 10, "match": {"teams": ["red"]}}
    assert api.post("/api/v1/recording-rules", json=qa, headers=carol).status_code == 201
    first = {
        "name": "Doctors",
        "action": "do_not_record",
        "position": 1,
        "match": {"customers": ["+14155550111"]},
    }
    doctors = api.post("/api/v1/recording-rules", json=first, headers=carol).json()
    listed = api.get("/api/v1/recording-rules", headers=auth(people.tokens["audrey"])).json()["items"]
    assert [(r["name"], r["position"]) for r in listed] == [("Doctors", 1), ("HR line", 2), ("QA", 3)]
    moved = api.put(f"/api/v1/recording-rules/{doctors['id']}", json={**first, "position": 3}, headers=carol)
    assert moved.status_code == 200 and moved.json()["position"] == 3, moved.text
    assert api.delete(f"/api/v1/recording-rules/{created.json()['id']}", headers=carol).status_code == 204
    listed = api.get("/api/v1/recording-rules", headers=carol).json()["items"]
    assert [(r["name"], r["position"]) for r in listed] == [("QA", 1), ("Doctors", 2)]
    actions = [a for a, _ in _audit(ctx)]
    assert actions == ["recording_rule_create"] * 3 + ["recording_rule_update", "recording_rule_delete"]
    assert "name='Doctors' position=3" in _audit(ctx)[3][1]  # type: ignore[operator]
    # Agents and auditors may not change rules; agents may not read them.
    for who in ("alice", "audrey"):
        assert (
            api.post("/api/v1/recording-rules", json=HR, headers=auth(people.tokens[who])).status_code == 403
        )
    assert api.get("/api/v1/recording-rules", headers=auth(people.tokens["alice"])).status_code == 403


def test_refused_changes_name_the_problem_and_apply_nothing(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    carol = auth(people.tokens["carol"])
    assert api.post("/api/v1/recording-rules", json=HR, headers=carol).status_code == 201
    catch_all = {"name": "Everything", "action": "record", "position": 1}
    shadowing = api.post("/api/v1/recording-rules", json=catch_all, headers=carol)
    assert shadowing.status_code == 409
    assert (
        "rule 'HR line' (position 2) is unreachable: rule 'Everything' (position 1"
        in shadowing.json()["detail"]
    )
    same = {"name": "HR too", "action": "record", "match": {"queues": ["hr"]}}
    contradiction = api.post("/api/v1/recording-rules", json=same, headers=carol)
    assert contradiction.status_code == 409 and "contradictory action" in contradiction.json()["detail"]
    assert api.post("/api/v1/recording-rules", json=HR, headers=carol).status_code == 409  # same name
    ghost = {"name": "Ghost", "action": "record", "match": {"agents": ["ghost"], "teams": ["red"]}}
    unknown = api.post("/api/v1/recording-rules", json=ghost, headers=carol)
    assert unknown.status_code == 400 and "unknown agent(s) 'ghost'" in unknown.json()["detail"]
    team = {"name": "T", "action": "record", "match": {"teams": ["purple"]}}
    assert "unknown team(s) 'purple'" in api.post("/api/v1/recording-rules", json=team, headers=carol).text
    assert api.put("/api/v1/recording-rules/999", json=HR, headers=carol).status_code == 404
    assert api.delete("/api/v1/recording-rules/999", headers=carol).status_code == 404
    assert api.post("/api/v1/recording-rules", content=b"[1]", headers=carol).status_code in (400, 422)
    listed = api.get("/api/v1/recording-rules", headers=carol).json()["items"]
    assert [r["name"] for r in listed] == ["HR line"]
    assert [a for a, _ in _audit(ctx)] == ["recording_rule_create"]


def test_the_test_endpoint_says_which_rule_and_action_a_call_gets(
    api: TestClient, ctx: ServiceContext, people: Staff
) -> None:
    carol = auth(people.tokens["carol"])
    office = {
        "name": "Office hours QA",
        "action": "sample",
        "sample_percent": 50,
        "match": {
            "teams": ["red"],
            "weekdays": ["mon"],
            "time_from": "09:00",
            "time_to": "17:00",
            "time_zone": "Europe/Paris",
        },
        "set_labels": ["qa"],
    }
    assert api.post("/api/v1/recording-rules", json=HR, headers=carol).status_code == 201
    assert api.post("/api/v1/recording-rules", json=office, headers=carol).status_code == 201
    hr = api.post("/api/v1/recording-rules/test", json={"queue": "hr", "agent": "bob"}, headers=carol).json()
    assert (hr["action"], hr["rule"], hr["position"], hr["record_audio"]) == (
        "do_not_record",
        "HR line",
        1,
        False,
    )
    monday = {"agent": "alice", "at": "2026-03-02T09:30:00+01:00", "call_id": "abc@pbx"}
    sampled = api.post("/api/v1/recording-rules/test", json=monday, headers=carol).json()
    assert (sampled["rule"], sampled["labels"], sampled["action"]) == ("Office hours QA", ["qa"], "sample")
    assert sampled["sampled"] == sampled["record_audio"]
    evening = api.post(
        "/api/v1/recording-rules/test", json={**monday, "at": "2026-03-02T17:00:00+01:00"}, headers=carol
    )
    assert evening.json()["rule"] is None and evening.json()["action"] == "record"
    ctx.users.set_must_record(ADMIN, "bob", True)
    forced = api.post(
        "/api/v1/recording-rules/test", json={"queue": "hr", "agent": "bob"}, headers=carol
    ).json()
    assert (forced["action"], forced["must_record"], forced["rule"]) == ("record", True, "HR line")
    for body, status in (
        ({"agent": "ghost"}, 400),
        ({"at": "monday"}, 400),
        ({"colour": "red"}, 400),
        ({"customer": "12"}, 400),
    ):
        assert api.post("/api/v1/recording-rules/test", json=body, headers=carol).status_code == status, body


def test_cli_manages_rules_like_the_api(
    ctx: ServiceContext, data_dir: Path, database_url: str, people: Staff
) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    added = invoke_cli(["rules", "add", "--name", "HR", "--action", "do_not_record", "--queue", "hr"], env)
    assert added.returncode == 0, added.stderr
    sample = ["rules", "add", "--name", "QA", "--action", "sample", "--sample-percent", "5", "--team", "red"]
    assert invoke_cli(sample, env).returncode == 0
    refused = invoke_cli(["rules", "add", "--name", "All", "--action", "record", "--position", "1"], env)
    assert refused.returncode != 0 and "unreachable" in refused.stderr
    tested = invoke_cli(["rules", "test", "--queue", "hr"], env)
    assert '"rule": "HR"' in tested.stdout and '"action": "do_not_record"' in tested.stdout
    rule_id = str(ctx.recording_rules.rules(fresh=True)[0].id)
    assert (
        invoke_cli(
            ["rules", "update", rule_id, "--name", "HR", "--action", "on_demand", "--queue", "hr"], env
        ).returncode
        == 0
    )
    assert invoke_cli(["rules", "remove", rule_id], env).returncode == 0
    assert [r.name for r in ctx.recording_rules.rules(fresh=True)] == ["QA"]
