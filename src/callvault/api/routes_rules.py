"""``/api/v1/recording-rules``: which calls are recorded (ordered rules, the first match wins).

Admins and compliance officers change them, auditors read them too. A change
that would make a rule unreachable (an earlier rule takes all its calls), give
two rules one name or set one rule's conditions against another's with a
contradictory action answers 409 naming both rules; an unknown agent or team
400; nothing of a refused change is applied. Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/recording-rules", tags=["recording rules"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
_EXAMPLE = {
    "name": "HR line",
    "position": 1,
    "action": "do_not_record",
    "match": {"queues": ["hr"], "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
    "set_labels": [],
}
RuleBody = Annotated[dict[str, Any], Body(examples=[_EXAMPLE])]
_RULE = (
    '`{"name", "position" (1 = first; left out: last), "action": "record" | "do_not_record" | "sample" | '
    '"on_demand", "sample_percent" (sample only, 0-100 exclusive), "match": {"agents" (usernames), "teams", '
    '"queues", "directions", "customers" (E.164), "customer_prefixes", "labels", "weekdays" (mon..sun), '
    '"time_from", "time_to" (HH:MM; a window over midnight when to < from), "time_zone" (IANA; default '
    'CALLVAULT_SITE_TIME_ZONE)}, "set_labels", "enabled"}`'
)


@router.get("", summary="The recording rules in evaluation order")
def list_rules(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.recording_rules.list_rules(caller)}


@router.post(
    "", status_code=201, summary="Add a recording rule", description=_RULE + " → the rule with `id`."
)
def add_rule(ctx: Ctx, caller: Caller, body: RuleBody) -> dict[str, Any]:
    return ctx.recording_rules.create(caller, body)


@router.post(
    "/test",
    summary="Which rule and action a described call would get",
    description='`{"agent" | "agents", "team", "queue", "direction", "customer" (E.164), "labels", '
    '"at" (ISO 8601 with offset; default now), "call_id" (what sampling hashes)}` → `{"action", '
    '"record_audio", "rule", "rule_id", "position", "labels", "must_record", "sampled"}`; no rule '
    "matching records the call (`rule`: null).",
)
def test_rule(ctx: Ctx, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return ctx.recording_rules.test(caller, body)


@router.get("/{rule_id}", summary="One recording rule")
def get_rule(rule_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.recording_rules.get(caller, rule_id)


@router.put("/{rule_id}", summary="Replace a recording rule (position moves it)", description=_RULE)
def replace_rule(rule_id: int, ctx: Ctx, caller: Caller, body: RuleBody) -> dict[str, Any]:
    return ctx.recording_rules.update(caller, rule_id, body)


@router.delete("/{rule_id}", status_code=204, summary="Remove a recording rule")
def remove_rule(rule_id: int, ctx: Ctx, caller: Caller) -> Response:
    ctx.recording_rules.delete(caller, rule_id)
    return Response(status_code=204)
