"""Recording assurance: ``/api/v1/call-records`` (the calls the PBX/ACD says happened),
``/api/v1/assurance/reconcile`` and ``/api/v1/reports/assurance``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput, PayloadTooLarge
from callvault.services.access import Action, Principal, require
from callvault.services.assurance import OUTCOMES, Period
from callvault.services.assurance_report import MAX_PAGE
from callvault.services.call_record_input import CallRecordInput, parse_batch, parse_csv
from callvault.services.context import ServiceContext

router = APIRouter(tags=["assurance"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
MAX_BODY = 16 * 2**20  # 10,000 records of ~1 KB, with room

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


_BODY_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["records"],
                    "properties": {"records": {"type": "array", "items": {"type": "object"}}},
                },
                "example": _EXAMPLE,
            },
            "text/csv": {"schema": {"type": "string", "description": "the CSV file (columns: README)"}},
        },
    }
}


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"body larger than {MAX_BODY // 2**20} MB; send smaller batches")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLarge(f"body larger than {MAX_BODY // 2**20} MB; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _records(content_type: str, body: bytes) -> list[CallRecordInput]:
    if content_type == "text/csv":
        return parse_csv(body)
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput('the body must be JSON, {"records": [...]}, or a CSV file as text/csv') from None
    return parse_batch(parsed)


@router.post("/call-records", openapi_extra=_BODY_SCHEMA)
async def submit_call_records(request: Request) -> dict[str, Any]:
    """Call records (CDRs) of the PBX/ACD: the calls that should have been recorded.

    ``{"records": [...]}`` (or a bare list), up to 10,000 records, or a CSV file
    sent as ``text/csv``; fields as the CSV columns in the README. Idempotent on
    ``pbx_call_id``: a record sent again changes nothing, a changed one is updated
    and reconciled again. The whole batch is checked first: one bad record answers
    400 naming it (``record 3: started_at: ...``, ``line 7: ...``) and nothing is
    stored; 413 over 16 MB. Stored records are reconciled with the recordings at
    once; the answer has the counts and the outcomes of that reconciliation.
    """
    ctx: ServiceContext = request.app.state.ctx
    caller = await run_in_threadpool(principal, request)
    require(caller, Action.CALL_RECORDS_SUBMIT)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    records = _records(content_type, await _body(request))

    def store() -> dict[str, Any]:
        stored = ctx.call_records.store(caller, records, "api")
        reconciled = ctx.assurance.reconcile(caller, ids=stored.ids)
        return {"received": len(records), **stored.to_dict(), "reconciliation": reconciled}

    return await run_in_threadpool(store)


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
