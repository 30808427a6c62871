"""``callvault export``, ``verify-bundle`` (evidence bundles) and ``access-request`` (GDPR Art. 15)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from callvault.cli.common import cli_principal, handle_errors, service_context
from callvault.errors import InvalidInput
from callvault.services.context import ServiceContext
from callvault.services.evidence import EvidenceService
from callvault.services.evidence_verify import verify_bundle


def evidence_service(ctx: ServiceContext) -> EvidenceService:
    return EvidenceService(ctx.catalog, ctx.signer, ctx.access_log, ctx.audit_log, ctx.playback, ctx.search)


@handle_errors
def export(
    recording_id: str,
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle (zip).")],
) -> None:
    """Write a recording's evidence bundle: audio, metadata, signed manifest, audit trail, vCon."""
    with service_context() as ctx:
        data = evidence_service(ctx).build(cli_principal(), recording_id)
    out.write_bytes(data)
    sys.stdout.write(f"{out} ({len(data)} bytes)\n")


@handle_errors
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle zip.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The server's public key (PEM) to trust.")
    ] = None,
) -> None:
    """Check an evidence bundle offline; exit 5 naming each changed member, 2 if it is no bundle."""
    try:
        data = bundle.read_bytes()
        key = public_key.read_bytes() if public_key is not None else None
    except OSError as exc:
        raise InvalidInput(f"cannot read {exc.filename}: {exc.strerror}") from None
    report = verify_bundle(data, key)
    for member, why in report.failures:
        sys.stdout.write(f"FAIL {member}: {why}\n")
    if not report.ok:
        sys.stdout.write(f"bundle of recording {report.recording_id or '?'} FAILED\n")
        raise typer.Exit(5)
    trust = "the given public key" if public_key is not None else "the bundled public key"
    sys.stdout.write(
        f"OK: {len(report.checked)} members of recording {report.recording_id} verify under {trust}\n"
    )


@handle_errors
def access_request(
    out: Annotated[Path, typer.Option("--out", help="Where to write the zip.")],
    phone: Annotated[str | None, typer.Option(help="The person's number, in any format.")] = None,
    email: Annotated[str | None, typer.Option(help="The person's email address.")] = None,
    customer_id: Annotated[str | None, typer.Option("--customer-id", help="An external customer id.")] = None,
) -> None:
    """GDPR Art. 15: write every recording of one person (audio and metadata) to one zip."""
    subject = {"phone": phone, "email": email, "customer_id": customer_id}
    with service_context() as ctx:
        data, count = ctx.access_requests.export(cli_principal(), subject)
    out.write_bytes(data)
    sys.stdout.write(f"{out}: {count} recording(s)\n")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("verify-bundle")(verify_bundle_command)
    app.command("access-request")(access_request)
