"""Usage monitoring: an agent pulling 200 recordings in an hour raises one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import REGISTRY

from callvault.db.audit_chain import AuditBody
from callvault.services.context import ServiceContext
from callvault.services.events import DomainEvent
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.support.audio import stereo_wav, voice
from tests.support.people import ADMIN, Staff

RATE = 8000


class Collector:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def handle(self, event: DomainEvent) -> None:
        self.events.append(event)


def _alerts_counted(role: str) -> float:
    return (
        REGISTRY.get_sample_value("callvault_usage_alerts_total", {"kind": "role_limit", "role": role}) or 0.0
    )


def test_agent_playing_200_recordings_in_an_hour_raises_one_alert(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    wav = stereo_wav(voice(0.5, RATE, 120, 1), voice(0.5, RATE, 200, 2), RATE)
    recordings = [ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice")) for _ in range(4)]
    collector = Collector()
    ctx.events.subscribe(collector)
    before = _alerts_counted("agent")
    alice = staff.principals["alice"]
    for i in range(200):
        ctx.playback.open_audio(alice, recordings[i % len(recordings)], "ogg")
    raised = [e for e in collector.events if e.type == "alert.raised"]
    assert len(raised) == 1 and raised[0].data["user"] == "alice"
    assert raised[0].data["count"] == 61 and raised[0].data["threshold"] == 60
    assert _alerts_counted("agent") == before + 1
    listed = client.get("/api/v1/alerts", headers=auth(staff.tokens["audrey"])).json()["items"]
    assert [(a["user"], a["kind"]) for a in listed] == [("alice", "role_limit")]
    trail = client.get(
        "/api/v1/audit/events", params={"action": "alert_raised"}, headers=auth(staff.tokens["audrey"])
    ).json()
    assert trail["total"] == 1 and trail["items"][0]["username"] == "alice"
    assert client.get("/api/v1/alerts", headers=auth(staff.tokens["alice"])).status_code == 403
    # Sam (supervisor) plays a few: under every limit, no alert.
    for recording_id in recordings:
        ctx.playback.open_audio(staff.principals["sam"], recording_id, "ogg")
    assert len([e for e in collector.events if e.type == "alert.raised"]) == 1


def test_own_baseline_catches_an_unusual_hour(ctx: ServiceContext, staff: Staff) -> None:
    wav = stereo_wav(voice(0.5, RATE, 120, 1), voice(0.5, RATE, 200, 2), RATE)
    recording_id = ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))
    sam = staff.principals["sam"]
    # A week of history: two downloads a day.
    now = datetime.now(UTC)
    with ctx.catalog.write() as session:
        ctx.audit_log.append_many(
            session,
            [
                AuditBody(
                    now - timedelta(days=d, hours=h),
                    sam.user_id,
                    "sam",
                    "download",
                    recording_id,
                    None,
                    None,
                    "ok",
                )
                for d in range(1, 7)
                for h in (2, 5)
            ],
        )
    collector = Collector()
    ctx.events.subscribe(collector)
    for _ in range(31):  # far over 5 x his average, under the supervisor limit of 150
        ctx.playback.open_audio(sam, recording_id, "ogg", download=True)
    raised = [e.data for e in collector.events if e.type == "alert.raised"]
    assert [(a["user"], a["kind"], a["threshold"]) for a in raised] == [("sam", "baseline", 30)]
