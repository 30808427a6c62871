"""``callvault announcements``: the recording announcements calls are checked for.

The same service as ``/api/v1/announcements`` (decoded in the sandboxed
decoder, only the fingerprint kept, audited as ``cli:<os user>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from callvault.cli.common import cli_principal, handle_errors, print_json, service_context
from callvault.errors import InvalidInput

announcements_app = typer.Typer(
    help="Recording announcements: each call's first seconds are checked for one of them.",
    no_args_is_help=True,
)


@announcements_app.command("add")
@handle_errors
def add(
    path: Annotated[Path, typer.Argument(help="WAV, FLAC, MP3 or Ogg file of the announcement.")],
    name: Annotated[str | None, typer.Option(help="Name (default: the file name without extension).")] = None,
) -> None:
    """Fingerprint an announcement file and check calls for it from now on."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    with service_context() as ctx:
        print_json(ctx.announcements.add(cli_principal(), name, data, path.name))


@announcements_app.command("list")
@handle_errors
def list_() -> None:
    with service_context() as ctx:
        print_json(ctx.announcements.list(cli_principal()))


@announcements_app.command("remove")
@handle_errors
def remove(announcement: Annotated[str, typer.Argument(help="Announcement id or name.")]) -> None:
    with service_context() as ctx:
        ctx.announcements.remove(cli_principal(), announcement)
    print_json({"removed": announcement})
