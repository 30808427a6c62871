"""Legal holds: block every deletion path, cover recordings sealed later, release with two people."""

from __future__ import annotations

import pytest

from callvault.db.models import Recording
from callvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN, create_staff
from tests.support.vault_calls import seal_call


def deleted(ctx: ServiceContext, recording_id: str) -> bool:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        return recording.deleted_at is not None


def test_hold_blocks_retention_erasure_and_destroy_audio_until_two_people_release_it(
    ctx: ServiceContext,
) -> None:
    staff = create_staff(ctx)
    carol = staff.principals["carol"]
    ctx.retention.add_policy(ADMIN, {"name": "short", "keep_days": 1})
    held = seal_call(ctx, days_ago=5, customer="+14155550123")
    free = seal_call(ctx, days_ago=5, customer="+14155550999")

    hold = ctx.holds.create(
        carol,
        {"name": "Smith v. Acme", "reason": "litigation", "criteria": {"customers": ["(415) 555-0123"]}},
    )
    assert hold["held"] == 1 and hold["criteria"] == {"customers": ["+14155550123"]}
    later = seal_call(ctx, days_ago=3, customer="415.555.0123")  # sealed after the hold: held too
    assert ctx.holds.get(carol, hold["id"])["held"] == 2

    with pytest.raises(Conflict, match="Smith v. Acme"):
        ctx.playback.destroy_audio(ADMIN, held, "operator")
    run = ctx.retention.run(ADMIN)
    assert run["count"] == 1 and run["held"] == 2
    assert deleted(ctx, free) and not deleted(ctx, held) and not deleted(ctx, later)
    request = ctx.erasure.create(carol, {"subject": {"phone": "+1 415 555 0123"}})
    result = ctx.erasure.execute(carol, request["id"])
    assert result["erased"] == []
    assert {k["recording_id"]: k["reason"] for k in result["kept"]} == {
        held: "legal hold 'Smith v. Acme'",
        later: "legal hold 'Smith v. Acme'",
    }

    ctx.holds.request_release(carol, hold["id"])
    with pytest.raises(PermissionDenied, match="someone other"):
        ctx.holds.approve_release(carol, hold["id"])
    assert ctx.retention.run(ADMIN)["count"] == 0  # a requested release does not release
    released = ctx.holds.approve_release(ADMIN, hold["id"])
    assert released["status"] == "released" and released["released_by"] == ADMIN.username
    assert ctx.retention.run(ADMIN)["count"] == 2
    assert deleted(ctx, held) and deleted(ctx, later)


def test_bad_and_overlapping_holds_are_refused(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    carol = staff.principals["carol"]
    base = {"name": "case", "reason": "r"}
    bad_criteria = [
        {},
        {"customers": ["not a number"]},
        {"agents": ["nobody"]},
        {"teams": ["green"]},
        {"from": "yesterday"},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"colour": ["red"]},
    ]
    for criteria in bad_criteria:
        with pytest.raises(InvalidInput):
            ctx.holds.create(carol, {**base, "criteria": criteria})
    ctx.holds.create(carol, {**base, "criteria": {"agents": ["alice"], "teams": ["red"]}})
    with pytest.raises(Conflict):
        ctx.holds.create(carol, {**base, "criteria": {"agents": ["bob"]}})
    with pytest.raises(Conflict, match="exactly these criteria"):
        ctx.holds.create(
            carol, {"name": "other", "reason": "r", "criteria": {"teams": ["red"], "agents": ["alice"]}}
        )
    with pytest.raises(PermissionDenied):
        ctx.holds.create(staff.principals["sam"], {**base, "criteria": {"agents": ["bob"]}})
    with pytest.raises(NotFound):
        ctx.holds.request_release(carol, 999)
    with pytest.raises(Conflict, match="not been requested"):
        ctx.holds.approve_release(ADMIN, 1)
    assert len(ctx.holds.list(carol)) == 1


def test_hold_by_call_id_and_date_range(ctx: ServiceContext) -> None:
    carol = create_staff(ctx).principals["carol"]
    by_call = seal_call(ctx, days_ago=2, sip_call_id="abc@sbc")
    seal_call(ctx, days_ago=2)
    old = seal_call(ctx, days_ago=30)
    hold = ctx.holds.create(carol, {"name": "c1", "reason": "r", "criteria": {"call_ids": ["abc@sbc"]}})
    assert hold["held"] == 1
    with pytest.raises(Conflict):
        ctx.playback.destroy_audio(ADMIN, by_call, "x")
    hold2 = ctx.holds.create(
        carol,
        {
            "name": "c2",
            "reason": "r",
            "criteria": {"to": "2000-01-01T00:00:00+00:00", "recording_ids": [old]},
        },
    )
    assert hold2["held"] == 0
