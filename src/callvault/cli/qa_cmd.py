"""``callvault qa``: what an operator scripts of quality management.

Sampling runs from cron (``callvault qa sample``, idempotent per week), forms
are kept in version control and loaded from JSON (``callvault qa form-add``,
``form-edit``), scorecards are exported as CSV for the monthly review
(``callvault qa scorecard --csv``). The same services as ``/api/v1/qa``,
acting as admin and audited as ``cli:<os user>``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from callvault.cli.common import cli_principal, handle_errors, print_json, service_context
from callvault.errors import InvalidInput

qa_app = typer.Typer(
    help="Quality management: forms, the evaluation queue, scorecards.", no_args_is_help=True
)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from None


@qa_app.command("form-add")
@handle_errors
def form_add(
    path: Annotated[Path, typer.Argument(help="JSON file: {name, sections: [...]} as the API takes.")],
) -> None:
    """Create an evaluation form; prints it with its section and question ids."""
    with service_context() as ctx:
        print_json(ctx.qa.forms.create(cli_principal(), _read_json(path)))


@qa_app.command("form-edit")
@handle_errors
def form_edit(
    form_id: Annotated[int, typer.Argument(help="The form's id.")],
    path: Annotated[Path, typer.Argument(help="JSON file; kept questions name their id.")],
) -> None:
    """Edit a form (a new version when evaluations use it)."""
    with service_context() as ctx:
        print_json(ctx.qa.forms.update(cli_principal(), form_id, _read_json(path)))


@qa_app.command("forms")
@handle_errors
def forms(all_versions: Annotated[bool, typer.Option("--all-versions")] = False) -> None:
    """List the forms (current versions unless --all-versions)."""
    with service_context() as ctx:
        print_json(ctx.qa.forms.list(cli_principal(), include_old=all_versions))


@qa_app.command("sample")
@handle_errors
def sample(
    week: Annotated[
        str | None, typer.Option(help="ISO week of the calls, e.g. 2026-W49 (default: this week).")
    ] = None,
) -> None:
    """Sample the week's calls into the evaluation queue by every sampling rule (idempotent)."""
    with service_context() as ctx:
        result = ctx.qa.sampling.run(cli_principal(), week)
    print_json({"week": result["week"], "added": result["added"]})


@qa_app.command("scorecard")
@handle_errors
def scorecard(
    group: Annotated[str, typer.Option(help="agent, team or form.")] = "team",
    from_: Annotated[
        datetime | None, typer.Option("--from", help="First call date (default: 12 weeks ago).")
    ] = None,
    to: Annotated[datetime | None, typer.Option(help="End of the period, exclusive (default: now).")] = None,
    form_id: Annotated[int | None, typer.Option(help="Only this form (all its versions).")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout instead of JSON.")] = False,
) -> None:
    """Scorecards per agent, team or form: evaluations, average, auto-fail rate, weekly trend."""
    with service_context() as ctx:
        report = ctx.qa.scorecards.report(cli_principal(), group, from_, to, form_id)
        if csv:
            sys.stdout.write(ctx.qa.scorecards.to_csv(report))
            return
    print_json(report)
