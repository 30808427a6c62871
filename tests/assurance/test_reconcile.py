"""Reconciliation on the catalogue (SQLite and PostgreSQL): outcomes from recording statuses,
idempotent records, grace, late recordings, deduplicated must-record alerts, gauges."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from callvault.db.assurance_models import ExpectedCall
from callvault.services.alerts import NewAlert
from callvault.services.call_record_input import CallRecordInput
from callvault.services.context import ServiceContext
from tests.assurance.conftest import CUSTOMER, OTHER_CUSTOMER, T0, Catalogued, catalogue, must_record
from tests.support.people import ADMIN, create_staff


@pytest.fixture(autouse=True)
def _people(ctx: ServiceContext) -> None:
    create_staff(ctx)


def _record(pbx_id: str, at: datetime = T0, **values: str | None) -> CallRecordInput:
    fields: dict[str, str | None] = {"calling_number": CUSTOMER, "agent": "alice"} | values
    return CallRecordInput(pbx_id, at, at + timedelta(minutes=2), "inbound", **fields)  # type: ignore[arg-type]


def _load(ctx: ServiceContext, records: list[CallRecordInput]) -> dict[str, object]:
    stored = ctx.call_records.store(ADMIN, records, "test")
    return ctx.assurance.reconcile(ADMIN, ids=stored.ids)


def _outcomes(ctx: ServiceContext) -> dict[str, tuple[str, str | None, str | None]]:
    with ctx.catalog.read() as session:
        rows = session.scalars(select(ExpectedCall))
        return {r.pbx_call_id: (r.outcome, r.recording_id, r.matched_by) for r in rows}


def _alerts(ctx: ServiceContext) -> list[dict[str, object]]:
    return [a for a in ctx.alerts.list(ADMIN) if str(a["kind"]).startswith("must_record")]


def test_every_status_gives_its_outcome_by_call_id_or_numbers_and_time(ctx: ServiceContext) -> None:
    complete = catalogue(ctx, Catalogued("complete", identifiers={"sip_call_id": "a@sbc"}))
    incomplete = catalogue(ctx, Catalogued("incomplete", T0 + timedelta(minutes=10)))
    interrupted = catalogue(ctx, Catalogued("interrupted", T0 + timedelta(minutes=20)))
    by_rule = catalogue(ctx, Catalogued("not_recorded", T0 + timedelta(minutes=30), customer=OTHER_CUSTOMER))
    not_kept = catalogue(ctx, Catalogued("not_kept", identifiers={"ucid": "00001002441638267012"}))
    result = _load(
        ctx,
        [
            _record("c-complete", T0 + timedelta(seconds=40), sip_call_id="a@sbc", calling_number=None),
            _record("c-incomplete", T0 + timedelta(minutes=10, seconds=12)),
            _record("c-interrupted", T0 + timedelta(minutes=20, seconds=-25)),
            _record("c-rule", T0 + timedelta(minutes=30), calling_number=OTHER_CUSTOMER),
            _record("c-not-kept", T0 + timedelta(hours=5), vendor_call_id="00001002441638267012"),
            _record("c-missing", T0 + timedelta(minutes=40)),
        ],
    )
    assert _outcomes(ctx) == {
        "c-complete": ("recorded_complete", complete, "sip_call_id"),
        "c-incomplete": ("incomplete", incomplete, "numbers_time"),
        "c-interrupted": ("interrupted", interrupted, "numbers_time"),
        "c-rule": ("not_recorded_by_rule", by_rule, "numbers_time"),
        "c-not-kept": ("not_recorded_by_rule", not_kept, "ucid"),
        "c-missing": ("missing", None, None),
    }
    assert result["outcomes"] == {
        "recorded_complete": 1,
        "incomplete": 1,
        "interrupted": 1,
        "not_recorded_by_rule": 2,
        "missing": 1,
        "pending": 0,
    }
    assert REGISTRY.get_sample_value("callvault_assurance_last_calls", {"outcome": "missing"}) == 1
    assert (
        REGISTRY.get_sample_value("callvault_assurance_last_calls", {"outcome": "not_recorded_by_rule"}) == 2
    )
    stamp = REGISTRY.get_sample_value("callvault_assurance_last_reconciliation_timestamp_seconds")
    assert stamp is not None and abs(stamp - datetime.now(UTC).timestamp()) < 120


def test_records_are_idempotent_on_the_pbx_call_id_and_a_correction_is_reconciled_again(
    ctx: ServiceContext,
) -> None:
    first = ctx.call_records.store(ADMIN, [_record("c-1"), _record("c-2")], "test")
    again = ctx.call_records.store(ADMIN, [_record("c-1"), _record("c-2")], "test")
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.created, again.updated, again.unchanged, again.ids) == (0, 0, 2, [])
    ctx.assurance.reconcile(ADMIN, ids=first.ids)
    assert _outcomes(ctx)["c-2"][0] == "missing"
    recording = catalogue(ctx, Catalogued(identifiers={"sip_call_id": "late@sbc"}))
    corrected = ctx.call_records.store(ADMIN, [_record("c-2", sip_call_id="late@sbc")], "test")
    assert (corrected.updated, len(corrected.ids)) == (1, 1)
    ctx.assurance.reconcile(ADMIN, ids=corrected.ids)
    assert _outcomes(ctx)["c-2"] == ("recorded_complete", recording, "sip_call_id")
    with ctx.catalog.read() as session:
        assert session.scalar(select(func.count()).select_from(ExpectedCall)) == 2
        # No second copy of customers' numbers: only keyed hashes, the same for every spelling.
        stored = [str(v) for r in session.scalars(select(ExpectedCall)) for v in vars(r).values()]
        assert not any("5550199" in v for v in stored)
        hashes = {r.calling_hash for r in session.scalars(select(ExpectedCall))}
        assert len(hashes) == 1 and len(next(iter(hashes)) or "") == 64
    spelled = ctx.call_records.store(ADMIN, [_record("c-3", calling_number="tel:(415) 555-0199")], "test")
    with ctx.catalog.read() as session:
        row = session.get(ExpectedCall, spelled.ids[0])
        assert row is not None and row.calling_hash in hashes
    details = [e.detail for e in ctx.access_log.list(ADMIN, limit=100) if e.action == "call_records_import"]
    assert "source=test received=2 created=0 updated=0 unchanged=2" in details
    assert not any(CUSTOMER in (e.detail or "") for e in ctx.access_log.list(ADMIN, limit=1000))


def test_a_call_within_the_grace_time_is_pending_and_a_late_recording_is_found(ctx: ServiceContext) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _load(ctx, [_record("c-now", now - timedelta(minutes=2), calling_number="+14155550111")])
    assert _outcomes(ctx)["c-now"][0] == "pending"  # ended just now: its recording may still come
    running = catalogue(ctx, Catalogued("recording", now - timedelta(minutes=2), customer="+14155550111"))
    ctx.assurance.reconcile(ADMIN, undecided_only=True)
    assert _outcomes(ctx)["c-now"] == ("pending", running, "numbers_time")  # still being recorded


def test_missing_and_incomplete_must_record_calls_raise_one_alert_each(ctx: ServiceContext) -> None:
    must_record(ctx, "alice")
    incomplete = catalogue(ctx, Catalogued("incomplete", identifiers={"sip_call_id": "i@sbc"}))
    catalogue(ctx, Catalogued("complete", T0 + timedelta(hours=1), identifiers={"sip_call_id": "ok@sbc"}))
    records = [
        _record("alice-missing", T0 + timedelta(hours=2)),
        _record("alice-incomplete", sip_call_id="i@sbc"),
        _record("alice-ok", T0 + timedelta(hours=1), sip_call_id="ok@sbc"),
        _record("bob-missing", T0 + timedelta(hours=3), agent="bob"),
    ]
    assert _load(ctx, records)["alerts"] == 2
    ctx.assurance.reconcile(ADMIN)  # again: nothing new
    alerts = _alerts(ctx)
    assert sorted((a["kind"], a["recording_id"], a["user"]) for a in alerts) == [
        ("must_record_incomplete", incomplete, "alice"),
        ("must_record_not_recorded", None, "alice"),
    ]
    missing = next(a for a in alerts if a["kind"] == "must_record_not_recorded")
    assert "alice-missing" in str(missing["detail"]) and CUSTOMER not in str(missing["detail"])
    # Someone else noticing the same recording (the recorder at call end) raises nothing new.
    again = ctx.alerts.raise_alert(NewAlert("must_record_incomplete", "x", recording_id=incomplete), ADMIN)
    assert again is None


def test_an_agent_the_pbx_did_not_name_is_taken_from_the_recording(ctx: ServiceContext) -> None:
    catalogue(ctx, Catalogued(identifiers={"sip_call_id": "x@sbc"}))
    _load(ctx, [_record("c-1", agent=None, sip_call_id="x@sbc")])
    with ctx.catalog.read() as session:
        row = session.scalar(select(ExpectedCall))
        assert row is not None and row.agent_user_id is not None and row.team_id is not None


def test_a_batch_larger_than_one_chunk_is_reconciled_whole(ctx: ServiceContext) -> None:
    recording = catalogue(ctx, Catalogued(identifiers={"sip_call_id": "last@sbc"}))
    records = [_record(f"c-{i}", T0 + timedelta(minutes=i), calling_number=None) for i in range(1200)]
    records[-1] = _record("c-1199", T0 + timedelta(minutes=1199), calling_number=None, sip_call_id="last@sbc")
    result = _load(ctx, records)
    assert result["reconciled"] == 1200
    assert result["outcomes"]["missing"] == 1199 and result["outcomes"]["recorded_complete"] == 1
    assert _outcomes(ctx)["c-1199"] == ("recorded_complete", recording, "sip_call_id")


def test_the_same_batch_sent_at_once_from_several_connections_is_stored_once(ctx: ServiceContext) -> None:
    batch = [_record(f"race-{i}", T0 + timedelta(minutes=i)) for i in range(50)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ctx.call_records.store(ADMIN, batch, "test"), range(4)))
    assert sum(r.created for r in results) == 50
    assert sum(r.unchanged for r in results) == 150
    with ctx.catalog.read() as session:
        assert session.scalar(select(func.count()).select_from(ExpectedCall)) == 50


def test_erasing_a_customers_number_drops_it_from_the_call_records(ctx: ServiceContext) -> None:
    catalogue(ctx, Catalogued(customer=CUSTOMER))
    _load(
        ctx,
        [_record("theirs", calling_number="(415) 555-0199"), _record("other", calling_number=OTHER_CUSTOMER)],
    )
    request = ctx.erasure.create(ADMIN, {"subject": {"phone": CUSTOMER}})
    ctx.erasure.execute(ADMIN, request["id"])
    with ctx.catalog.read() as session:
        hashes = {r.pbx_call_id: r.calling_hash for r in session.scalars(select(ExpectedCall))}
    assert hashes["theirs"] is None and hashes["other"] is not None
    assert _outcomes(ctx).keys() == {"theirs", "other"}  # the records themselves stay
