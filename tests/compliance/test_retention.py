"""Retention policies and the sweep, on SQLite and PostgreSQL: exactly what is due goes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callvault.db.models import Call, Participant, Recording
from callvault.errors import Conflict, InvalidInput, KeyUnavailable, PermissionDenied
from callvault.services.context import ServiceContext
from tests.support.people import ADMIN, Staff, create_staff
from tests.support.vault_calls import seal_call


def policy(ctx: ServiceContext, name: str, keep_days: int, **match: list[str]) -> dict[str, object]:
    return ctx.retention.add_policy(ADMIN, {"name": name, "keep_days": keep_days, "match": match})


def row(ctx: ServiceContext, recording_id: str) -> Recording:
    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        return recording


def test_longest_matching_policy_decides_and_sweep_deletes_exactly_the_due(ctx: ServiceContext) -> None:
    policy(ctx, "six months", 180, queues=["support"])
    policy(ctx, "sales", 30, queues=["sales"])
    policy(ctx, "mifid2", 2555, labels=["mifid2"])
    old_sales = seal_call(ctx, days_ago=40, queue="sales")
    old_regulated = seal_call(ctx, days_ago=400, queue="sales")
    ctx.labels.update(ADMIN, old_regulated, {"labels": ["mifid2"]})
    very_old = seal_call(ctx, days_ago=200, queue="support")
    fresh = seal_call(ctx, days_ago=10, queue="sales")
    object_keys = {rid: row(ctx, rid).object_key for rid in (old_sales, very_old)}

    dry = ctx.retention.run(ADMIN, dry_run=True)
    assert dry["count"] == 2 and dry["per_policy"] == {
        "sales": {"count": 1, "bytes": row(ctx, old_sales).object_size},
        "six months": {"count": 1, "bytes": row(ctx, very_old).object_size},
    }
    assert row(ctx, old_sales).deleted_at is None  # a dry run deletes nothing

    preview = ctx.retention.preview(ADMIN, days=25)
    assert preview["now"]["count"] == 2 and preview["next_days"]["count"] == 1  # fresh: due in 20 days

    result = ctx.retention.run(ADMIN)
    assert result["count"] == 2
    for rid in (old_sales, very_old):
        tomb = row(ctx, rid)
        assert tomb.status == "deleted" and tomb.wrapped_key is None and tomb.deletion_state is None
        assert tomb.deletion_reason == "retention" and tomb.customer_number is None
        assert tomb.subject_hashes and all(len(h) == 64 for h in tomb.subject_hashes)
        assert not ctx.blobs.exists(str(object_keys[rid]))
        with ctx.catalog.read() as session:
            call = session.get(Call, tomb.call_id)
            assert call is not None and call.calling_number is None
            numbers = session.scalars(select(Participant.number).where(Participant.call_id == tomb.call_id))
            assert set(numbers) == {None}
        with pytest.raises(KeyUnavailable):
            ctx.playback.open_audio(ADMIN, rid)
    assert row(ctx, old_sales).deletion_basis == "sales"
    assert row(ctx, old_regulated).deleted_at is None and row(ctx, fresh).deleted_at is None
    detail = ctx.search.get(ADMIN, old_sales)
    assert detail["status"] == "deleted" and detail["tombstone"]["reason"] == "retention"
    assert ctx.retention.run(ADMIN)["count"] == 0  # idempotent
    report = ctx.integrity.verify_all(ADMIN)  # tombstones are re-signed and in the seal log
    assert report.ok, [(r.recording_id, r.problems) for r in report.results if not r.ok] + report.log_problems


def test_nothing_is_deleted_without_a_policy_or_default(ctx: ServiceContext) -> None:
    seal_call(ctx, days_ago=5000)
    assert ctx.retention.run(ADMIN)["count"] == 0


def test_sweep_killed_after_the_crypto_shred_is_finished_by_the_next_run(ctx: ServiceContext) -> None:
    policy(ctx, "short", 1)
    ids = [seal_call(ctx, days_ago=3) for _ in range(3)]
    keys = [row(ctx, rid).object_key for rid in ids]
    # The first step of a sweep commits, then the process dies before removing objects.
    marked = ctx.deletion.mark(ADMIN, ids[:2], "retention", "short")
    assert sorted(marked.deleted) == sorted(ids[:2])
    assert all(row(ctx, rid).deletion_state == "pending" for rid in ids[:2])
    assert all(ctx.blobs.exists(str(k)) for k in keys)
    with pytest.raises(KeyUnavailable):
        ctx.playback.open_audio(ADMIN, ids[0])  # the audio is already unrecoverable
    result = ctx.retention.run(ADMIN)
    assert result["resumed"] == 2 and result["count"] == 1
    assert not any(ctx.blobs.exists(str(k)) for k in keys)
    assert all(row(ctx, rid).deletion_state is None and row(ctx, rid).status == "deleted" for rid in ids)


def test_bad_and_conflicting_policies_are_refused_and_nothing_stored(ctx: ServiceContext) -> None:
    policy(ctx, "sales", 30, queues=["sales"])
    bad = [
        {"name": "", "keep_days": 3},
        {"name": "x", "keep_days": 0},
        {"name": "x", "keep_days": "30"},
        {"name": "x", "keep_days": 30, "match": {"colour": ["red"]}},
        {"name": "x", "keep_days": 30, "match": {"directions": ["sideways"]}},
        {"name": "x", "keep_days": 30, "match": {"queues": [""]}},
        {"name": "x", "keep_days": 30, "legal_obligation": "yes"},
    ]
    for body in bad:
        with pytest.raises(InvalidInput):
            ctx.retention.add_policy(ADMIN, body)
    with pytest.raises(Conflict, match="already exists"):
        policy(ctx, "sales", 60)
    with pytest.raises(Conflict, match="exactly these conditions"):
        policy(ctx, "sales again", 60, queues=["sales"])
    assert [p["name"] for p in ctx.retention.list_policies(ADMIN)] == ["sales"]


def test_only_compliance_roles_manage_retention(ctx: ServiceContext) -> None:
    staff: Staff = create_staff(ctx)
    with pytest.raises(PermissionDenied):
        ctx.retention.run(staff.principals["sam"])
    policy(ctx, "p", 10)
    assert ctx.retention.list_policies(staff.principals["carol"])
