"""sipp (SIPp) as the SRC against a do-not-record rule: catalogued, no audio, nothing in the vault."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from callvault.db.models import Recording
from callvault.services.access import Principal, Role
from tests.siprec.conftest import SIPP, Recorder, run_sipp, start_recorder


@pytest.fixture(autouse=True)
def _sipp_installed() -> None:
    if SIPP is None:
        pytest.fail("sipp is not installed: run ./scripts/test (installs the Debian package sip-tester)")


def _stored_files(recorder: Recorder) -> list[Path]:
    """Everything in the spool and the vault."""
    data = Path(recorder.settings.data_dir)
    return [
        p
        for folder in (data / "spool", data / "vault")
        if folder.exists()
        for p in folder.rglob("*")
        if p.is_file()
    ]


async def test_a_sipp_call_matching_a_do_not_record_rule_leaves_no_audio(
    tmp_path: Path, database_url: str
) -> None:
    async with start_recorder(tmp_path / "data", database_url) as recorder:
        await _sipp_call(recorder)


async def _sipp_call(recorder: Recorder) -> None:
    officer = Principal(user_id=None, username="carol", role=Role.COMPLIANCE_OFFICER)
    rule = {
        "name": "Carrier 0123",
        "action": "do_not_record",
        "match": {"customer_prefixes": ["+1415555012"]},
    }
    await asyncio.to_thread(recorder.ctx.recording_rules.create, officer, rule)
    prefix = f"sipp-{uuid.uuid4()}"
    result = await asyncio.to_thread(
        run_sipp,
        "siprec_call.xml",
        recorder.port,
        "-cid_str",
        f"{prefix}-%u",
        "-key",
        "codec",
        "PCMU",
        "-key",
        "pt",
        "0",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    recording_id = await recorder.recording_for(f"{prefix}-1")
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        with recorder.ctx.catalog.read() as session:
            stored = session.get(Recording, recording_id)
            assert stored is not None
            if stored.finalized_at is not None:
                break
        assert asyncio.get_running_loop().time() < deadline, "the unrecorded call never ended"
        await asyncio.sleep(0.05)
    assert (stored.status, stored.rule_name, stored.object_key) == ("not_recorded", "Carrier 0123", None)
    assert stored.customer_number == "+14155550123" and stored.agent_user_id is not None
    assert await asyncio.to_thread(_stored_files, recorder) == []
