"""Consent and jurisdiction: a party's consent on a live call, and the requirements table.

``POST /api/v1/calls/{ref}/consent`` sets a party's consent state on a call in
progress (allowed like a PCI pause: the call's agent, their supervisor, admins,
integration tokens). ``/api/v1/consent/jurisdictions`` reads and edits what
each jurisdiction needs (admins; every edit audited).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from callvault.api.deps import context, principal
from callvault.api.routes_calls import Ref
from callvault.runtime.consent_control import ConsentControl
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

calls_router = APIRouter(prefix="/calls", tags=["calls"])
router = APIRouter(prefix="/consent", tags=["consent"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
JsonObject = Annotated[dict[str, Any], Body()]
Code = Annotated[
    str, Path(max_length=8, description="ISO 3166-1 country (DE), ISO 3166-2 subdivision (US-CA) or *")
]


@calls_router.post(
    "/{ref}/consent",
    summary="Set a party's consent on a call in progress",
    description='Body `{"state": "unknown"|"notified"|"consented"|"objected", "party": "customer"}` '
    "(party: `customer` (default), `agent`, or a participant's number or address). Answers the "
    "call's `recording_id` (`recording_ids` when recorded more than once), the party's `state`, the "
    "call's `consent_state`, every party's state and `silenced` (the channels an objection silences: "
    "`customer`, `agent`, `all` or null, per CALLVAULT_CONSENT_OBJECTION). 404 for an unknown or "
    "out-of-scope call, 409 for one that has ended or is not recorded, 400 for a bad body.",
)
async def set_consent(ref: Ref, request: Request, body: JsonObject) -> dict[str, Any]:
    caller = await run_in_threadpool(principal, request)
    consent: ConsentControl = request.app.state.consent
    return await consent.request(caller, ref, body)


@router.get(
    "/jurisdictions",
    summary="The consent requirements table in force (admins)",
    description="Every jurisdiction's `requirement` (`one_party`, `all_party_notification`, "
    "`explicit_consent`), whether the GDPR applies, the `effective_requirement` (GDPR rows raised "
    "to explicit consent under CALLVAULT_CONSENT_GDPR_EXPLICIT) and whether the row is `shipped` or "
    "`edited`.",
)
def list_jurisdictions(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.jurisdictions.list(caller)


@router.get(
    "/jurisdictions/lookup",
    summary="Where a number is placed and what it needs (admins)",
    description="`?number=+14155550100` → its `jurisdiction`, the row that `decided_by` it and the "
    "`requirement`. The number is neither stored nor logged.",
)
def lookup_number(ctx: Ctx, caller: Caller, number: Annotated[str, Query(max_length=32)]) -> dict[str, Any]:
    return ctx.jurisdictions.lookup(caller, number)


@router.put(
    "/jurisdictions/{code}",
    summary="Set one jurisdiction's requirement (admins, audited)",
    description='Body `{"requirement": "one_party"|"all_party_notification"|"explicit_consent", '
    '"gdpr": false, "name": "..."}`; fields left out keep the row\'s current value. Adds the '
    "jurisdiction or overrides its shipped row. Calls starting from now are decided by it.",
)
def put_jurisdiction(code: Code, ctx: Ctx, caller: Caller, body: JsonObject) -> dict[str, Any]:
    return ctx.jurisdictions.put(caller, code, body)


@router.delete(
    "/jurisdictions/{code}",
    summary="Drop an edited row: the shipped one is in force again (admins, audited)",
    description="404 when the jurisdiction has no edited row.",
)
def reset_jurisdiction(code: Code, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.jurisdictions.reset(caller, code)
