"""``callvault consent``: the consent requirements table, as an operator scripts it.

The same service as ``/api/v1/consent/jurisdictions`` (edits audited as
``cli:<os user>``); errors are exit codes with the reason on stderr.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from callvault.cli.common import cli_principal, handle_errors, print_json, service_context

consent_app = typer.Typer(
    help="Consent by jurisdiction: what each state or country needs before a call is recorded.",
    no_args_is_help=True,
)


@consent_app.command("jurisdictions")
@handle_errors
def jurisdictions() -> None:
    """The requirements table in force (shipped rows and edited ones)."""
    with service_context() as ctx:
        print_json(ctx.jurisdictions.list(cli_principal()))


@consent_app.command("set")
@handle_errors
def set_(
    code: Annotated[
        str, typer.Argument(help="ISO 3166-1 country (DE), ISO 3166-2 subdivision (US-CA) or *.")
    ],
    requirement: Annotated[
        str | None,
        typer.Option(help="one_party, all_party_notification or explicit_consent (default: the row's)."),
    ] = None,
    gdpr: Annotated[bool | None, typer.Option("--gdpr/--no-gdpr", help="Whether the GDPR applies.")] = None,
    name: Annotated[str | None, typer.Option(help="A name for people to read.")] = None,
) -> None:
    """Set one jurisdiction's row, adding it or overriding the shipped one."""
    body: dict[str, Any] = {}
    if requirement is not None:
        body["requirement"] = requirement
    if gdpr is not None:
        body["gdpr"] = gdpr
    if name is not None:
        body["name"] = name
    with service_context() as ctx:
        print_json(ctx.jurisdictions.put(cli_principal(), code, body))


@consent_app.command("reset")
@handle_errors
def reset(code: Annotated[str, typer.Argument(help="The jurisdiction whose edit to drop.")]) -> None:
    """Drop an edited row: the shipped one (if any) is in force again."""
    with service_context() as ctx:
        print_json(ctx.jurisdictions.reset(cli_principal(), code))


@consent_app.command("lookup")
@handle_errors
def lookup(number: Annotated[str, typer.Argument(help="A number in E.164, e.g. +14155550100.")]) -> None:
    """Where a number is placed and what it needs."""
    with service_context() as ctx:
        print_json(ctx.jurisdictions.lookup(cli_principal(), number))
