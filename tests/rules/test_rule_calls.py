"""Recording rules end to end: SIPREC calls from the test SRC into `callvault serve`'s composition root.

What a compliance officer checks: a do-not-record call is catalogued (participants, times, the
rule's name) with no audio anywhere, not a byte in the spool; an on-demand call nobody kept
leaves no audio, one kept is sealed; a sampled rule records its share of calls, the same
calls on every run; a call left unrecorded still ends on BYE and when its RTP stops.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from callvault.db.models import Participant, Recording
from callvault.services.access import Principal
from callvault.services.call_record import CallRecord
from callvault.services.context import open_context
from callvault.services.recording_rules import in_sample
from tests.conftest import make_settings
from tests.siprec.conftest import Recorder, as_peer, start_recorder
from tests.support.audio import voice
from tests.support.live_call import AGENT, CUSTOMER, LiveCall
from tests.support.people import ADMIN
from tests.support.test_src import Stream, TestSrc, answered_ports, metadata_xml, multipart, sdp_offer

RATE = 8000
# Calls here sit silent while the API is asked about them; a loaded test machine must not end them.
SLOW_MACHINE = "30"
CUSTOMER_E164 = "+14155550199"


def _api(recorder: Recorder, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """As the compliance officer, or for /calls as alice, the calls' agent."""
    token = recorder.token
    if path.startswith("/calls/"):
        token = recorder.ctx.users.create_token(ADMIN, "alice", f"desk-{uuid.uuid4()}")
    return httpx.request(
        method,
        f"http://127.0.0.1:{recorder.http_port}/api/v1{path}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        **kwargs,
    )


def _rule(recorder: Recorder, body: dict[str, Any]) -> None:
    principal = Principal(user_id=None, username="carol", role=ADMIN.role)
    recorder.ctx.recording_rules.create(principal, body)


def _call(port: int, session: str | None = None) -> LiveCall:
    """Like tests.support.live_call.open_call, with the communication session's own Call-ID."""
    streams = [Stream("agent", "PCMU", sender_aor=AGENT), Stream("customer", "PCMU", sender_aor=CUSTOMER)]
    xml = metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
    if session is not None:
        xml = xml.replace("<sipSessionID>abc</sipSessionID>", f"<sipSessionID>{session}</sipSessionID>")
    content_type, body = multipart(sdp_offer(streams), xml)
    src = TestSrc("127.0.0.1", port)
    response = src.invite(content_type, body)
    assert response.status == 200, (response.status, response.reason)
    return LiveCall(src, answered_ports(response.body), time.monotonic())


def _spool_bytes(recorder: Recorder) -> int:
    spool = recorder.settings.spool_dir
    return sum(p.stat().st_size for p in spool.rglob("*") if p.is_file()) if spool.exists() else 0


async def _ended(recorder: Recorder, recording_id: str, within: float = 30.0) -> Recording:
    deadline = time.monotonic() + within
    while True:
        with recorder.ctx.catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None and recording.finalized_at is not None:
                session.expunge(recording)
                return recording
        assert time.monotonic() < deadline, f"recording {recording_id} did not end within {within} s"
        await asyncio.sleep(0.05)


