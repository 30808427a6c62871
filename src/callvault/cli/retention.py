"""``callvault retention``, ``holds``, ``erasure`` and ``verify-certificate``.

Each command calls the same service as its API route and prints the same
answer (JSON where the API answers JSON). Local administration acts as
``cli:<os user>``; releasing a hold still takes two different people, so the
approval comes from another account (API) or another OS user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from callvault.cli.common import cli_principal, err, handle_errors, print_json, service_context
from callvault.errors import IntegrityError, InvalidInput
from callvault.services.deletion_certificate import verify_certificate

retention_app = typer.Typer(help="Retention policies and the retention sweep.", no_args_is_help=True)
policy_app = typer.Typer(help="Retention policies.", no_args_is_help=True)
holds_app = typer.Typer(help="Legal holds (release takes two people).", no_args_is_help=True)
erasure_app = typer.Typer(
    help="Erasure requests (GDPR Art. 17) and their certificates.", no_args_is_help=True
)
retention_app.add_typer(policy_app, name="policy")

Many = Annotated[list[str] | None, typer.Option()]


def _match(**conditions: list[str] | None) -> dict[str, list[str]]:
    return {key: values for key, values in conditions.items() if values}


@policy_app.command("add")
@handle_errors
def policy_add(
    name: str,
    keep_days: Annotated[int, typer.Option(help="Days to keep matching recordings.")],
    team: Many = None,
    queue: Many = None,
    direction: Many = None,
    tag: Many = None,
    status: Many = None,
    label: Many = None,
    consent: Many = None,
    legal_obligation: Annotated[bool, typer.Option(help="Erasure requests may not delete early.")] = False,
) -> None:
    """Add a policy; repeat a condition option for several accepted values."""
    match = _match(
        teams=team,
        queues=queue,
        directions=direction,
        tags=tag,
        statuses=status,
        labels=label,
        consent_states=consent,
    )
    body: dict[str, Any] = {
        "name": name,
        "keep_days": keep_days,
        "match": match,
        "legal_obligation": legal_obligation,
    }
    with service_context() as ctx:
        print_json(ctx.retention.add_policy(cli_principal(), body))


@policy_app.command("list")
@handle_errors
def policy_list() -> None:
    with service_context() as ctx:
        print_json(ctx.retention.list_policies(cli_principal()))


@policy_app.command("remove")
@handle_errors
def policy_remove(policy: Annotated[str, typer.Argument(help="Policy id or name.")]) -> None:
    with service_context() as ctx:
        ctx.retention.remove_policy(cli_principal(), policy)
    sys.stdout.write(f"removed {policy}\n")


@retention_app.command("run")
@handle_errors
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    days: Annotated[
        int | None, typer.Option(help="With --dry-run: also what goes in the next N days.")
    ] = None,
) -> None:
    """Delete every recording whose retention has passed (not held); prints counts and bytes."""
    with service_context() as ctx:
        if dry_run and days is not None:
            print_json(ctx.retention.preview(cli_principal(), days))
        else:
            print_json(ctx.retention.run(cli_principal(), dry_run=dry_run))


@retention_app.command("label")
@handle_errors
def retention_label(
    recording_id: str,
    label: Many = None,
    consent: Annotated[str | None, typer.Option(help="unknown, notified, consented or objected.")] = None,
) -> None:
    """Set a recording's regulation labels (replacing them) and/or consent state."""
    body: dict[str, Any] = {}
    if label is not None:
        body["labels"] = label
    if consent is not None:
        body["consent_state"] = consent
    with service_context() as ctx:
        print_json(ctx.labels.update(cli_principal(), recording_id, body))


@holds_app.command("create")
@handle_errors
def holds_create(
    name: str,
    reason: Annotated[str, typer.Option()],
    customer: Many = None,
    agent: Many = None,
    team: Many = None,
    from_: Annotated[str | None, typer.Option("--from")] = None,
    to: str | None = None,
    call_id: Many = None,
    recording_id: Many = None,
) -> None:
    """Create a hold; prints its id and how many recordings it holds."""
    criteria: dict[str, Any] = _match(
        customers=customer, agents=agent, teams=team, call_ids=call_id, recording_ids=recording_id
    )
    criteria.update({k: v for k, v in (("from", from_), ("to", to)) if v})
    with service_context() as ctx:
        print_json(ctx.holds.create(cli_principal(), {"name": name, "reason": reason, "criteria": criteria}))


@holds_app.command("list")
@handle_errors
def holds_list(active: Annotated[bool, typer.Option(help="Only holds in force.")] = False) -> None:
    with service_context() as ctx:
        print_json(ctx.holds.list(cli_principal(), include_released=not active))


@holds_app.command("release")
@handle_errors
def holds_release(hold_id: int) -> None:
    """Request the release (first person)."""
    with service_context() as ctx:
        print_json(ctx.holds.request_release(cli_principal(), hold_id))


@holds_app.command("approve")
@handle_errors
def holds_approve(hold_id: int) -> None:
    """Approve a requested release (a different person)."""
    with service_context() as ctx:
        print_json(ctx.holds.approve_release(cli_principal(), hold_id))


@erasure_app.command("create")
@handle_errors
def erasure_create(
    phone: str | None = None, email: str | None = None, customer_id: str | None = None
) -> None:
    """Preview an erasure: every recording of the subject (give exactly one of the options)."""
    given = {k: v for k, v in (("phone", phone), ("email", email), ("customer_id", customer_id)) if v}
    if len(given) != 1:
        raise InvalidInput("give exactly one of --phone, --email, --customer-id")
    with service_context() as ctx:
        print_json(ctx.erasure.create(cli_principal(), {"subject": given}))


@erasure_app.command("execute")
@handle_errors
def erasure_execute(request_id: str) -> None:
    """Erase what may be erased; what is kept is named with its reason."""
    with service_context() as ctx:
        print_json(ctx.erasure.execute(cli_principal(), request_id))


@erasure_app.command("certificate")
@handle_errors
def erasure_certificate(
    request_id: str, out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None
) -> None:
    """The signed deletion certificate (JSON)."""
    with service_context() as ctx:
        document = ctx.erasure.certificate(cli_principal(), request_id)
    if out is None:
        sys.stdout.write(document)
    else:
        out.write_text(document)
        err.print(f"certificate written to {out}")


@handle_errors
def verify_certificate_command(
    file: Annotated[Path, typer.Argument(help="A certificate from `erasure certificate`.")],
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key the certificate must be signed with.")
    ] = None,
) -> None:
    """Check a deletion certificate offline; exit 5 naming the problem if it was edited."""
    try:
        raw = file.read_bytes()
        trusted = public_key.read_bytes() if public_key else None
    except OSError as exc:
        raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}") from None
    try:
        body = verify_certificate(raw, trusted)
    except IntegrityError as exc:
        raise IntegrityError(f"{file}: {exc.message}") from None
    sys.stdout.write(
        json.dumps(
            {
                "valid": True,
                "request_id": body.get("request_id"),
                "executed_at": body.get("executed_at"),
                "destroyed": len(body.get("destroyed", [])),
                "kept": len(body.get("kept", [])),
                "signing_key_id": body.get("signing_key_id"),
                "key_checked_against": str(public_key) if public_key else "the key inside the certificate",
            },
            indent=2,
        )
        + "\n"
    )
