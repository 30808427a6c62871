"""``callvault webhooks``: subscribe receivers, list them, see their deliveries, unsubscribe.

Runs as local administration (:func:`~callvault.cli.common.cli_principal`),
audited under the OS user. ``add`` prints the signing secret once (stdout,
for a script to capture); a secret of your own comes on stdin, never on the
command line where ``ps`` and shell history would keep it.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from callvault.cli.common import cli_principal, err, handle_errors, print_json, service_context
from callvault.services.manifest import iso
from callvault.services.webhook_outbox import EVENT_TYPES

webhooks_app = typer.Typer(help="Webhook subscriptions and their deliveries.", no_args_is_help=True)
out = Console()


@webhooks_app.command("add")
@handle_errors
def add(
    url: Annotated[str, typer.Argument(help="The receiver's https:// URL.")],
    event: Annotated[
        list[str],
        typer.Option("--event", "-e", help=f"Event to send (repeatable): {', '.join(EVENT_TYPES)}."),
    ],
    description: Annotated[str | None, typer.Option(help="What the receiver is.")] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option("--secret-stdin", help="Read the signing secret from stdin instead of generating one."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Subscribe URL to events; prints the id and the signing secret (shown this once)."""
    secret = sys.stdin.readline().rstrip("\r\n") if secret_stdin else None
    with service_context() as ctx:
        created = ctx.webhooks.create(cli_principal(), url, event, secret, description)
    hook = created.webhook
    if as_json:
        print_json({"id": hook.id, "url": hook.url, "events": hook.events, "secret": created.secret})
        return
    sys.stdout.write(f"id:     {hook.id}\nsecret: {created.secret}\n")
    err.print("Keep the secret: it is not shown again. Receivers check Callvault-Signature with it.")


@webhooks_app.command("list")
@handle_errors
def list_webhooks(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Subscriptions with their delivery counts."""
    with service_context() as ctx:
        hooks = ctx.webhooks.list_all(cli_principal())
    if as_json:
        print_json(
            [
                {
                    "id": h.id,
                    "url": h.url,
                    "events": h.events,
                    "description": h.description,
                    "created_at": iso(h.created_at),
                    "deliveries": {"pending": h.pending, "delivered": h.delivered, "failed": h.failed},
                }
                for h in hooks
            ]
        )
        return
    table = Table("id", "url", "events", "pending", "delivered", "failed")
    for h in hooks:
        table.add_row(h.id, h.url, ",".join(h.events), str(h.pending), str(h.delivered), str(h.failed))
    out.print(table)


@webhooks_app.command("remove")
@handle_errors
def remove(webhook_id: Annotated[str, typer.Argument(help="The subscription's id.")]) -> None:
    """Unsubscribe; deliveries still queued for it are dropped."""
    with service_context() as ctx:
        ctx.webhooks.remove(cli_principal(), webhook_id)
    err.print(f"webhook {webhook_id} removed")


@webhooks_app.command("deliveries")
@handle_errors
def deliveries(
    webhook_id: Annotated[str, typer.Argument(help="The subscription's id.")],
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The subscription's deliveries, newest first: outcome, attempts, last HTTP status, last error."""
    with service_context() as ctx:
        items = ctx.webhooks.deliveries(cli_principal(), webhook_id, status, limit)
    if as_json:
        print_json(
            [
                {
                    "id": d.id,
                    "event_id": d.event_id,
                    "event": d.event_type,
                    "status": d.status,
                    "attempts": d.attempts,
                    "last_status_code": d.last_status_code,
                    "last_error": d.last_error,
                    "created_at": iso(d.created_at),
                    "next_attempt_at": iso(d.next_attempt_at),
                    "finished_at": iso(d.finished_at),
                }
                for d in items
            ]
        )
        return
    table = Table("id", "event", "status", "attempts", "HTTP", "last error", "created")
    for d in items:
        table.add_row(
            str(d.id),
            d.event_type,
            d.status,
            str(d.attempts),
            str(d.last_status_code or "-"),
            d.last_error or "",
            iso(d.created_at) or "",
        )
    out.print(table)