async def test_a_do_not_record_call_is_catalogued_without_a_byte_of_audio(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        _rule(
            recorder,
            {"name": "Doctors line", "action": "do_not_record", "match": {"customers": [CUSTOMER_E164]}},
        )
        call = await as_peer(lambda: _call(recorder.port))
        recording_id = await recorder.recording_for(call.call_id)
        state = await asyncio.to_thread(_api, recorder, "GET", f"/calls/{call.call_id}")
        assert state.status_code == 200 and state.json()["live"] is True, state.text
        assert state.json()["state"] == "not_recorded"
        pause = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{call.call_id}/pause")
        assert pause.status_code == 409 and "not being recorded" in pause.text
        keep = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{call.call_id}/keep")
        assert keep.status_code == 409 and "not being recorded" in keep.text
        unknown = await asyncio.to_thread(_api, recorder, "POST", "/calls/nobody@nowhere/keep")
        assert unknown.status_code == 404
        await as_peer(lambda: call.send(voice(1.0, RATE, 140.0, seed=1), voice(1.0, RATE, 220.0, seed=2)))
        assert _spool_bytes(recorder) == 0  # not even the spool
        await as_peer(call.hang_up)
        recording = await _ended(recorder, recording_id)
        assert (recording.status, recording.rule_name, recording.rule_action) == (
            "not_recorded",
            "Doctors line",
            "do_not_record",
        )
        assert recording.object_key is None and recording.audio_size is None
        assert recording.duration_seconds is not None and recording.duration_seconds >= 1.0
        assert recording.manifest_signature is not None  # signed evidence that the call happened
        with recorder.ctx.catalog.read() as session:
            aors = set(
                session.scalars(select(Participant.aor).where(Participant.call_id == recording.call_id))
            )
        assert aors == {AGENT.removeprefix("sip:"), CUSTOMER.removeprefix("sip:")}
        listed = await asyncio.to_thread(
            _api, recorder, "GET", "/recordings", params={"status": "not_recorded"}
        )
        assert [(r["id"], r["status"], r["rule"]) for r in listed.json()["items"]] == [
            (recording_id, "not_recorded", "Doctors line")
        ]
        audio = await asyncio.to_thread(_api, recorder, "GET", f"/recordings/{recording_id}/audio")
        assert audio.status_code == 404
        ended = await asyncio.to_thread(_api, recorder, "GET", f"/calls/{call.call_id}")
        assert ended.json()["live"] is False and ended.json()["state"] == "ended"
        assert _spool_bytes(recorder) == 0
        blobs = list((recorder.settings.data_dir / "vault").rglob("*.cvr"))
        assert blobs == []


async def test_an_unrecorded_call_ends_when_its_rtp_stops(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout="2") as recorder:
        _rule(recorder, {"name": "HR", "action": "do_not_record", "match": {"customers": [CUSTOMER_E164]}})
        call = await as_peer(lambda: _call(recorder.port))
        recording_id = await recorder.recording_for(call.call_id)
        await as_peer(lambda: call.send(voice(0.5, RATE, 140.0, seed=1), voice(0.5, RATE, 220.0, seed=2)))
        bye = await as_peer(lambda: call.src.wait_request("BYE", timeout=15))  # the recorder hangs up
        assert bye.startswith(b"BYE ")
        recording = await _ended(recorder, recording_id)
        assert recording.status == "not_recorded"


async def test_on_demand_calls_are_kept_only_when_asked(tmp_path: Path, database_url: str) -> None:
    async with start_recorder(
        tmp_path / "data", database_url, on_demand_keep_seconds="3", rtp_timeout=SLOW_MACHINE
    ) as recorder:
        _rule(recorder, {"name": "Ask first", "action": "on_demand", "set_labels": ["desk"]})
        agent, customer = voice(1.0, RATE, 140.0, seed=3), voice(1.0, RATE, 220.0, seed=4)
        ids: dict[str, str] = {}
        for name in ("dropped", "kept", "kept after"):
            call = await as_peer(lambda: _call(recorder.port))
            ids[name] = await recorder.recording_for(call.call_id)
            await as_peer(lambda: call.send(agent, customer))  # noqa: B023 - awaited in the loop
            if name == "kept":
                kept = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{call.call_id}/keep")
                assert kept.status_code == 200 and kept.json()["state"] == "kept", kept.text
                assert (kept.json()["recording_id"], kept.json()["live"]) == (ids[name], True)
            await as_peer(call.hang_up)
            if name == "dropped":
                # Until it is decided, the audio is in the encrypted spool only.
                assert _spool_bytes(recorder) > 0
                assert not list((recorder.settings.data_dir / "vault").rglob("*.cvr"))
            if name == "kept after":
                after = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{call.call_id}/keep")
                assert after.status_code == 200 and after.json()["live"] is False, after.text
        dropped = await _ended(recorder, ids["dropped"])
        assert (dropped.status, dropped.object_key, dropped.rule_name) == ("not_kept", None, "Ask first")
        late = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{ids['dropped']}/keep")
        assert late.status_code == 409 and "discarded" in late.text
        audio = await asyncio.to_thread(_api, recorder, "GET", f"/recordings/{ids['dropped']}/audio")
        assert audio.status_code == 404
        for name in ("kept", "kept after"):
            kept_row = await _ended(recorder, ids[name])
            assert (
                kept_row.status == "complete" and kept_row.kept_at is not None and kept_row.labels == ["desk"]
            )
            sound, rate = await asyncio.to_thread(recorder.audio, ids[name])
            assert rate == RATE and sound.shape[1] >= RATE // 2
        assert _spool_bytes(recorder) == 0
        trail = [e for e in recorder.ctx.access_log.list(ADMIN, limit=200) if e.action == "call_keep"]
        assert sorted(e.outcome for e in trail) == ["conflict", "ok", "ok"]


async def test_a_sampled_rule_records_its_share_of_calls_the_same_ones_every_time(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        _rule(recorder, {"name": "QA half", "action": "sample", "sample_percent": 50})
        rule_id = recorder.ctx.recording_rules.rules(fresh=True)[0].id
        sessions = [f"cs-{uuid.uuid4()}@pbx" for _ in range(40)]
        ids: dict[str, str] = {}
        for session in sessions:
            call = await as_peer(lambda: _call(recorder.port, session))  # noqa: B023
            ids[session] = await recorder.recording_for(call.call_id)
            await as_peer(call.hang_up)
        statuses = {s: (await _ended(recorder, ids[s])).status for s in sessions}
        recorded = {s for s, status in statuses.items() if status != "not_recorded"}
        assert recorded == {s for s in sessions if in_sample(rule_id, s, 50)}  # deterministic per call
        assert 10 <= len(recorded) <= 30, len(recorded)  # 50 % of 40, within 3 standard deviations
        # A retry of a call (same communication session, new dialog) gets the same answer.
        again = await as_peer(lambda: _call(recorder.port, sessions[0]))
        retry_id = await recorder.recording_for(again.call_id)
        await as_peer(again.hang_up)
        assert ((await _ended(recorder, retry_id)).status != "not_recorded") == (sessions[0] in recorded)


async def test_a_must_record_agent_is_recorded_whatever_the_rules_say(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        await asyncio.to_thread(recorder.ctx.users.set_must_record, ADMIN, "alice", True)
        _rule(recorder, {"name": "Never", "action": "do_not_record", "set_labels": ["hr"]})
        call = await as_peer(lambda: _call(recorder.port))
        recording_id = await recorder.recording_for(call.call_id)
        await as_peer(lambda: call.send(voice(1.0, RATE, 140.0, seed=5), voice(1.0, RATE, 220.0, seed=6)))
        keep = await asyncio.to_thread(_api, recorder, "POST", f"/calls/{call.call_id}/keep")
        assert keep.status_code == 409 and "not recorded on demand" in keep.text
        await as_peer(call.hang_up)
        recording = await recorder.finished(recording_id)
        assert (recording.status, recording.rule_name, recording.rule_action, recording.labels) == (
            "complete",
            "Never",
            "record",
            ["hr"],
        )


async def test_a_must_record_agent_joining_an_unrecorded_call_starts_its_recording(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        await asyncio.to_thread(recorder.ctx.users.set_must_record, ADMIN, "bob", True)
        _rule(
            recorder,
            {"name": "Doctors line", "action": "do_not_record", "match": {"customers": [CUSTOMER_E164]}},
        )
        call = await as_peer(lambda: _call(recorder.port))
        recording_id = await recorder.recording_for(call.call_id)
        agent, customer = voice(2.0, RATE, 140.0, seed=7), voice(2.0, RATE, 220.0, seed=8)
        await as_peer(lambda: call.send(agent[:RATE], customer[:RATE]))
        assert _spool_bytes(recorder) == 0
        streams = [Stream("agent", "PCMU", sender_aor=AGENT), Stream("customer", "PCMU", sender_aor=CUSTOMER)]
        joined = [("YQ==", AGENT), ("cA==", CUSTOMER), ("dA==", "sip:1002@pbx.example")]  # bob, regulated
        update = await as_peer(
            lambda: call.src.in_dialog(
                "UPDATE", metadata_xml(joined, streams).encode(), "application/rs-metadata+xml"
            )
        )
        assert update.status == 200
        state = await asyncio.to_thread(_api, recorder, "GET", f"/calls/{call.call_id}")
        assert state.json()["state"] == "recording", state.text
        await as_peer(lambda: call.send(agent[RATE:], customer[RATE:]))
        await as_peer(call.hang_up)
        recording = await recorder.finished(recording_id)
        assert (recording.status, recording.rule_action) == ("complete", "record")
        detail = await asyncio.to_thread(recorder.detail, recording_id)
        started = [e for e in detail["events"] if e["kind"] == "recording_started"]
        assert len(started) == 1 and started[0]["data"] == {"reason": "must_record"}
        # From the join on, not before: a second of audio was sent first (the call's start is
        # stamped a few ms after the sender could begin: 0.998 s seen).
        assert started[0]["offset_seconds"] >= 0.9
        sound, _ = await asyncio.to_thread(recorder.audio, recording_id)
        assert sound.shape[1] >= int(1.8 * RATE)  # the call's length; silence before the join
        at = int(started[0]["offset_seconds"] * RATE)
        after = [
            abs(sound[:, i : i + RATE // 5].astype(float)).mean()
            for i in range(at, sound.shape[1], RATE // 5)
        ]
        assert sum(level > 500 for level in after) >= 3  # the second of audio sent after the join is there
        before = sound[:, : at - RATE // 10].astype(float)
        assert float(abs(before).mean()) < 30  # nothing from before it, not even what was queued


async def test_a_participant_who_must_not_be_recorded_joining_silences_the_rest_of_the_call(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        _rule(recorder, {"name": "Works council", "action": "do_not_record", "match": {"agents": ["bob"]}})
        call = await as_peer(lambda: _call(recorder.port))
        recording_id = await recorder.recording_for(call.call_id)
        agent, customer = voice(2.0, RATE, 140.0, seed=9), voice(2.0, RATE, 220.0, seed=10)
        lead = await as_peer(lambda: call.send(agent[:RATE], customer[:RATE])) - call.answered
        streams = [Stream("agent", "PCMU", sender_aor=AGENT), Stream("customer", "PCMU", sender_aor=CUSTOMER)]
        joined = [("YQ==", AGENT), ("cA==", CUSTOMER), ("dA==", "sip:1002@pbx.example")]  # bob joins
        update = await as_peer(
            lambda: call.src.in_dialog(
                "UPDATE", metadata_xml(joined, streams).encode(), "application/rs-metadata+xml"
            )
        )
        assert update.status == 200
        await as_peer(lambda: call.send(agent[RATE:], customer[RATE:]))
        await as_peer(call.hang_up)
        recording = await recorder.finished(recording_id)
        assert (recording.rule_name, recording.rule_action) == ("Works council", "do_not_record")
        detail = await asyncio.to_thread(recorder.detail, recording_id)
        paused = [e for e in detail["events"] if e["kind"] == "pause"]
        assert [e["data"]["cause"] for e in paused] == ["rule"]
        sound, _ = await asyncio.to_thread(recorder.audio, recording_id)
        start = int(lead * RATE)
        assert float(abs(sound[:, start + RATE // 5 : start + int(0.8 * RATE)].astype(float)).mean()) > 100
        at = int(paused[0]["offset_seconds"] * RATE)
        assert float(abs(sound[:, at + RATE // 10 :].astype(float)).mean()) < 30  # nothing after bob joined


async def test_queue_and_labels_from_the_invite_headers_drive_the_rules(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        _rule(recorder, {"name": "HR queue", "action": "do_not_record", "match": {"queues": ["hr"]}})
        _rule(
            recorder,
            {"name": "Regulated", "action": "record", "match": {"labels": ["mifid2"]}, "set_labels": ["7y"]},
        )
        streams = [Stream("agent", "PCMU", sender_aor=AGENT), Stream("customer", "PCMU", sender_aor=CUSTOMER)]
        content_type, body = multipart(
            sdp_offer(streams), metadata_xml([("YQ==", AGENT), ("cA==", CUSTOMER)], streams)
        )
        ids = []
        for headers in (["X-Queue: hr"], ["X-Queue: sales", "X-Recording-Labels: mifid2, <bad>"]):
            src = TestSrc("127.0.0.1", recorder.port)
            assert (await as_peer(lambda: src.invite(content_type, body, headers))).status == 200  # noqa: B023
            ids.append(await recorder.recording_for(src.call_id))
            assert (await as_peer(src.bye)).status == 200
            src.close()
        hr, regulated = [await _ended(recorder, i) for i in ids]
        assert (hr.status, hr.queue, hr.rule_name) == ("not_recorded", "hr", "HR queue")
        assert (regulated.queue, regulated.rule_name, regulated.labels) == (
            "sales",
            "Regulated",
            ["7y", "mifid2"],
        )
        assert regulated.status != "not_recorded"


async def test_an_unrecorded_call_the_recorder_did_not_see_end_is_closed_at_the_next_start(
    tmp_path: Path, database_url: str
) -> None:
    # As a recorder killed during an unrecorded call leaves it: catalogued, never ended.
    ctx = open_context(make_settings(tmp_path / "data", database_url))
    try:
        record = CallRecord(started_at=datetime.now(UTC), source="siprec", sip_call_ids=["lost@src"])
        rule = {"status": "not_recorded", "rule_name": "HR", "rule_action": "do_not_record"}
        recording_id = ctx.recordings.begin(record, None, rule)
    finally:
        ctx.close()
    async with start_recorder(tmp_path / "data", database_url, rtp_timeout=SLOW_MACHINE) as recorder:
        recording = await _ended(recorder, recording_id)
        assert (recording.status, recording.duration_seconds) == ("not_recorded", None)
        assert recording.manifest_signature is not None
