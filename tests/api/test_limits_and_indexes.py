"""Upload size limit, and the search service's own queries answered from indexes in page order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert, select

from callvault.db.models import Call, Recording
from callvault.services.access import Principal
from callvault.services.context import ServiceContext, open_context
from callvault.services.search import RecordingQuery
from tests.api.conftest import auth, serving
from tests.conftest import make_settings
from tests.support.audio import stereo_wav, voice
from tests.support.people import Staff, create_staff


def test_oversized_upload_is_refused_and_nothing_stored(data_dir: Path, database_url: str) -> None:
    ctx = open_context(
        make_settings(data_dir, database_url, max_upload_bytes="50000", sip_port="0", http_port="0")
    )
    try:
        staff = create_staff(ctx)
        with serving(ctx) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            big = stereo_wav(voice(5, 8000, 120, 1), voice(5, 8000, 200, 2), 8000)
            assert len(big) > 50000
            response = client.post(
                "/api/v1/recordings", headers=auth(staff.tokens["carol"]), files={"file": ("big.wav", big)}
            )
            assert response.status_code == 413
            assert "CALLVAULT_MAX_UPLOAD_BYTES" in response.json()["detail"]
            assert list(ctx.blobs.list("")) == []
    finally:
        ctx.close()


def populate(ctx: ServiceContext, staff: Staff, count: int) -> None:
    """``count`` catalogue rows written directly (no audio): enough for realistic plans, with
    each filter value selective as in a real contact centre (most calls belong to other agents).
    Start times repeat in threes, so the id tie-breaker decides the order of equals."""
    agents = [staff.principals[name] for name in ("alice", "bob", "dana")]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    calls, recordings = [], []
    for i in range(count):
        agent = agents[i % 20] if i % 20 < len(agents) else None
        started = base + timedelta(minutes=i // 3)
        call_id = str(uuid.UUID(int=i + 1))
        calls.append({"id": call_id, "started_at": started, "source": "import"})
        recordings.append(
            {
                "id": str(uuid.UUID(int=(i * 7919) % 100_003 + 1, version=4)),  # ids not in time order
                "call_id": call_id,
                "status": "incomplete" if i % 20 == 7 else "complete",
                "started_at": started,
                "duration_seconds": float(i % 17),
                "direction": "outbound" if i % 20 == 5 else "inbound",
                "queue": f"queue-{i % 20}",
                "customer_number": f"+1415555{i % 50:04d}",
                "agent_user_id": agent.user_id if agent else None,
                "team_id": agent.team_id if agent else None,
                "format": "ogg-opus",
                "mixed": False,
                "created_at": started,
            }
        )
    with ctx.catalog.write() as session:
        session.execute(insert(Call), calls)
        session.execute(insert(Recording), recordings)
    with ctx.catalog.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def search_statement(ctx: ServiceContext, principal: Principal, query: RecordingQuery) -> tuple[str, Any]:
    """The page query the search service sends to the database, with its parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if "FROM recordings" in statement and "ORDER BY" in statement:
            sent.append((statement, parameters))

    event.listen(ctx.catalog.engine, "before_cursor_execute", capture)
    try:
        ctx.search.search(principal, query)
    finally:
        event.remove(ctx.catalog.engine, "before_cursor_execute", capture)
    assert len(sent) == 1, sent
    return sent[0]


def query_plan(ctx: ServiceContext, statement: str, parameters: Any) -> str:
    explain = "EXPLAIN QUERY PLAN " if ctx.catalog.is_sqlite else "EXPLAIN "
    with ctx.catalog.engine.connect() as conn:
        if not ctx.catalog.is_sqlite:
            # On a test-sized table PostgreSQL may rightly prefer a bitmap scan and a small
            # sort; with those off it shows whether an index can give the page order at all
            # (if none can, the plan still has a Sort or Incremental Sort node).
            conn.exec_driver_sql("SET enable_seqscan = off")
            conn.exec_driver_sql("SET enable_bitmapscan = off")
        rows = conn.exec_driver_sql(explain + statement, parameters).fetchall()
        conn.rollback()
    return "\n".join(str(row[-1]) for row in rows)


SEARCHES = [  # who searches, with which filters, and the index that must answer in page order
    ("carol", {}, "ix_recordings_started"),
    ("carol", {"sort": "started_at"}, "ix_recordings_started"),
    ("carol", {"started_from": datetime(2026, 1, 2, tzinfo=UTC)}, "ix_recordings_started"),
    ("carol", {"sort": "-duration"}, "ix_recordings_duration"),
    ("carol", {"sort": "duration"}, "ix_recordings_duration"),
    ("sam", {}, "ix_recordings_team_started"),  # supervisor: team scope
    ("alice", {}, "ix_recordings_agent_started"),  # agent: own scope
    ("carol", {"agent": "alice"}, "ix_recordings_agent_started"),
    ("carol", {"customer": "+14155550007"}, "ix_recordings_customer_started"),
    ("carol", {"queue": "queue-3"}, "ix_recordings_queue_started"),
    ("carol", {"direction": "outbound"}, "ix_recordings_direction_started"),
    ("carol", {"status": "incomplete"}, "ix_recordings_status_started"),
]


def test_search_queries_read_pages_in_index_order(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    populate(ctx, staff, 3000)
    for who, filters, index in SEARCHES:
        statement, parameters = search_statement(ctx, staff.principals[who], RecordingQuery(**filters))
        plan = query_plan(ctx, statement, parameters)
        assert index in plan, (who, filters, plan)
        # Sorted by the index, not after the fact (SQLite: a temp b-tree; PostgreSQL: a Sort node).
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, (who, filters, statement, plan)


def test_pages_follow_start_time_then_id_and_neither_repeat_nor_skip(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    populate(ctx, staff, 40)
    carol = staff.principals["carol"]
    with ctx.catalog.read() as session:
        rows = session.execute(select(Recording.started_at, Recording.id)).all()
    for sort, reverse in (("-started_at", True), ("started_at", False)):
        expected = [rid for _, rid in sorted(rows, key=lambda r: (r[0], r[1]), reverse=reverse)]
        paged = [
            item["id"]
            for offset in range(0, 40, 7)
            for item in ctx.search.search(carol, RecordingQuery(limit=7, offset=offset, sort=sort)).items
        ]
        assert paged == expected, sort
