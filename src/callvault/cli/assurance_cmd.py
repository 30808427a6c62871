"""``callvault assurance``: call records from the PBX/ACD, reconciliation, the report.

The same services as ``/api/v1/call-records`` and ``/api/v1/reports/assurance``
(audited as ``cli:<os user>``). ``import`` checks the whole file before it
stores a record: a malformed line stops it with the line's number and nothing
is stored.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from callvault.cli.common import cli_principal, handle_errors, print_json, service_context
from callvault.errors import InvalidInput
from callvault.services.assurance import OUTCOMES, Period
from callvault.services.call_record_input import parse_csv

assurance_app = typer.Typer(
    help="Recording assurance: was every call the PBX reported recorded, and whole?",
    no_args_is_help=True,
)

_MAX_FILE_BYTES = 512 * 2**20


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{option} {value!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{option} needs a time zone, e.g. 2026-01-31T00:00:00Z")
    return parsed


@assurance_app.command("import")
@handle_errors
def import_(
    path: Annotated[Path, typer.Argument(help="CSV file of call records (columns: see the README).")],
) -> None:
    """Store the call records of a CSV file (idempotent on pbx_call_id) and reconcile them."""
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise InvalidInput(f"{path} is larger than {_MAX_FILE_BYTES // 2**20} MB; split it")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    records = parse_csv(data)
    actor = cli_principal()
    with service_context() as ctx:
        stored = ctx.call_records.store(actor, records, "csv")
        reconciled = ctx.assurance.reconcile(actor, ids=stored.ids)
    print_json({"received": len(records), **stored.to_dict(), "reconciliation": reconciled})


@assurance_app.command("reconcile")
@handle_errors
def reconcile(
    from_: Annotated[str | None, typer.Option("--from", help="Calls started at or after (ISO 8601).")] = None,
    to: Annotated[str | None, typer.Option(help="Calls started before (ISO 8601).")] = None,
) -> None:
    """Reconcile stored call records with the recordings again (raises due alerts)."""
    period = Period(_time(from_, "--from"), _time(to, "--to"))
    with service_context() as ctx:
        print_json(ctx.assurance.reconcile(cli_principal(), period=period))


@assurance_app.command("report")
@handle_errors
def report(
    from_: Annotated[str | None, typer.Option("--from", help="Calls started at or after (ISO 8601).")] = None,
    to: Annotated[str | None, typer.Option(help="Calls started before (ISO 8601).")] = None,
    outcome: Annotated[str | None, typer.Option(help=f"List only: {', '.join(OUTCOMES)}.")] = None,
    limit: Annotated[int, typer.Option(help="Calls listed (1-1000).")] = 100,
    offset: Annotated[int, typer.Option(help="Calls skipped before the first listed.")] = 0,
) -> None:
    """Expected calls of a period by outcome (totals, per agent, per team) and those not recorded whole."""
    period = Period(_time(from_, "--from"), _time(to, "--to"))
    with service_context() as ctx:
        print_json(ctx.assurance_report.report(cli_principal(), period, outcome, limit, offset))
