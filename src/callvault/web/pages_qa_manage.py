"""A QA lead's pages: evaluation forms (build, edit: a form in use gets a new version), sampling
rules and the evaluator's queue they fill, and setting up a calibration session.

Every post carries the session's CSRF token and goes to the service the API
uses (``FormService``, ``SamplingService``, ``CalibrationService``), which
checks the role and scope and writes the audit entry (``qa_form_create``,
``qa_form_edit`` / ``qa_form_version``, ``qa_rule_create``, ``qa_sample``,
``qa_calibration``). A refused post shows the page again with what was typed
and the service's message, nothing saved.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from callvault.db.models import User
from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Action, Principal, Role, allowed, require
from callvault.services.context import ServiceContext
from callvault.web.qa_form_builder import read_builder, rows
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
STATUSES = ("complete", "incomplete", "interrupted")
BUILDER_FIELDS = 5000  # a form of ~600 questions (8 inputs each) with its sections
BUILDER_BYTES = 1024 * 1024
EVALUATOR_ROLES = (Role.QA_EVALUATOR.value, Role.SUPERVISOR.value, Role.ADMIN.value)


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


# -- forms ------------------------------------------------------------------------------------


@router.get("/qa/forms")
def forms_page(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    saved = request.query_params.get("saved", "")
    forms = _ctx(request).qa.forms.list(caller)
    done = next((f for f in forms if str(f["id"]) == saved), None)
    notice = f"Form {done['name']} saved (version {done['version']})." if done else ""
    return page(request, "qa_forms.html", forms=forms, notice=notice)


def _builder(request: Request, status_code: int = 200, **values: Any) -> Response:
    body = values.pop("body")
    values.setdefault("in_use", False)
    values.setdefault("form_version", 1)
    return page(
        request,
        "qa_form_edit.html",
        status_code,
        name=body.get("name", ""),
        sections=rows(body),
        **values,
    )


@router.get("/qa/forms/new")
def new_form(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    return _builder(request, body={}, action="/qa/forms/new", form_id=None)


@router.post("/qa/forms/new")
async def create_form(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    form = await read_form(request, BUILDER_FIELDS, BUILDER_BYTES)
    check_csrf(request, field(form, "csrf"))
    body: dict[str, Any] = {}
    try:
        body = read_builder(form)
        made = await run_in_threadpool(_ctx(request).qa.forms.create, caller, body)
    except CallvaultError as exc:
        return _builder(
            request, exc.status_code, body=body, action="/qa/forms/new", form_id=None, error=exc.message
        )
    return RedirectResponse(f"/qa/forms?saved={made['id']}", status_code=303)


@router.get("/qa/forms/{form_id}/edit")
def edit_form(form_id: RowId, request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    current = _ctx(request).qa.forms.get(caller, form_id)
    return _builder(
        request,
        body=current,
        action=f"/qa/forms/{form_id}/edit",
        form_id=form_id,
        in_use=current["in_use"],
        form_version=current["version"],
    )


@router.post("/qa/forms/{form_id}/edit")
async def save_form(form_id: RowId, request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    form = await read_form(request, BUILDER_FIELDS, BUILDER_BYTES)
    check_csrf(request, field(form, "csrf"))
    forms = _ctx(request).qa.forms
    body: dict[str, Any] = {}
    try:
        body = read_builder(form)
        saved = await run_in_threadpool(forms.update, caller, form_id, body)
    except CallvaultError as exc:
        current = await run_in_threadpool(forms.get, caller, form_id)
        return _builder(
            request,
            exc.status_code,
            body=body,
            action=f"/qa/forms/{form_id}/edit",
            form_id=form_id,
            in_use=current["in_use"],
            form_version=current["version"],
            error=exc.message,
        )
    return RedirectResponse(f"/qa/forms?saved={saved['id']}", status_code=303)


# -- sampling rules and the queue ---------------------------------------------------------------


def _queue_page(request: Request, caller: Principal, status_code: int = 200, **values: Any) -> Response:
    ctx = _ctx(request)
    return page(
        request,
        "qa_queue.html",
        status_code,
        rules=ctx.qa.sampling.list_rules(caller),
        queue=ctx.qa.sampling.queue(caller),
        forms=ctx.qa.forms.list(caller),
        statuses=STATUSES,
        categories=_category_names(ctx, caller),
        **values,
    )


def _category_names(ctx: ServiceContext, caller: Principal) -> list[str]:
    """The phrase categories a targeted rule may ask for (none for a role that may not list them)."""
    if allowed(caller, Action.RECORDING_SEARCH) is None:
        return []
    return [c["name"] for c in ctx.phrase_categories.list_all(caller)]


@router.get("/qa/queue")
def queue_page(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_EVALUATE)
    return _queue_page(request, caller, notice=request.query_params.get("done", "")[:200])


def _seconds(raw: str, label: str) -> float | None:
    if not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{label}: a number of seconds, e.g. 60") from None


def _number(raw: str, label: str) -> float | None:
    if not raw.strip():
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{label}: a number from -1 to 1, e.g. -0.3") from None


def _criteria(form: Any) -> dict[str, Any]:
    criteria: dict[str, Any] = {}
    for bound in ("min_duration", "max_duration", "min_overtalk"):
        value = _seconds(field(form, bound), bound.replace("_", " "))
        if value is not None:
            criteria[bound] = value
    sentiment = _number(field(form, "max_customer_sentiment"), "customer sentiment at most")
    if sentiment is not None:
        criteria["max_customer_sentiment"] = sentiment
    if field(form, "customer_ends_negative"):
        criteria["customer_ends_negative"] = True
    for name in ("statuses", "categories"):
        chosen = [v for v in form.getlist(name) if isinstance(v, str)]
        if chosen:
            criteria[name] = chosen
    tags = [t.strip() for t in field(form, "tags").split(",") if t.strip()]
    if tags:
        criteria["tags"] = tags
    return criteria


def _rule_body(form: Any) -> dict[str, Any]:
    per_week = field(form, "per_week").strip()
    criteria = _criteria(form)
    form_id = field(form, "form_id")
    body: dict[str, Any] = {
        "name": field(form, "name"),
        "form_id": int(form_id) if form_id.isdigit() else form_id,
        "kind": field(form, "kind") or "random",
        "per_week": int(per_week) if per_week.isdigit() else per_week,
        "criteria": criteria,
    }
    if field(form, "team").strip():
        body["team"] = field(form, "team").strip()
    return body


@router.post("/qa/rules")
async def create_rule(request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    try:
        rule = await run_in_threadpool(_ctx(request).qa.sampling.create_rule, caller, _rule_body(form))
    except CallvaultError as exc:
        return _queue_page(request, caller, exc.status_code, error=exc.message)
    return RedirectResponse(f"/qa/queue?done=Rule {rule['name']} saved.", status_code=303)


@router.post("/qa/queue/run")
async def run_sampling(request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    week = field(form, "week").strip() or None
    try:
        result = await run_in_threadpool(_ctx(request).qa.sampling.run, caller, week)
    except CallvaultError as exc:
        return _queue_page(request, caller, exc.status_code, error=exc.message)
    notice = f"Week {result['week']}: {result['added']} call(s) added to the queue."
    return RedirectResponse(f"/qa/queue?done={notice}", status_code=303)


# -- calibration set-up ----------------------------------------------------------------------


def _evaluators(ctx: ServiceContext) -> list[str]:
    """Accounts that may evaluate (the service checks each one's team against the call)."""
    with ctx.catalog.read() as session:
        return list(
            session.scalars(
                select(User.username)
                .where(User.role.in_(EVALUATOR_ROLES), User.disabled.is_not(True))
                .order_by(User.username)
            )
        )


def _setup_page(request: Request, status_code: int = 200, **values: Any) -> Response:
    ctx = _ctx(request)
    caller: Principal = request.state.principal
    values.setdefault("chosen", [])
    return page(
        request,
        "qa_calibration_new.html",
        status_code,
        forms=ctx.qa.forms.list(caller),
        evaluators=_evaluators(ctx),
        **values,
    )


@router.get("/qa/calibrations/new")
def new_calibration(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    return _setup_page(request, recording_id=request.query_params.get("recording", "")[:36])


@router.post("/qa/calibrations/new")
async def create_calibration(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_FORM_MANAGE)
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    chosen = [e for e in form.getlist("evaluators") if isinstance(e, str)]
    form_id = field(form, "form_id")
    body: dict[str, Any] = {
        "name": field(form, "name"),
        "recording_id": field(form, "recording_id").strip(),
        "form_id": int(form_id) if form_id.isdigit() else form_id,
        "evaluators": chosen,
    }
    if field(form, "expert"):
        body["expert"] = field(form, "expert")
    try:
        made = await run_in_threadpool(_ctx(request).qa.calibrations.create, caller, body)
    except CallvaultError as exc:
        return _setup_page(
            request,
            exc.status_code,
            error=exc.message,
            recording_id=body["recording_id"],
            name=body["name"],
            chosen=chosen,
        )
    return RedirectResponse(f"/qa/calibrations/{made['id']}", status_code=303)
