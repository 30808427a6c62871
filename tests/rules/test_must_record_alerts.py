"""A must-record call that ended without audio or not whole raises one alert; other calls none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callvault.services.alerts import MUST_RECORD_INCOMPLETE, MUST_RECORD_NOT_RECORDED
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext
from callvault.services.must_record_alerts import MustRecordAlerts
from tests.support.people import ADMIN, create_staff


def _call(ctx: ServiceContext, username: str, status: str | None) -> str:
    user_id = next(u.id for u in ctx.users.list_users(ADMIN) if u.username == username)
    started = datetime.now(UTC) - timedelta(minutes=2)
    record = CallRecord(
        started_at=started,
        source="siprec",
        participants=[
            ParticipantRecord("sip:1001@pbx.example", role="agent", user_id=user_id, resolved=True),
            ParticipantRecord("sip:+14155550199@carrier.example", role="customer", resolved=True),
        ],
    )
    rule = {"status": status, "rule_name": "HR", "rule_action": "do_not_record"} if status else None
    recording_id = ctx.recordings.begin(record, None, rule)
    if status:
        ctx.recordings.end_without_audio(recording_id, status, started + timedelta(seconds=90))
    return recording_id


def test_alerts_for_must_record_calls_not_recorded_or_not_whole(ctx: ServiceContext) -> None:
    create_staff(ctx)
    ctx.users.set_must_record(ADMIN, "alice", True)
    check = MustRecordAlerts(ctx.catalog, ctx.alerts).check
    missed = _call(ctx, "alice", "not_recorded")
    assert check(missed) == MUST_RECORD_NOT_RECORDED
    assert check(missed) == MUST_RECORD_NOT_RECORDED  # asked twice: still one alert
    other = _call(ctx, "bob", "not_recorded")
    assert check(other) is None  # bob is not regulated
    broken = _call(ctx, "alice", None)
    ctx.recordings.mark_interrupted_without_audio(broken)
    assert check(broken) == MUST_RECORD_INCOMPLETE
    alerts = ctx.alerts.list(ADMIN)
    assert sorted((a["kind"], a["recording_id"], a["user"]) for a in alerts) == sorted(
        [(MUST_RECORD_NOT_RECORDED, missed, "alice"), (MUST_RECORD_INCOMPLETE, broken, "alice")]
    )
    assert "must-record call of alice is not recorded" in {a["detail"] for a in alerts}
