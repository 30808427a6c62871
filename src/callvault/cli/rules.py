"""``callvault rules``: the recording rules, as ``/api/v1/recording-rules`` offers them.

The same service (validation, 409 on unreachable or contradictory rules,
audit as ``cli:<os user>``); output is JSON. ``update`` replaces the whole rule
with what its options say, as ``PUT`` does.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from callvault.cli.common import cli_principal, handle_errors, print_json, service_context

rules_app = typer.Typer(
    help="Recording rules: which calls are recorded, sampled, kept on demand or not recorded.",
    no_args_is_help=True,
)

Many = Annotated[list[str] | None, typer.Option()]


def _body(
    name: str,
    action: str,
    position: int | None,
    sample_percent: float | None,
    conditions: dict[str, list[str] | None],
    window: tuple[str | None, str | None, str | None],
    set_label: list[str] | None,
    disabled: bool,
) -> dict[str, Any]:
    match: dict[str, Any] = {key: values for key, values in conditions.items() if values}
    for key, value in zip(("time_from", "time_to", "time_zone"), window, strict=True):
        if value is not None:
            match[key] = value
    body: dict[str, Any] = {"name": name, "action": action, "match": match, "set_labels": set_label or []}
    if position is not None:
        body["position"] = position
    if sample_percent is not None:
        body["sample_percent"] = sample_percent
    if disabled:
        body["enabled"] = False
    return body


def _rule_options(  # noqa: PLR0913 - one option per condition, as the API has them
    name: Annotated[str, typer.Option(help="Unique name of the rule.")],
    action: Annotated[str, typer.Option(help="record | do_not_record | sample | on_demand")],
    position: Annotated[int | None, typer.Option(help="1 = evaluated first (default: last).")] = None,
    sample_percent: Annotated[float | None, typer.Option(help="sample: percentage of calls.")] = None,
    agent: Many = None,
    team: Many = None,
    queue: Many = None,
    direction: Many = None,
    customer: Annotated[list[str] | None, typer.Option(help="E.164 number (repeatable).")] = None,
    customer_prefix: Annotated[list[str] | None, typer.Option(help="E.164 prefix, e.g. +1415.")] = None,
    label: Many = None,
    weekday: Annotated[list[str] | None, typer.Option(help="mon ... sun (repeatable).")] = None,
    time_from: Annotated[str | None, typer.Option(help="HH:MM")] = None,
    time_to: Annotated[str | None, typer.Option(help="HH:MM (before time_from: over midnight)")] = None,
    time_zone: Annotated[str | None, typer.Option(help="IANA name (default: the site's).")] = None,
    set_label: Annotated[list[str] | None, typer.Option(help="Label the call gets (repeatable).")] = None,
    disabled: Annotated[bool, typer.Option(help="Store the rule switched off.")] = False,
) -> dict[str, Any]:
    conditions = {
        "agents": agent,
        "teams": team,
        "queues": queue,
        "directions": direction,
        "customers": customer,
        "customer_prefixes": customer_prefix,
        "labels": label,
        "weekdays": weekday,
    }
    window = (time_from, time_to, time_zone)
    return _body(name, action, position, sample_percent, conditions, window, set_label, disabled)


@rules_app.command("list")
@handle_errors
def list_() -> None:
    """The rules in evaluation order."""
    with service_context() as ctx:
        print_json(ctx.recording_rules.list_rules(cli_principal()))


def _with_rule_options(command: Any, *leading: inspect.Parameter) -> Any:
    """Give ``command`` (taking ``**options``) the rule options' signature, for Typer."""
    options = inspect.signature(_rule_options, eval_str=True)
    command.__signature__ = options.replace(
        parameters=[*leading, *options.parameters.values()], return_annotation=None
    )
    return command


def _add(**options: Any) -> None:
    """Add a rule (at --position, default last)."""
    with service_context() as ctx:
        print_json(ctx.recording_rules.create(cli_principal(), _rule_options(**options)))


def _update(rule_id: int, **options: Any) -> None:
    """Replace rule RULE_ID with what the options say (conditions left out are cleared)."""
    with service_context() as ctx:
        print_json(ctx.recording_rules.update(cli_principal(), rule_id, _rule_options(**options)))


_RULE_ID = inspect.Parameter(
    "rule_id",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    annotation=Annotated[int, typer.Argument(help="Rule id (see rules list).")],
)
rules_app.command("add")(handle_errors(_with_rule_options(_add)))
rules_app.command("update")(handle_errors(_with_rule_options(_update, _RULE_ID)))


@rules_app.command("remove")
@handle_errors
def remove(rule_id: Annotated[int, typer.Argument(help="Rule id (see rules list).")]) -> None:
    with service_context() as ctx:
        ctx.recording_rules.delete(cli_principal(), rule_id)
    print_json({"removed": rule_id})


@rules_app.command("test")
@handle_errors
def test(
    agent: Many = None,
    team: Annotated[str | None, typer.Option()] = None,
    queue: Annotated[str | None, typer.Option()] = None,
    direction: Annotated[str | None, typer.Option()] = None,
    customer: Annotated[str | None, typer.Option(help="E.164 number.")] = None,
    label: Many = None,
    at: Annotated[str | None, typer.Option(help="ISO 8601 time with offset (default: now).")] = None,
    call_id: Annotated[str | None, typer.Option(help="What sampling hashes.")] = None,
) -> None:
    """Which rule and action a described call would get."""
    described: dict[str, Any] = {
        "agents": agent or None,
        "team": team,
        "queue": queue,
        "direction": direction,
        "customer": customer,
        "labels": label or None,
        "at": at,
        "call_id": call_id,
    }
    with service_context() as ctx:
        print_json(ctx.recording_rules.test(cli_principal(), {k: v for k, v in described.items() if v}))
