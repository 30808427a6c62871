"""One alerts service for every kind: raised once, audited, announced, counted, listed by kind."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from callvault.api.app import create_app
from callvault.db.catalog import _MIGRATIONS
from callvault.services.access import Principal
from callvault.services.alerts import MUST_RECORD_NOT_RECORDED, NewAlert
from callvault.services.context import ServiceContext, open_context
from callvault.services.events import DomainEvent
from tests.api.conftest import auth
from tests.support.people import ADMIN, create_staff


class Collector:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def handle(self, event: DomainEvent) -> None:
        self.events.append(event)


def _counted(kind: str) -> float:
    return REGISTRY.get_sample_value("callvault_alerts_total", {"kind": kind}) or 0.0


def test_a_recording_alert_is_raised_once_audited_announced_and_listed(ctx: ServiceContext) -> None:
    staff = create_staff(ctx)
    collector = Collector()
    ctx.events.subscribe(collector)
    before = _counted(MUST_RECORD_NOT_RECORDED)
    alert = NewAlert(
        MUST_RECORD_NOT_RECORDED,
        "call of must-record user alice not recorded (rule 'HR line')",
        username="alice",
        recording_id="0b0e8c52-0000-4000-8000-000000000001",
    )
    first = ctx.alerts.raise_alert(alert, Principal.system())
    assert first is not None and first["recording_id"] == alert.recording_id
    assert ctx.alerts.raise_alert(alert, Principal.system()) is None  # the same recording: once
    assert _counted(MUST_RECORD_NOT_RECORDED) == before + 1
    assert [e.data["id"] for e in collector.events if e.type == "alert.raised"] == [first["id"]]
    trail = [e for e in ctx.access_log.list(ADMIN, limit=100) if e.action == "alert_raised"]
    assert [(e.username, e.recording_id, e.detail) for e in trail] == [
        ("system", alert.recording_id, f"alert {first['id']}: {alert.detail}")
    ]
    with TestClient(create_app(ctx)) as api:
        audrey = auth(staff.tokens["audrey"])
        listed = api.get("/api/v1/alerts", params={"kind": MUST_RECORD_NOT_RECORDED}, headers=audrey)
        assert [a["detail"] for a in listed.json()["items"]] == [alert.detail]
        assert api.get("/api/v1/alerts", params={"kind": "role_limit"}, headers=audrey).json()["items"] == []
        assert api.get("/api/v1/alerts", headers=auth(staff.tokens["alice"])).status_code == 403


def test_usage_alerts_survive_the_move_to_one_alerts_table(ctx: ServiceContext) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with ctx.catalog.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "audit_0003")
        connection.execute(
            text(
                "INSERT INTO usage_alerts (id, at, username, user_id, role, kind, count, threshold, "
                "window_seconds) VALUES (7, :at, 'alice', 3, 'agent', 'role_limit', 61, 60, 3600)"
            ),
            {"at": datetime(2026, 3, 1, 9, tzinfo=UTC)},
        )
    ctx.close()
    upgraded = open_context(ctx.settings)
    try:
        [kept] = upgraded.alerts.list(ADMIN)
        assert kept == {
            "id": 7,
            "at": "2026-03-01T09:00:00.000000+00:00",
            "kind": "role_limit",
            "user": "alice",
            "role": "agent",
            "count": 61,
            "threshold": 60,
            "window_seconds": 3600,
            "recording_id": None,
            "detail": None,
        }
    finally:
        upgraded.close()
