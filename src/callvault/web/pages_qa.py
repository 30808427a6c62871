"""Quality-management pages: the evaluation beside the player, the agent's acknowledge / dispute.

``/qa`` lists the evaluations the user may see; ``/qa/scorecards`` shows the
scorecards with a server-drawn SVG trend per line (and their CSV); ``/recordings/{id}/evaluate``
picks a form and starts a draft; ``/qa/evaluations/{id}`` is the evaluation
next to the recording's player, where an evaluator answers (each answer may be
pinned to the moment the player is at), saves the draft and submits it, and
where the evaluated agent acknowledges or disputes it. Everything goes
through the services the API under ``/api/v1/qa`` uses, with the signed-in
user as the principal: the same scoping, the same audit trail (opening the
page is also the recording's ``view``, through the search service).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Action, Principal
from callvault.services.context import ServiceContext
from callvault.services.qa_scorecards import GROUPS, ScorecardService
from callvault.web.pages_recordings import _offset
from callvault.web.qa_chart import trend_chart
from callvault.web.render import may, page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
# The states in which the evaluated agent still has to answer the evaluation.
AGENT_TO_ANSWER = ("submitted", "reviewed")
# Catalog row ids are 32-bit: a larger one is a 422 page, not a driver error.
DEFAULT_WEEKS, MAX_WEEKS = 12, 156
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


@router.get("/qa")
def evaluations_page(request: Request, caller: Caller) -> Response:
    items = _ctx(request).qa.evaluations.list(caller, None, None, 200, 0)
    return page(request, "qa_list.html", items=items)


@router.get("/recordings/{recording_id}/evaluate")
def start_page(recording_id: str, request: Request, caller: Caller) -> Response:
    ctx = _ctx(request)
    detail = ctx.search.get(caller, recording_id)
    forms = ctx.qa.forms.list(caller)
    return page(request, "qa_start.html", r=detail, forms=forms, error=request.query_params.get("error"))


@router.post("/recordings/{recording_id}/evaluations")
async def start(recording_id: str, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    raw = field(form, "form_id")
    body = {"recording_id": recording_id, "form_id": int(raw) if raw.isdigit() else raw}
    try:
        made = await run_in_threadpool(_ctx(request).qa.evaluations.create, caller, body)
    except CallvaultError as exc:
        if exc.status_code == 404:
            raise
        return RedirectResponse(
            f"/recordings/{recording_id}/evaluate?error={exc.message[:200]}", status_code=303
        )
    return RedirectResponse(f"/qa/evaluations/{made['id']}", status_code=303)


def _evaluation_page(
    request: Request, caller: Principal, evaluation: dict[str, Any], status: int = 200, error: str = ""
) -> Response:
    ctx = _ctx(request)
    detail = ctx.search.get(caller, evaluation["recording_id"])
    answers = {a["question_id"]: a for a in evaluation["answers"]}
    is_agent = caller.user_id is not None and may(caller, Action.QA_DISPUTE)
    return page(
        request,
        "qa_evaluation.html",
        status,
        e=evaluation,
        r=detail,
        answers=answers,
        comments=[],
        timeline=[],
        may_download=False,
        playable=may(caller, Action.RECORDING_PLAY)
        and detail.get("tombstone") is None
        and bool(detail.get("audio_size")),
        editable=evaluation["state"] == "draft" and evaluation["evaluator"] == caller.username,
        reviewing=evaluation["state"] == "disputed"
        and may(caller, Action.QA_REVIEW)
        and caller.username not in (evaluation["evaluator"], evaluation["agent"]),
        agent_may_answer=is_agent and evaluation["state"] in AGENT_TO_ANSWER,
        may_dispute=is_agent and evaluation["state"] == "submitted",
        error=error or request.query_params.get("error", ""),
        done=request.query_params.get("done", ""),
    )


@router.get("/qa/evaluations/{evaluation_id}")
def evaluation_page(evaluation_id: RowId, request: Request, caller: Caller) -> Response:
    evaluation = _ctx(request).qa.evaluations.get(caller, evaluation_id)
    return _evaluation_page(request, caller, evaluation)


@router.post("/qa/evaluations/{evaluation_id}")
async def save(evaluation_id: RowId, request: Request, caller: Caller) -> Response:
    """Save the draft from the page's fields; ``action=submit`` then submits it."""
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    service = _ctx(request).qa.evaluations
    current = await run_in_threadpool(service.get, caller, evaluation_id)
    try:
        body = {"answers": _answers(current["sections"], form), "comment": field(form, "comment") or None}
        await run_in_threadpool(service.save, caller, evaluation_id, body)
        if field(form, "action") == "submit":
            await run_in_threadpool(service.submit, caller, evaluation_id)
    except CallvaultError as exc:
        if exc.status_code in (401, 403, 404):
            raise
        latest = await run_in_threadpool(service.get, caller, evaluation_id)
        return _evaluation_page(request, caller, latest, exc.status_code, exc.message)
    done = "submitted" if field(form, "action") == "submit" else "saved"
    return RedirectResponse(f"/qa/evaluations/{evaluation_id}?done={done}", status_code=303)


