"""The requirements table over the API (admins, audited, nothing half-applied), the requirement
stored on each call and searchable, the consent endpoint's refusals, and the migration of the
older consent vocabulary."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from callvault.api.app import create_app
from callvault.db.catalog import _MIGRATIONS
from callvault.db.models import AccessEvent, Participant, Recording
from callvault.errors import InvalidInput
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext, open_context
from tests.api.conftest import auth
from tests.support.people import ADMIN, Staff, create_staff, password_of

AGENT = "sip:1001@pbx.example"  # alice


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as http:
        yield http


@pytest.fixture
def staff(ctx: ServiceContext) -> Staff:
    people = create_staff(ctx)
    ctx.users.create_user(ADMIN, "ada", "admin", password=password_of("ada"))
    people.tokens["ada"] = ctx.users.create_token(ADMIN, "ada", "test")
    return people


def _call(ctx: ServiceContext, *customers: str) -> str:
    parties = [ParticipantRecord(AGENT, role="agent")]
    parties += [ParticipantRecord(f"sip:{c}@carrier.example", role="customer") for c in customers]
    record = CallRecord(started_at=datetime.now(UTC), source="siprec", participants=parties)
    return ctx.recordings.begin(record)


def _requirement(ctx: ServiceContext, recording_id: str) -> str | None:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        return recording.consent_requirement


def _trail(ctx: ServiceContext, *actions: str) -> list[tuple[str, str, str | None, str | None]]:
    with ctx.catalog.read() as session:
        rows = session.execute(
            select(AccessEvent.username, AccessEvent.outcome, AccessEvent.recording_id, AccessEvent.detail)
            .where(AccessEvent.action.in_(actions))
            .order_by(AccessEvent.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_each_call_stores_its_strictest_requirement_and_is_found_by_it(
    ctx: ServiceContext, client: TestClient, staff: Staff
) -> None:
    california = _call(ctx, "+14155550100")
    new_york = _call(ctx, "+12125550100")
    both = _call(ctx, "+12125550100", "+14155550100")  # a conference: California wins
    nowhere = _call(ctx)  # only an extension: unknown, which the disclosure check treats as needing one
    assert _requirement(ctx, california) == "all_party_notification"
    assert _requirement(ctx, new_york) == "one_party"
    assert _requirement(ctx, both) == "all_party_notification"
    assert _requirement(ctx, nowhere) is None
    with ctx.catalog.read() as session:
        places = session.scalars(select(Participant.jurisdiction).order_by(Participant.id)).all()
    assert "US-CA" in places and "US-NY" in places
    token = staff.tokens["carol"]
    found = client.get("/api/v1/recordings?consent_requirement=all_party_notification", headers=auth(token))
    assert found.status_code == 200
    assert {r["id"] for r in found.json()["items"]} == {california, both}
    assert all(r["consent_requirement"] == "all_party_notification" for r in found.json()["items"])
    one = client.get("/api/v1/recordings?consent_requirement=one_party", headers=auth(token)).json()
    assert [r["id"] for r in one["items"]] == [new_york]
    detail = client.get(f"/api/v1/recordings/{both}", headers=auth(token)).json()
    assert sorted(p["jurisdiction"] or "" for p in detail["participants"]) == ["", "US-CA", "US-NY"]
    assert (
        client.get("/api/v1/recordings?consent_requirement=two_party", headers=auth(token)).status_code == 400
    )


def test_admins_edit_the_table_audited_and_new_calls_follow_it(
    ctx: ServiceContext, client: TestClient, staff: Staff
) -> None:
    admin = auth(staff.tokens["ada"])
    table = client.get("/api/v1/consent/jurisdictions", headers=admin)
    assert table.status_code == 200
    rows = {r["jurisdiction"]: r for r in table.json()["jurisdictions"]}
    assert rows["US-CA"] == {
        "jurisdiction": "US-CA",
        "requirement": "all_party_notification",
        "gdpr": False,
        "name": "California",
        "effective_requirement": "all_party_notification",
        "source": "shipped",
    }
    assert rows["DE"]["gdpr"] and rows["*"]["requirement"] == "all_party_notification"
    for who in ("carol", "sam", "alice", "audrey"):  # admins only
        headers = auth(staff.tokens[who])
        assert client.get("/api/v1/consent/jurisdictions", headers=headers).status_code == 403, who
        put = client.put(
            "/api/v1/consent/jurisdictions/US-NY", headers=headers, json={"requirement": "explicit_consent"}
        )
        assert put.status_code == 403, who

    put = client.put(
        "/api/v1/consent/jurisdictions/us-ny", headers=admin, json={"requirement": "all_party_notification"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "edited" and put.json()["jurisdiction"] == "US-NY"
    assert _requirement(ctx, _call(ctx, "+12125550100")) == "all_party_notification"
    looked = client.get("/api/v1/consent/jurisdictions/lookup?number=%2B12125550100", headers=admin)
    assert looked.json() == {
        "jurisdiction": "US-NY",
        "decided_by": "US-NY",
        "requirement": "all_party_notification",
    }
    reset = client.delete("/api/v1/consent/jurisdictions/US-NY", headers=admin)
    assert reset.status_code == 200 and reset.json()["shipped"] is None  # no shipped row: the country's
    assert _requirement(ctx, _call(ctx, "+12125550100")) == "one_party"
    assert client.delete("/api/v1/consent/jurisdictions/US-NY", headers=admin).status_code == 404
    assert _trail(ctx, "consent_jurisdiction_set", "consent_jurisdiction_reset") == [
        ("ada", "ok", None, "US-NY requirement=all_party_notification gdpr=False"),
        ("ada", "ok", None, "US-NY"),
    ]


@pytest.mark.parametrize(
    ("code", "body", "why"),
    [
        ("US-NY", {"requirement": "two_party"}, "requirement must be one of"),
        ("US-NY", {"requirement": "one_party", "colour": "red"}, "unknown field"),
        ("US-NY", {"requirement": "one_party", "gdpr": "yes"}, "gdpr must be true or false"),
        ("US-NY", {"requirement": "one_party", "name": "x" * 200}, "name must be printable"),
        ("USA", {"requirement": "one_party"}, "ISO 3166"),
        ("XX", {}, "requirement must be one of"),  # a new row needs its requirement
    ],
)
def test_bad_table_edits_are_refused_and_change_nothing(
    ctx: ServiceContext, client: TestClient, staff: Staff, code: str, body: dict[str, Any], why: str
) -> None:
    admin = auth(staff.tokens["ada"])
    before = client.get("/api/v1/consent/jurisdictions", headers=admin).json()
    refused = client.put(f"/api/v1/consent/jurisdictions/{code}", headers=admin, json=body)
    assert refused.status_code == 400 and why in refused.json()["detail"], refused.text
    assert client.get("/api/v1/consent/jurisdictions", headers=admin).json() == before
    assert _trail(ctx, "consent_jurisdiction_set") == []
    bad = client.get("/api/v1/consent/jurisdictions/lookup?number=1001", headers=admin)
    assert bad.status_code == 400


def test_the_gdpr_setting_raises_gdpr_countries_to_explicit_consent(ctx: ServiceContext) -> None:
    settings = ctx.settings
    ctx.close()
    env = {
        "CALLVAULT_DATA_DIR": str(settings.data_dir),
        "CALLVAULT_DATABASE_URL": settings.database_url,
        "CALLVAULT_CONSENT_GDPR_EXPLICIT": "true",
        "CALLVAULT_CONSENT_SITE_JURISDICTION": "us-ca",
    }
    from callvault.settings import load_settings

    gdpr = open_context(load_settings(env=env))
    try:
        assert _requirement(gdpr, _call(gdpr, "+4930123456")) == "explicit_consent"
        # The site (California) is one more party: a New York customer's call needs notification.
        assert _requirement(gdpr, _call(gdpr, "+12125550100")) == "all_party_notification"
        assert _requirement(gdpr, _call(gdpr)) is None  # nobody placed: still unknown
    finally:
        gdpr.close()


def test_consent_on_a_call_that_is_not_live_or_not_in_scope_is_refused(
    ctx: ServiceContext, client: TestClient, staff: Staff
) -> None:
    recording_id = _call(ctx, "+14155550100")  # alice's call, catalogued but not captured here

    def post(who: str, ref: str, body: object) -> Any:
        return client.post(f"/api/v1/calls/{ref}/consent", headers=auth(staff.tokens[who]), json=body)

    ended = post("alice", recording_id, {"state": "objected"})
    assert ended.status_code == 409 and "has ended" in ended.json()["detail"]
    assert post("bob", recording_id, {"state": "objected"}).status_code == 404  # another team's call
    assert post("alice", "no-such-call", {"state": "objected"}).status_code == 404
    assert post("carol", recording_id, {"state": "objected"}).status_code == 403  # no call control
    for body in ({"state": "maybe"}, {}, {"state": "objected", "party": 7}, {"state": "objected", "why": 1}):
        assert post("alice", recording_id, body).status_code == 400, body
    assert post("alice", recording_id, {"state": "objected", "party": "x" * 65}).status_code == 400
    assert _trail(ctx, "call_consent") == [
        (
            "alice",
            "conflict",
            recording_id,
            "party=customer state=objected source=api: cannot set the consent of the call: it has ended",
        ),
    ]
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None and recording.consent_state is None  # nothing applied


def test_the_migration_moves_stored_consent_to_the_new_vocabulary(ctx: ServiceContext) -> None:
    granted, refused, withdrawn = (_call(ctx) for _ in range(3))
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with ctx.catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "qm_0005")
        for recording_id, state in ((granted, "granted"), (refused, "refused"), (withdrawn, "withdrawn")):
            connection.execute(
                text("UPDATE recordings SET consent_state = :state WHERE id = :id"),
                {"state": state, "id": recording_id},
            )
        connection.execute(
            text(
                "INSERT INTO retention_policies (id, name, keep_days, match, legal_obligation, created_at, "
                "created_by) VALUES (1, 'objections', 30, :match, false, :at, 'ada'), "
                "(2, 'teams', 60, :other, false, :at, 'ada')"
            ),
            {
                "match": json.dumps({"consent_states": ["refused", "unknown", "withdrawn"]}),
                "other": json.dumps({"teams": ["red"]}),
                "at": datetime.now(UTC),
            },
        )
    ctx.close()
    upgraded = open_context(ctx.settings)
    try:
        with upgraded.catalog.read() as session:
            states = dict(session.execute(select(Recording.id, Recording.consent_state)).all())
        assert states == {granted: "consented", refused: "objected", withdrawn: "objected"}
        policies = {p["name"]: p["match"] for p in upgraded.retention.list_policies(ADMIN)}
        assert policies == {
            "objections": {"consent_states": ["objected", "unknown"]},
            "teams": {"teams": ["red"]},
        }
    finally:
        upgraded.close()


def test_a_participant_named_by_number_is_stored_in_e164_and_masked_in_the_audit(ctx: ServiceContext) -> None:
    recording_id = _call(ctx, "+14155550100", "+12125550100")
    change = ctx.consent.set(ADMIN, recording_id, "(212) 555-0100", "objected", "api")
    assert change.party == "+12125550100" and change.side == "customer"
    assert change.objecting_sides == frozenset({"customer"}) and change.call_state == "objected"
    again = ctx.consent.set(ADMIN, recording_id, "customer", "consented", "api")
    assert again.previous is None and again.call_state == "objected"  # the New York party still objects
    with pytest.raises(InvalidInput, match="neither customer, agent nor a participant"):
        ctx.consent.set(ADMIN, recording_id, "+4930123456", "objected", "api")
    details = [d for _, _, _, d in _trail(ctx, "call_consent")]
    assert details[1] == "party=customer state=consented source=api"
    assert "2125550100" not in details[0] and details[0].endswith("state=objected source=api")
