"""The reconciliation inside `callvault serve` finds a recording that was catalogued after its
call record arrived, and leaves decided records alone."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from callvault.db.assurance_models import ExpectedCall
from callvault.runtime.assurance_sweeper import AssuranceSweeper
from callvault.services.call_record_input import CallRecordInput
from callvault.services.context import ServiceContext
from tests.assurance.conftest import T0, Catalogued, catalogue
from tests.support.people import ADMIN


def _outcome(ctx: ServiceContext, pbx_id: str) -> tuple[str, str | None]:
    with ctx.catalog.read() as session:
        row = session.scalar(select(ExpectedCall).where(ExpectedCall.pbx_call_id == pbx_id))
        assert row is not None
        return row.outcome, row.recording_id


async def test_the_sweep_finds_a_late_recording(ctx: ServiceContext) -> None:
    records = [CallRecordInput("late", T0, sip_call_id="late@sbc"), CallRecordInput("decided", T0)]
    stored = ctx.call_records.store(ADMIN, records, "test")
    ctx.assurance.reconcile(ADMIN, ids=stored.ids)
    assert _outcome(ctx, "late") == ("missing", None)
    with ctx.catalog.write() as session:  # decided by hand: the sweep must not revisit it
        row = session.scalar(select(ExpectedCall).where(ExpectedCall.pbx_call_id == "decided"))
        assert row is not None
        row.outcome = "incomplete"
    recording = catalogue(ctx, Catalogued(identifiers={"sip_call_id": "late@sbc"}))
    sweeper = AssuranceSweeper(ctx, 0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 30
        while _outcome(ctx, "late")[0] == "missing":
            assert time.monotonic() < deadline, "the sweep did not reconcile the record"
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert sweeper.rounds >= 1
    assert _outcome(ctx, "late") == ("recorded_complete", recording)
    assert _outcome(ctx, "decided") == ("incomplete", None)


def test_an_interval_of_zero_starts_no_sweep(ctx: ServiceContext) -> None:
    sweeper = AssuranceSweeper(ctx, 0)
    sweeper.start()  # outside an event loop: would raise if it tried to create a task
    assert sweeper.rounds == 0
