"""``/api/v1/qa``: evaluation forms, evaluations, disputes, calibration, the sampling queue.

Bodies are JSON objects checked by the services (unknown fields and every
number out of range are 400); the role and team scoping is the access
table's ``qa.*`` rows. See the README, "Quality management".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/qa", tags=["quality management"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Json = Annotated[Any, Body()]
# Catalog row ids are 32-bit: a larger one is a 400, not a driver error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("/forms", status_code=201)
def create_form(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"name", "sections": [{"title", "weight", "questions": [{"text", "kind": "yes_no" | "scale" |
    "choice" | "comment", "weight", "scale_max", "choices": [{"label", "points"}], "auto_fail",
    "allow_na"}]}]}`` → the form with the ``id`` of every section and question, in the order given.
    Section weights, and the question weights of each section, add up to 100."""
    return ctx.qa.forms.create(caller, body)


@router.get("/forms")
def list_forms(ctx: Ctx, caller: Caller, all_versions: bool = False) -> dict[str, Any]:
    return {"items": ctx.qa.forms.list(caller, include_old=all_versions)}


@router.get("/forms/{form_id}")
def get_form(form_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.forms.get(caller, form_id)


@router.put("/forms/{form_id}")
def edit_form(form_id: RowId, ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """Same body as creating; questions kept from the form name their ``id``. A form that
    evaluations use gets a new version (its ``id`` is new); removing its questions is 409."""
    return ctx.qa.forms.update(caller, form_id, body)


@router.post("/evaluations", status_code=201)
def create_evaluation(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"recording_id", "form_id", "calibration_id"?}`` → the draft evaluation with its ``id``."""
    return ctx.qa.evaluations.create(caller, body)


@router.get("/evaluations")
def list_evaluations(
    ctx: Ctx,
    caller: Caller,
    recording_id: str | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    return {"items": ctx.qa.evaluations.list(caller, recording_id, state, limit, offset)}


@router.get("/evaluations/{evaluation_id}")
def get_evaluation(evaluation_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The evaluation with its answers (each pinned ``at`` a moment), the call's timeline,
    the dispute and every revision of the score."""
    return ctx.qa.evaluations.get(caller, evaluation_id)


@router.put("/evaluations/{evaluation_id}")
def save_evaluation(evaluation_id: RowId, ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """Save the draft: ``{"answers": [{"question_id", "value", "at", "comment"}], "comment"}``
    replaces its answers; returns it with the provisional ``score``."""
    return ctx.qa.evaluations.save(caller, evaluation_id, body)


@router.post("/evaluations/{evaluation_id}/submit")
def submit_evaluation(evaluation_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Submit once (every scored question answered) → the evaluation with its ``score``."""
    return ctx.qa.evaluations.submit(caller, evaluation_id)


@router.post("/evaluations/{evaluation_id}/acknowledge")
def acknowledge_evaluation(evaluation_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.evaluations.acknowledge(caller, evaluation_id)


@router.post("/evaluations/{evaluation_id}/dispute", status_code=201)
def dispute_evaluation(evaluation_id: RowId, ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """The evaluated agent, once: ``{"reason"}``."""
    return ctx.qa.disputes.open(caller, evaluation_id, body)


@router.post("/evaluations/{evaluation_id}/review")
def review_dispute(evaluation_id: RowId, ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"outcome": "uphold" | "change", "answers" (change), "note"}`` by someone other than
    the evaluator and the agent."""
    return ctx.qa.disputes.review(caller, evaluation_id, body)


@router.get("/disputes")
def list_disputes(ctx: Ctx, caller: Caller, open: bool = False) -> dict[str, Any]:
    return {"items": ctx.qa.disputes.list(caller, open_only=open)}


@router.post("/calibrations", status_code=201)
def create_calibration(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"name", "recording_id", "form_id", "evaluators": [usernames], "expert"?}``."""
    return ctx.qa.calibrations.create(caller, body)


@router.get("/calibrations")
def list_calibrations(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.qa.calibrations.list(caller)}


@router.get("/calibrations/{calibration_id}")
def get_calibration(calibration_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.calibrations.get(caller, calibration_id)


@router.get("/calibrations/{calibration_id}/results")
def calibration_results(calibration_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Answers side by side, variance per question, each evaluator against the consensus."""
    return ctx.qa.calibrations.results(caller, calibration_id)


@router.post("/sampling-rules", status_code=201)
def create_sampling_rule(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"name", "form_id", "kind": "random" | "targeted", "per_week", "team"?, "criteria"?:
    {"min_duration", "max_duration", "statuses", "tags", "categories", "min_overtalk",
    "max_customer_sentiment", "customer_ends_negative"}}``: the last four are what speech
    analytics found (phrase categories by name, any of them; seconds of overtalk; the customer's
    sentiment -1..1 over the call; a negative last quarter)."""
    return ctx.qa.sampling.create_rule(caller, body)


@router.get("/sampling-rules")
def list_sampling_rules(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.qa.sampling.list_rules(caller)}


@router.post("/queue/sample")
def sample_queue(ctx: Ctx, caller: Caller, week: str | None = None) -> dict[str, Any]:
    """Sample the calls started in ISO ``week`` (``2026-W49``; default: this week) into the queue."""
    return ctx.qa.sampling.run(caller, week)


@router.get("/queue")
def get_queue(ctx: Ctx, caller: Caller, include_started: bool = False) -> dict[str, Any]:
    return {"items": ctx.qa.sampling.queue(caller, include_started)}
