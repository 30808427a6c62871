"""sipp (SIPp 3.6) as the SRC: a basic SIPREC call, OPTIONS, refusals, over UDP and TCP."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from callvault.db.models import Call, Recording
from tests.siprec.conftest import SCENARIOS, SIPP, Recorder, run_sipp


@pytest.fixture(autouse=True)
def _sipp_installed() -> None:
    # A missing peer is a broken test environment, not a reason to pass quietly.
    if SIPP is None:
        pytest.fail("sipp is not installed: run ./scripts/test (installs the Debian package sip-tester)")


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_siprec_call_is_catalogued(recorder: Recorder, transport: str) -> None:
    prefix = f"sipp-{uuid.uuid4()}"
    result = await asyncio.to_thread(
        run_sipp,
        "siprec_call.xml",
        recorder.port,
        "-t",
        transport,
        "-cid_str",
        f"{prefix}-%u",
        "-key",
        "codec",
        "PCMU",
        "-key",
        "pt",
        "0",
    )
    call_id = f"{prefix}-1"
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    recording_id = await recorder.recording_for(call_id)
    recording = await recorder.finished(recording_id)
    assert recording.status in ("complete", "incomplete")
    with recorder.ctx.catalog.read() as session:
        stored = session.get(Recording, recording_id)
        assert stored is not None
        call = session.get(Call, stored.call_id)
        assert call is not None
        # The known agent (alice, sip:1001@pbx.example) owns the recording.
        assert stored.agent_user_id is not None


async def test_sipp_options_ping(recorder: Recorder) -> None:
    result = await asyncio.to_thread(run_sipp, "options.xml", recorder.port)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def _refusal_scenario(tmp_path: Path, status: int) -> Path:
    text = (
        (SCENARIOS / "refused_invite.xml").read_text().replace('response="[status]"', f'response="{status}"')
    )
    path = tmp_path / f"refused_{status}.xml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("require", "codec", "pt", "status"),
    [
        ("siprec, 100rel", "PCMU", "0", 420),  # unsupported extension
        ("siprec", "GSM", "3", 488),  # nothing the recorder can decode
    ],
)
async def test_sipp_refused_invites(
    recorder: Recorder, tmp_path: Path, require: str, codec: str, pt: str, status: int
) -> None:
    scenario = _refusal_scenario(tmp_path, status)
    result = await asyncio.to_thread(
        run_sipp,
        str(scenario),
        recorder.port,
        "-key",
        "require",
        require,
        "-key",
        "codec",
        codec,
        "-key",
        "pt",
        pt,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert recorder.server.active_calls == 0
    # Still answering afterwards.
    again = await asyncio.to_thread(run_sipp, "options.xml", recorder.port)
    assert again.returncode == 0
