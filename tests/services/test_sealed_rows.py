"""Sealing writes streams and events as plain rows and signs a manifest from the values
written: the manifest rebuilt from the stored rows at verification must be the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callvault.crypto.signing import canonical_json
from callvault.db.models import Participant, Recording, RecordingEvent, Stream
from callvault.services.call_record import (
    ArchiveAudio,
    CallEvent,
    CallRecord,
    ParticipantRecord,
    StreamRecord,
)
from callvault.services.context import ServiceContext
from callvault.services.manifest import build_manifest
from tests.support.people import ADMIN


def _call(start: datetime) -> CallRecord:
    return CallRecord(
        started_at=start,
        source="siprec",
        direction="inbound",
        calling_number="+14155550100",
        called_number="1001",
        sip_call_ids=["abc@sbc", "abc@sbc"],
        external_ids={"ucid": "00001"},
        tags=["vip", " vip ", ""],
        participants=[
            ParticipantRecord(aor="sip:+14155550100@sbc", role="customer", joined_at=start),
            ParticipantRecord(aor="sip:1001@pbx.example", role="other"),
        ],
    )


def test_sealed_manifest_is_the_one_rebuilt_from_the_rows(ctx: ServiceContext) -> None:
    agent = ctx.users.create_user(ADMIN, "erin", "agent", team="west", sip_identities=["1001@pbx.example"])
    start = datetime(2024, 6, 1, 9, 30, 0, 123456, tzinfo=UTC)
    recording_id = ctx.recordings.begin(_call(start))
    # Values a JSON column does not give back as they went in: a tuple, an int key.
    streams = [
        StreamRecord("agent", "PCMU", 0, "sip:1001@pbx.example", {"packets_expected": 500, "ssrcs": (1, 2)}),
        StreamRecord("customer", "PCMA", 1, None, {"packets_expected": 500, "packets_lost": 5}),
    ]
    events = [CallEvent("hold", 1.23456, {"by": "agent", 7: "seven"}), CallEvent("resume", 2.5)]
    audio = ArchiveAudio(data=b"\x01" * 4000, sample_rate=48000, channels=2, duration_seconds=20.0)
    ctx.recordings.finalise(recording_id, audio, "complete", streams, events, start + timedelta(seconds=20))

    with ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        assert recording.status == "complete" and recording.agent_user_id == agent.id
        assert recording.team_id is not None
        assert recording.manifest == canonical_json(build_manifest(session, recording)).decode()
        stored = session.scalars(select(Stream.stats).where(Stream.recording_id == recording_id)).all()
        assert {"packets_expected": 500, "ssrcs": [1, 2]} in stored
        offsets = session.scalars(
            select(RecordingEvent.offset_seconds).where(RecordingEvent.recording_id == recording_id)
        ).all()
        assert sorted(offsets) == [1.235, 2.5]
        roles = session.scalars(
            select(Participant.role).where(Participant.call_id == recording.call_id)
        ).all()
        assert sorted(roles) == ["agent", "customer"]  # the directory's agent, resolved once
    assert all(r.ok for r in ctx.integrity.verify(ADMIN))
    assert ctx.search.get(ADMIN, recording_id)["tags"] == ["vip"]
