"""The search total is the number of matching recordings whichever query counts it
(a tag alone for a caller who sees everything is counted on the tag index)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from callvault.db.models import Call, Recording, RecordingTag
from callvault.services.context import ServiceContext
from callvault.services.search import RecordingQuery
from tests.support.people import create_staff


def test_totals_of_tag_searches_in_every_scope(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    alice, bob = staff.principals["alice"], staff.principals["bob"]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    calls, recordings, tags = [], [], []
    for i in range(60):
        agent = (alice, bob, None)[i % 3]
        call_id, recording_id = str(uuid.uuid4()), str(uuid.uuid4())
        calls.append({"id": call_id, "started_at": base + timedelta(minutes=i), "source": "import"})
        recordings.append(
            {
                "id": recording_id,
                "call_id": call_id,
                "status": "complete",
                "started_at": base + timedelta(minutes=i),
                "queue": "sales" if i % 2 else "support",
                "agent_user_id": agent.user_id if agent else None,
                "team_id": agent.team_id if agent else None,
                "format": "ogg-opus",
                "mixed": False,
                "created_at": base,
            }
        )
        if i % 4 == 0:
            tags += [{"recording_id": recording_id, "tag": "vip"}, {"recording_id": recording_id, "tag": "x"}]
    with ctx.catalog.write() as session:
        session.execute(insert(Call), calls)
        session.execute(insert(Recording), recordings)
        session.execute(insert(RecordingTag), tags)

    def total(who: str, **filters: str) -> int:
        page = ctx.search.search(staff.principals[who], RecordingQuery(limit=5, **filters))  # type: ignore[arg-type]
        return page.total

    tagged = [i for i in range(60) if i % 4 == 0]
    assert total("carol", tag="vip") == len(tagged) == 15
    assert total("carol", tag="vip", queue="support") == len(tagged)  # i % 4 == 0 is even: support
    assert total("carol", tag="vip", queue="sales") == 0
    assert total("sam", tag="vip") == len([i for i in tagged if i % 3 == 0])  # red team: alice's
    assert total("alice", tag="vip") == len([i for i in tagged if i % 3 == 0])
    assert total("carol", tag="none") == 0
