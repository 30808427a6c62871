"""``callvault audit``: verify the hash-chained audit log, sign a checkpoint now."""

from __future__ import annotations

import sys

import typer

from callvault.cli.common import cli_principal, handle_errors, service_context
from callvault.services.audit_verify import AuditVerifier

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("verify")
@handle_errors
def audit_verify() -> None:
    """Walk the audit log's hash chain and signed checkpoints; exit 5 naming the first broken entry."""
    with service_context() as ctx:
        report = AuditVerifier(ctx.catalog, ctx.signer, ctx.audit_log).verify(cli_principal())
    for problem in report.problems:
        sys.stdout.write(f"FAIL {problem.line()}\n")
    last = report.last_checkpoint_seq
    sys.stdout.write(
        f"{report.entries} entries, {report.checkpoints} checkpoint(s), last signed seq "
        f"{last if last is not None else '-'}, {len(report.problems)} problem(s)\n"
    )
    if report.problems:
        raise typer.Exit(5)


@audit_app.command("checkpoint")
@handle_errors
def audit_checkpoint() -> None:
    """Sign the audit log's head now (serve does so every minute and at shutdown)."""
    with service_context() as ctx:
        checkpoint = ctx.audit_log.checkpoint()
    sys.stdout.write(f"signed seq {checkpoint.seq}\n" if checkpoint else "the audit log is empty\n")
