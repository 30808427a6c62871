"""``callvault`` commands: serve, import-audio, import-pcap, recordings, verify, keys, admin, webhooks,
announcements, assurance, rules, qa, consent, demo, settings."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from callvault.cli import evidence_cmd
from callvault.cli.analytics_cmd import analytics_app
from callvault.cli.announcements import announcements_app
from callvault.cli.assurance_cmd import assurance_app
from callvault.cli.audit_cmd import audit_app
from callvault.cli.common import cli_principal, err, handle_errors, print_json, service_context
from callvault.cli.consent_cmd import consent_app
from callvault.cli.demo_setup import ensure_demo_agent
from callvault.cli.import_pcap import import_pcap
from callvault.cli.jobs_cmd import register as register_jobs
from callvault.cli.qa_cmd import qa_app
from callvault.cli.recordings_table import recordings_table
from callvault.cli.retention import (
    erasure_app,
    holds_app,
    retention_app,
    verify_certificate_command,
)
from callvault.cli.rules import rules_app
from callvault.cli.webhooks import webhooks_app
from callvault.errors import InvalidInput
from callvault.services.call_record import IngestSource
from callvault.services.importer import ImportRequest
from callvault.services.search import RecordingQuery
from callvault.settings import load_settings, settings_table

app = typer.Typer(help="callvault: call recording and compliance for contact centers.", no_args_is_help=True)
recordings_app = typer.Typer(help="Search and inspect recordings.", no_args_is_help=True)
keys_app = typer.Typer(help="Encryption keys.", no_args_is_help=True)
admin_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(recordings_app, name="recordings")
app.add_typer(keys_app, name="keys")
app.add_typer(admin_app, name="admin")
app.add_typer(audit_app, name="audit")
evidence_cmd.register(app)
app.add_typer(retention_app, name="retention")
app.add_typer(holds_app, name="holds")
app.add_typer(erasure_app, name="erasure")
app.command("verify-certificate")(verify_certificate_command)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(announcements_app, name="announcements")
app.add_typer(assurance_app, name="assurance")
app.add_typer(consent_app, name="consent")
app.add_typer(rules_app, name="rules")
app.add_typer(qa_app, name="qa")
register_jobs(app)  # callvault worker, callvault jobs
app.add_typer(analytics_app, name="analytics")
out = Console()

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga"}


@app.command()
@handle_errors
def serve() -> None:
    """Run the HTTP API and the SIPREC recorder (Ctrl-C stops gracefully)."""
    from callvault.cli.serve import run_server

    run_server(load_settings())


app.command("import-pcap")(import_pcap)


@app.command("import-audio")
@handle_errors
def import_audio(
    path: Annotated[Path, typer.Argument(help="An audio file, or a folder of them (imported recursively).")],
    agent: Annotated[str | None, typer.Option(help="Agent username or SIP identity.")] = None,
    customer: Annotated[str | None, typer.Option(help="Customer phone number.")] = None,
    direction: Annotated[str | None, typer.Option(help="inbound or outbound.")] = None,
    started_at: Annotated[str | None, typer.Option(help="ISO 8601 start time with zone.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue or skill the call came through.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable).")] = None,
) -> None:
    """Import recordings made elsewhere (WAV, FLAC, MP3, Ogg). Prints each new recording id."""
    if direction not in (None, "inbound", "outbound"):
        raise InvalidInput("--direction must be inbound or outbound")
    start: datetime | None = None
    if started_at:
        try:
            start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"--started-at {started_at!r} is not an ISO 8601 time") from None
        if start.tzinfo is None:
            raise InvalidInput("--started-at needs a time zone, e.g. 2026-01-31T09:00:00Z")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise InvalidInput(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {path}")
    elif path.is_file():
        files = [path]
    else:
        raise InvalidInput(f"{path} does not exist")
    actor = cli_principal()
    source = IngestSource("import", user=actor.username, os_user=actor.username.removeprefix("cli:"))
    failures = 0
    with service_context() as ctx:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=len(files) == 1,
        )
        with progress:
            task = progress.add_task("importing", total=len(files))
            for file in files:
                request = ImportRequest(
                    agent,
                    customer,
                    direction,  # type: ignore[arg-type]
                    start,
                    queue,
                    list(tag or []),
                    file.name,
                    source,
                )
                try:
                    recording_id = ctx.importer.import_bytes(actor, file.read_bytes(), request)
                except InvalidInput as exc:
                    failures += 1
                    err.print(f"[red]error:[/red] {file}: {exc.message}", highlight=False)
                else:
                    sys.stdout.write(recording_id + "\n")
                    sys.stdout.flush()
                progress.advance(task)
    if failures:
        raise typer.Exit(2)


@recordings_app.command("list")
@handle_errors
def recordings_list(
    agent: str | None = None,
    customer: str | None = None,
    from_: Annotated[datetime | None, typer.Option("--from")] = None,
    to: datetime | None = None,
    direction: str | None = None,
    queue: str | None = None,
    tag: str | None = None,
    call_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search recordings."""
    query = RecordingQuery(
        agent=agent,
        customer=customer,
        started_from=from_,
        started_to=to,
        direction=direction,  # type: ignore[arg-type]
        queue=queue,
        tag=tag,
        call_id=call_id,
        status=status,
        limit=limit,
        offset=offset,
    )
    with service_context() as ctx:
        page = ctx.search.search(cli_principal(), query)
    if as_json:
        print_json({"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset})
        return
    out.print(recordings_table(page.items))
    out.print(f"{page.total} recording(s)")


@recordings_app.command("show")
@handle_errors
def recordings_show(recording_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one recording with participants, streams and hashes."""
    with service_context() as ctx:
        principal = cli_principal()
        detail = ctx.search.get(principal, ctx.search.resolve_id(principal, recording_id))
    if as_json:
        print_json(detail)
        return
    for key, value in detail.items():
        out.print(f"[bold]{key}[/bold]: {value}", highlight=False)


@recordings_app.command("destroy-audio")
@handle_errors
def recordings_destroy_audio(
    recording_id: str,
    reason: Annotated[str, typer.Option(help="Why (erasure request, retention); kept in the access trail.")],
) -> None:
    """Crypto-shred a recording: its data key is destroyed, its audio unrecoverable; the signed row stays."""
    with service_context() as ctx:
        destroyed = ctx.playback.destroy_audio(cli_principal(), recording_id, reason)
    sys.stdout.write(("audio destroyed" if destroyed else "audio was already destroyed") + "\n")


@app.command()
@handle_errors
def verify(
    recording_id: Annotated[str | None, typer.Argument(help="One recording id; omit with --all.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Verify every recording.")] = False,
) -> None:
    """Check stored objects, hashes, manifests and signatures; exit 5 if any recording fails.

    With --all the seal log is walked too: recordings missing from the catalog,
    rows inserted without being sealed here, and a catalog rolled back to an
    older backup are named.
    """
    if not recording_id and not all_:
        raise InvalidInput("give a recording id or --all")
    log_lines: list[str] = []
    with service_context() as ctx:
        total = 1 if recording_id else len(ctx.integrity.recording_ids())
        with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), console=err) as progress:
            task = progress.add_task("verify", total=total)
            advance = lambda _r: progress.advance(task)  # noqa: E731
            if recording_id:
                results = ctx.integrity.verify(cli_principal(), [recording_id], progress=advance)
            else:
                report = ctx.integrity.verify_all(cli_principal(), progress=advance)
                results = report.results
                log_lines = [problem.line() for problem in report.log_problems]
    failed = [r for r in results if not r.ok]
    for result in failed:
        sys.stdout.write(f"FAIL {result.recording_id}: {'; '.join(result.problems)}\n")
    for line in log_lines:
        sys.stdout.write(f"FAIL {line}\n")
    summary = f"{len(results)} checked, {len(failed)} failed"
    sys.stdout.write(summary + (f", {len(log_lines)} seal log problem(s)" if log_lines else "") + "\n")
    if failed or log_lines:
        raise typer.Exit(5)


@keys_app.command("rotate")
@handle_errors
def keys_rotate(
    signing: Annotated[
        bool,
        typer.Option("--signing", help="Rotate the manifest signing key instead (old public key kept)."),
    ] = False,
) -> None:
    """New key-encryption key; re-wrap every data key (audio is not re-encrypted)."""
    if signing:
        with service_context() as ctx:
            rotated = ctx.key_rotation.rotate_signing(cli_principal())
        sys.stdout.write(
            f"new signing key {rotated.new_key_id}; {rotated.old_key_id} retired "
            "(its public key is kept, so what it signed still verifies)\n"
        )
        return
    with service_context() as ctx:
        with Progress(TextColumn("re-wrapping"), BarColumn(), MofNCompleteColumn(), console=err) as progress:
            task = progress.add_task("rotate", total=None)
            result = ctx.key_rotation.rotate(
                cli_principal(),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    sys.stdout.write(
        f"new key-encryption key {result.new_kek_id}; {result.rewrapped} data keys re-wrapped; "
        f"retired {len(result.retired)} old key(s)\n"
    )


@admin_app.command("create-user")
@handle_errors
def create_user(
    name: str,
    role: Annotated[
        str,
        typer.Option(help="admin, compliance_officer, supervisor, qa_evaluator, agent, auditor, integration"),
    ],
    team: str | None = None,
    sip_identity: Annotated[list[str] | None, typer.Option(help="AOR or extension (repeatable).")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    display_name: str | None = None,
    must_record: Annotated[
        bool, typer.Option("--must-record", help="Regulated staff: every call recorded, whatever the rules.")
    ] = False,
) -> None:
    """Create a user (agents: link their SIP identities so recordings attach to them)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    with service_context() as ctx:
        info = ctx.users.create_user(
            cli_principal(),
            name,
            role,
            team=team,
            sip_identities=list(sip_identity or []),
            password=password,
            display_name=display_name,
            must_record=must_record,
        )
    sys.stdout.write(
        f"created {info.role} {info.username}" + (f" in team {info.team}" if info.team else "") + "\n"
    )


@admin_app.command("create-token")
@handle_errors
def create_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    ttl_hours: Annotated[
        float | None,
        typer.Option(help="Lifetime in hours; at most (and by default) CALLVAULT_TOKEN_MAX_LIFETIME_HOURS."),
    ] = None,
) -> None:
    """Create an API token for a user; prints the token alone (it is shown only once)."""
    if ttl_hours is not None and not 0 < ttl_hours <= 24 * 366:
        raise InvalidInput("--ttl-hours must be above 0 and at most a year")
    ttl = timedelta(hours=ttl_hours) if ttl_hours else None
    with service_context() as ctx:
        issued = ctx.users.issue_token(cli_principal(), name, label, ttl)
    sys.stdout.write(issued.token + "\n")
    err.print(f"expires {issued.expires_at.isoformat(timespec='seconds')}", highlight=False)


@admin_app.command("revoke-token")
@handle_errors
def revoke_token(
    user: Annotated[str | None, typer.Option(help="With --id: the user whose token to revoke.")] = None,
    token_id: Annotated[int | None, typer.Option("--id", help="Token id from `admin list-tokens`.")] = None,
) -> None:
    """Revoke an API token: by --user and --id, or by the token itself (asked for, hidden)."""
    with service_context() as ctx:
        if user is not None and token_id is not None:
            ctx.users.revoke_user_token(cli_principal(), user, token_id)
        elif user is None and token_id is None:
            token = typer.prompt("Token", hide_input=True)
            ctx.users.revoke_token(cli_principal(), token)
        else:
            raise InvalidInput("give both --user and --id, or neither (to paste the token)")
    sys.stdout.write("revoked\n")


@admin_app.command("list-tokens")
@handle_errors
def list_tokens(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """A user's tokens: id, name, created, expires, state (never the token itself)."""
    with service_context() as ctx:
        tokens = ctx.users.list_tokens(cli_principal(), name)
    for t in tokens:
        state = "revoked" if t.revoked_at else ("active" if t.active else "expired")
        sys.stdout.write(
            f"{t.id}\t{t.name}\t{t.created_at.isoformat(timespec='seconds')}\t"
            f"{t.expires_at.isoformat(timespec='seconds')}\t{state}\n"
        )


@admin_app.command("disable-user")
@handle_errors
def disable_user(name: str) -> None:
    """Disable an account: its password and every token stop working at once."""
    with service_context() as ctx:
        ctx.users.set_disabled(cli_principal(), name, True)
    sys.stdout.write(f"disabled {name}\n")


@admin_app.command("enable-user")
@handle_errors
def enable_user(name: str) -> None:
    """Enable a disabled account again (its unexpired, unrevoked tokens work again)."""
    with service_context() as ctx:
        ctx.users.set_disabled(cli_principal(), name, False)
    sys.stdout.write(f"enabled {name}\n")


@admin_app.command("must-record")
@handle_errors
def set_must_record(
    name: str,
    off: Annotated[bool, typer.Option("--off", help="Clear the flag instead of setting it.")] = False,
) -> None:
    """Mark a user as regulated staff: no recording rule can stop their calls being recorded."""
    with service_context() as ctx:
        ctx.users.set_must_record(cli_principal(), name, not off)
    sys.stdout.write(f"{name}: must_record {'off' if off else 'on'}\n")


@admin_app.command("set-password")
@handle_errors
def set_password(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    temporary: Annotated[
        bool, typer.Option(help="One-time password: the user must choose a new one at first login.")
    ] = False,
) -> None:
    """Set a user's password (e.g. the first-start admin's); it must pass the password policy."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with service_context() as ctx:
        ctx.users.set_password(cli_principal(), name, password, must_change=temporary)
    sys.stdout.write(f"password set for {name}\n")


@admin_app.command("list-users")
@handle_errors
def list_users() -> None:
    with service_context() as ctx:
        users = ctx.users.list_users(cli_principal())
    for user in users:
        sys.stdout.write(
            f"{user.username}\t{user.role}\t{user.team or '-'}\t{','.join(user.sip_identities)}"
            + ("\tdisabled" if user.disabled else "")
            + ("\tmust_record" if user.must_record else "")
            + "\n"
        )


@app.command("settings")
def show_settings() -> None:
    """List every setting with its environment variable, default and meaning."""
    table = Table("variable", "default", "meaning")
    for env, default, help_text in settings_table():
        table.add_row(env, default, help_text)
    out.print(table)


@app.command()
@handle_errors
def demo(
    calls: int = 3,
    seconds: float = 8.0,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Act as an SBC: send a few synthetic two-party SIPREC calls to a running server."""
    import asyncio

    from callvault.runtime.demo_src import run_demo

    settings = load_settings()
    with service_context() as ctx:
        agent, created = ensure_demo_agent(ctx, cli_principal())
    err.print(
        f"demo calls are made by agent {agent}" + (" (created now)" if created else ""), highlight=False
    )
    call_ids = asyncio.run(
        run_demo(host or settings.sip_host, port or settings.sip_port, calls=calls, seconds=seconds)
    )
    for call_id in call_ids:
        sys.stdout.write(call_id + "\n")
    err.print(f"sent {len(call_ids)} call(s); see them with: callvault recordings list")
