"""Recording assurance end to end: real SIPREC calls from the test SRC to a running recorder
(`callvault serve`'s composition root), then the PBX's CDR file with those calls and one
call of a must-record agent that was never recorded, imported by the `callvault` command;
and a call a recording rule left unrecorded, whose record the ACD posts by its vendor id.

The report served by the running recorder lists the recorded calls as complete (one
matched by its SIP Call-ID, one by numbers and start time) and the unrecorded one as
missing; an alert about it exists, once, however often the calls are reconciled. The
rule's call is reported as not recorded by rule, with no alert for an unregulated agent.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from callvault.db.models import Recording
from tests.siprec.conftest import Recorder, as_peer
from tests.siprec.test_calls import CallSpec, _two_party_call
from tests.support.audio import voice
from tests.support.live_call import open_call
from tests.support.people import ADMIN
from tests.support.processes import run_cli

UCID = "00001002441638267012"
PBX_ZONE = timezone(timedelta(hours=-5))
HEADER = "pbx_call_id,started_at,ended_at,direction,calling_number,called_number,agent,queue,sip_call_id\n"


def _get(recorder: Recorder, path: str, **params: str) -> Any:
    response = httpx.get(
        f"http://127.0.0.1:{recorder.http_port}/api/v1/{path}",
        params=params,
        headers={"Authorization": f"Bearer {recorder.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _post(recorder: Recorder, path: str, body: Any) -> Any:
    response = httpx.post(
        f"http://127.0.0.1:{recorder.http_port}/api/v1/{path}",
        json=body,
        headers={"Authorization": f"Bearer {recorder.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _started(recorder: Recorder, recording_id: str) -> datetime:
    with recorder.ctx.catalog.read() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        started = recording.started_at
    return started if started.tzinfo else started.replace(tzinfo=UTC)


def _cdr_line(pbx_id: str, start: datetime, seconds: float, customer: str, sip_call_id: str = "") -> str:
    # The PBX writes local times with an offset and national numbers: both are normalised.
    began, ended = (t.astimezone(PBX_ZONE).isoformat() for t in (start, start + timedelta(seconds=seconds)))
    return (
        f"{pbx_id},{began},{ended},inbound,{customer},(415) 555-0100,1001@pbx.example,sales,{sip_call_id}\n"
    )


async def test_a_cdr_file_with_an_unrecorded_must_record_call_yields_it_missing_and_an_alert(
    recorder: Recorder, tmp_path: Path
) -> None:
    await as_peer(lambda: recorder.ctx.users.set_must_record(ADMIN, "alice", True))
    by_id = await _two_party_call(recorder, CallSpec(seconds=1.0))
    by_numbers = await _two_party_call(recorder, CallSpec(seconds=1.0))
    ids = [await recorder.recording_for(c.call_id) for c in (by_id, by_numbers)]
    for recording_id in ids:
        assert (await recorder.finished(recording_id)).status == "complete"
    first, second = (_started(recorder, r) for r in ids)
    unrecorded = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    cdr = tmp_path / "cdr.csv"
    cdr.write_text(
        HEADER
        + _cdr_line("pbx-1", first - timedelta(seconds=1), 2, "+14155550199", by_id.call_id)
        + _cdr_line("pbx-2", second + timedelta(seconds=3), 2, "4155550199")
        + _cdr_line("pbx-3", unrecorded, 95, "+14155550142")
    )
    env = {
        "CALLVAULT_DATA_DIR": str(recorder.settings.data_dir),
        "CALLVAULT_DATABASE_URL": recorder.settings.database_url,
    }
    imported = await as_peer(lambda: run_cli(["assurance", "import", str(cdr)], env))
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["reconciliation"]["outcomes"]["missing"] == 1
    # Reconciled again by the recorder itself (the periodic sweep's work): nothing new.
    await as_peer(lambda: recorder.ctx.assurance.reconcile(ADMIN))

    day = {
        "from": (unrecorded - timedelta(hours=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    report = await as_peer(lambda: _get(recorder, "reports/assurance", **day))
    assert {k: report["totals"][k] for k in ("expected", "recorded_complete", "missing", "incomplete")} == {
        "expected": 3,
        "recorded_complete": 2,
        "missing": 1,
        "incomplete": 0,
    }
    assert [(a["agent"], a["team"], a["expected"], a["missing"]) for a in report["by_agent"]] == [
        ("alice", "red", 3, 1)
    ]
    (missing,) = report["items"]
    assert (missing["pbx_call_id"], missing["outcome"], missing["must_record"], missing["agent"]) == (
        "pbx-3",
        "missing",
        True,
        "alice",
    )
    matched = await as_peer(lambda: _get(recorder, "reports/assurance", outcome="recorded_complete", **day))
    assert {(i["pbx_call_id"], i["recording_id"], i["matched_by"]) for i in matched["items"]} == {
        ("pbx-1", ids[0], "sip_call_id"),
        ("pbx-2", ids[1], "numbers_time"),
    }
    alerts = (await as_peer(lambda: _get(recorder, "alerts", kind="must_record_not_recorded")))["items"]
    assert len(alerts) == 1 and "pbx-3" in alerts[0]["detail"] and alerts[0]["user"] == "alice"
    assert "0142" not in alerts[0]["detail"]
    assert not any("555-0142" in line or "5550142" in line for line in recorder.log_lines)


async def _finalised(recorder: Recorder, recording_id: str, within: float = 30.0) -> Recording:
    deadline = time.monotonic() + within
    while True:
        with recorder.ctx.catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is not None and recording.finalized_at is not None:
                session.expunge(recording)
                return recording
        assert time.monotonic() < deadline, f"recording {recording_id} did not end within {within} s"
        await asyncio.sleep(0.05)


async def test_a_call_a_rule_left_unrecorded_is_reported_as_such_by_its_vendor_id(recorder: Recorder) -> None:
    rule = {"name": "Doctors line", "action": "do_not_record", "match": {"customers": ["+14155550199"]}}
    await as_peer(lambda: recorder.ctx.recording_rules.create(ADMIN, rule))
    call = await as_peer(lambda: open_call(recorder.port, ucid=UCID))
    recording_id = await recorder.recording_for(call.call_id)
    await as_peer(lambda: call.send(voice(0.5, 8000, 140.0, seed=1), voice(0.5, 8000, 220.0, seed=2)))
    await as_peer(call.hang_up)
    assert (await _finalised(recorder, recording_id)).status == "not_recorded"
    # The ACD's record names the call by its UCID only, with its own clock an hour off.
    record = {"pbx_call_id": "acd-77", "started_at": "2026-01-31T09:00:00Z", "vendor_call_id": UCID}
    posted = await as_peer(lambda: _post(recorder, "call-records", {"records": [record]}))
    assert posted["reconciliation"]["outcomes"]["not_recorded_by_rule"] == 1
    report = await as_peer(lambda: _get(recorder, "reports/assurance", outcome="not_recorded_by_rule"))
    assert [(i["pbx_call_id"], i["recording_id"], i["matched_by"], i["agent"]) for i in report["items"]] == [
        ("acd-77", recording_id, "ucid", "alice")  # the agent taken from the recording
    ]
    assert report["totals"]["not_recorded_by_rule"] == 1 and report["totals"]["missing"] == 0
    # alice is not regulated: leaving her call unrecorded by a rule is no alert.
    assert (await as_peer(lambda: _get(recorder, "alerts", kind="must_record_not_recorded")))["items"] == []
