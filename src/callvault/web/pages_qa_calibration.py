"""``/qa/calibrations``: calibration sessions and their results, side by side.

An evaluator of a session starts their own evaluation of the call from here
(it is the ordinary evaluation page, tied to the session) and sees the results
once it is submitted, as the service rules; a QA lead who reviews the team
sees them at any time. The results page shows every answer side by side with
the variance per question, and each evaluator's deviation from the consensus
(the mean, or the designated expert), the most out of line first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from callvault.errors import Conflict
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


@router.get("/qa/calibrations")
def calibrations_page(request: Request, caller: Caller) -> Response:
    return page(request, "qa_calibrations.html", sessions=_ctx(request).qa.calibrations.list(caller))


@router.get("/qa/calibrations/{calibration_id}")
def calibration_page(calibration_id: RowId, request: Request, caller: Caller) -> Response:
    service = _ctx(request).qa.calibrations
    session = service.get(caller, calibration_id)
    results, waiting = None, ""
    try:
        results = service.results(caller, calibration_id)["results"]
    except Conflict as exc:
        waiting = exc.message
    mine = next((e for e in session["evaluators"] if e["username"] == caller.username), None)
    return page(request, "qa_calibration.html", c=session, results=results, waiting=waiting, mine=mine)


@router.post("/qa/calibrations/{calibration_id}/evaluate")
async def evaluate(calibration_id: RowId, request: Request, caller: Caller) -> Response:
    """Start (or continue) the caller's own evaluation in the session."""
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    ctx = _ctx(request)
    session = await run_in_threadpool(ctx.qa.calibrations.get, caller, calibration_id)
    mine = next((e for e in session["evaluators"] if e["username"] == caller.username), None)
    if mine is not None and mine["evaluation_id"] is not None:
        return RedirectResponse(f"/qa/evaluations/{mine['evaluation_id']}", status_code=303)
    body = {
        "recording_id": session["recording_id"],
        "form_id": session["form_id"],
        "calibration_id": calibration_id,
    }
    made = await run_in_threadpool(ctx.qa.evaluations.create, caller, body)
    return RedirectResponse(f"/qa/evaluations/{made['id']}", status_code=303)