def _answers(sections: list[dict[str, Any]], form: FormData) -> list[dict[str, Any]]:
    """The answered questions of the posted form: ``q<id>`` value, ``at<id>`` moment, ``c<id>`` note."""
    answers = []
    for section in sections:
        for question in section["questions"]:
            qid = question["id"]
            value: Any = field(form, f"q{qid}").strip()
            note = field(form, f"c{qid}").strip()
            if question["kind"] == "comment":
                if note:
                    answers.append({"question_id": qid, "value": None, "at": None, "comment": note})
                continue
            if not value:
                continue
            if question["kind"] == "scale" and value != "na":
                if not value.isdigit():
                    raise InvalidInput(f"{question['text']}: pick a number on the scale")
                value = int(value)
            raw_at = field(form, f"at{qid}").strip()
            answers.append(
                {
                    "question_id": qid,
                    "value": value,
                    "at": _offset(raw_at) if raw_at else None,
                    "comment": note or None,
                }
            )
    return answers


@router.post("/qa/evaluations/{evaluation_id}/review")
async def review(evaluation_id: RowId, request: Request, caller: Caller) -> Response:
    """A dispute's review: uphold, or change the score to the answers posted with it."""
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    ctx = _ctx(request)
    current = await run_in_threadpool(ctx.qa.evaluations.get, caller, evaluation_id)
    try:
        body: dict[str, Any] = {"outcome": field(form, "outcome"), "note": field(form, "note") or None}
        if body["outcome"] == "change":
            body["answers"] = _answers(current["sections"], form)
        await run_in_threadpool(ctx.qa.disputes.review, caller, evaluation_id, body)
    except CallvaultError as exc:
        if exc.status_code in (401, 403, 404):
            raise
        return _evaluation_page(request, caller, current, exc.status_code, exc.message)
    return RedirectResponse(f"/qa/evaluations/{evaluation_id}?done=reviewed", status_code=303)


@router.post("/qa/evaluations/{evaluation_id}/acknowledge")
async def acknowledge(evaluation_id: RowId, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    await run_in_threadpool(_ctx(request).qa.evaluations.acknowledge, caller, evaluation_id)
    return RedirectResponse(f"/qa/evaluations/{evaluation_id}?done=acknowledged", status_code=303)


@router.post("/qa/evaluations/{evaluation_id}/dispute")
async def dispute(evaluation_id: RowId, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    try:
        body = {"reason": field(form, "reason")}
        await run_in_threadpool(_ctx(request).qa.disputes.open, caller, evaluation_id, body)
    except InvalidInput as exc:
        return RedirectResponse(
            f"/qa/evaluations/{evaluation_id}?error={exc.message[:200]}#answer", status_code=303
        )
    return RedirectResponse(f"/qa/evaluations/{evaluation_id}?done=disputed", status_code=303)


def _period(request: Request) -> tuple[str, int]:
    group = request.query_params.get("group", "team")
    raw = request.query_params.get("weeks", str(DEFAULT_WEEKS))
    if group not in GROUPS:
        raise InvalidInput(f"group must be one of {', '.join(GROUPS)}")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WEEKS:
        raise InvalidInput(f"weeks must be a whole number from 1 to {MAX_WEEKS}")
    return group, int(raw)


def _report(request: Request, caller: Principal) -> dict[str, Any]:
    group, weeks = _period(request)
    end = datetime.now(UTC)
    return _ctx(request).qa.scorecards.report(caller, group, end - timedelta(weeks=weeks), end)


@router.get("/qa/scorecards")
def scorecards_page(request: Request, caller: Caller) -> Response:
    """Per team, agent or form over the last weeks of call dates, each with its trend chart."""
    group, weeks = _period(request)
    report = _report(request, caller)
    rows = [(line, trend_chart(line["trend"])) for line in report["lines"]]
    return page(request, "qa_scorecards.html", rows=rows, group=group, weeks=weeks, groups=GROUPS)


@router.get("/qa/scorecards.csv")
def scorecards_csv(request: Request, caller: Caller) -> Response:
    group, _ = _period(request)
    report = _report(request, caller)
    return PlainTextResponse(
        ScorecardService.to_csv(report),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="scorecard-{group}.csv"'},
    )
