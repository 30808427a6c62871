"""Recording assurance: ``/api/v1/call-records`` (the calls the PBX/ACD says happened),
``/api/v1/assurance/reconcile`` and ``/api/v1/reports/assurance``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput
from callvault.services.access import Principal
from callvault.services.assurance import OUTCOMES, Period
from callvault.services.assurance_report import MAX_PAGE
from callvault.services.call_record_input import parse_batch
from callvault.services.context import ServiceContext

router = APIRouter(tags=["assurance"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]

_EXAMPLE = {
    "records": [
        {
            "pbx_call_id": "acd-20260131-000123",
            "started_at": "2026-01-31T09:00:00Z",
            "ended_at": "2026-01-31T09:04:10Z",
            "direction": "inbound",
            "calling_number": "+14155550199",
            "called_number": "+14155550100",
            "agent": "alice",
            "queue": "sales",
            "sip_call_id": "a84b4c76e66710@pbx.example",
            "vendor_call_id": "00001002441638267012",
        }
    ]
}


@router.post("/call-records")
def submit_call_records(
    ctx: Ctx, caller: Caller, body: Annotated[Any, Body(examples=[_EXAMPLE])]
) -> dict[str, Any]:
    """Call records (CDRs) of the PBX/ACD: the calls that should have been recorded.

    ``{"records": [...]}`` (or a bare list), up to 10,000 records; fields as the CSV
    columns in the README. Idempotent on ``pbx_call_id``: a record sent again changes
    nothing, a changed one is updated and reconciled again. The whole batch is checked
    first: one bad record answers 400 naming it (``record 3: started_at: ...``) and
    nothing is stored. Stored records are reconciled with the recordings at once;
    the answer has the counts and the outcomes of that reconciliation.
    """
    records = parse_batch(body)
    stored = ctx.call_records.store(caller, records, "api")
    reconciled = ctx.assurance.reconcile(caller, ids=stored.ids)
    return {"received": len(records), **stored.to_dict(), "reconciliation": reconciled}


def _period(start: datetime | None, end: datetime | None) -> Period:
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("from and to must include a time zone, e.g. 2026-01-31T00:00:00Z")
    return Period(start, end)


@router.post("/assurance/reconcile")
def reconcile(
    ctx: Ctx,
    caller: Caller,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
) -> dict[str, Any]:
    """Reconcile the call records of calls started in [from, to) (every one: no bounds)
    with the recordings again; raises the must-record alerts that are due."""
    return ctx.assurance.reconcile(caller, period=_period(from_, to))


@router.get("/reports/assurance")
def assurance_report(
    ctx: Ctx,
    caller: Caller,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    outcome: Annotated[str | None, Query(description=f"one of {', '.join(OUTCOMES)}")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> dict[str, Any]:
    """Of the calls the PBX reported that started in [from, to): ``totals`` (expected,
    recorded_complete, incomplete, interrupted, not_recorded_by_rule, missing, pending),
    the same ``by_agent`` and ``by_team``, and the calls not recorded complete (or those
    of ``outcome``) oldest first. Admins, compliance officers and auditors see all; a
    supervisor their team. Audited."""
    return ctx.assurance_report.report(caller, _period(from_, to), outcome, limit, offset)
