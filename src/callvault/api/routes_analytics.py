"""``/api/v1/analytics/categories``: phrase categories spotted in every analysed call.

QA leads (admins, supervisors, QA evaluators) create, change and delete them;
anyone who may search recordings lists them, then filters recordings by one
(``GET /api/v1/recordings?category=<name>``). A category with ``within_s`` is a
script requirement reported per call as met or missed (the recording's detail,
``analytics.adherence``). A duplicate name answers 409, a bad body 400; every
change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from callvault.api.deps import context, principal
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
