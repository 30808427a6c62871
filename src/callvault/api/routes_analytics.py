"""``/api/v1/analytics/categories``: phrase categories spotted in every analysed call.

QA leads (admins, supervisors, QA evaluators) create, change and delete them;
anyone who may search recordings lists them, then filters recordings by one
(``GET /api/v1/recordings?category=<name>``). A category with ``within_s`` is a
script requirement reported per call as met or missed (the recording's detail,
``analytics.adherence``). A duplicate name answers 409, a bad body 400; every
change is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/analytics", tags=["speech analytics"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
_EXAMPLE = {
    "name": "recording disclosure",
    "speaker": "agent",
    "phrases": ["this call is recorded", "this call may be recorded"],
    "within_s": 30,
}
CategoryBody = Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]
_CATEGORY = (
    '`{"name" (1-80 characters, unique), "phrases" (1-200, each 1-12 words), "speaker": "agent" | '
    '"customer" | "any" (default any), "within_s" (seconds from the call\'s start: a script requirement; '
    "null or left out: spotted only)}`"
)


@router.get("/categories", summary="The phrase categories")
def list_categories(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.phrase_categories.list_all(caller)}


@router.post("/categories", status_code=201, summary="Add a phrase category", description=_CATEGORY)
def add_category(ctx: Ctx, caller: Caller, body: CategoryBody) -> dict[str, Any]:
    return ctx.phrase_categories.create(caller, body)


@router.get("/categories/{category_id}", summary="One phrase category")
def get_category(category_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.phrase_categories.get(caller, category_id)


@router.patch(
    "/categories/{category_id}", summary="Change a phrase category", description="Any fields of " + _CATEGORY
)
def change_category(category_id: int, ctx: Ctx, caller: Caller, body: CategoryBody) -> dict[str, Any]:
    return ctx.phrase_categories.update(caller, category_id, body)


@router.delete("/categories/{category_id}", status_code=204, summary="Delete a phrase category and its hits")
def delete_category(category_id: int, ctx: Ctx, caller: Caller) -> Response:
    ctx.phrase_categories.delete(caller, category_id)
    return Response(status_code=204)


@router.post(
    "/reanalyse",
    summary="Analyse transcribed calls again (after categories change)",
    description='`{"from", "to"}` (ISO 8601 with offset; calls started in [from, to)) → `{"queued"}`: '
    "one `analyse` job per transcribed call, behind new calls. QA leads only; at most 50,000 calls.",
)
def reanalyse(ctx: Ctx, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    started_from, started_to = _when(body, "from"), _when(body, "to")
    return {"queued": ctx.insights.reanalyse(caller, started_from, started_to)}


def _when(body: dict[str, Any], name: str) -> datetime:
    raw = body.get(name)
    if not isinstance(raw, str):
        raise InvalidInput(f"{name}: an ISO 8601 time with offset")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name}: {raw[:40]!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name}: needs a time zone, e.g. 2026-01-31T09:00:00Z")
    return value
