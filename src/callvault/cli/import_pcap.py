"""``callvault import-pcap``: record every call in packet capture files, without a running server.

The captures are read and their calls journalled by the passive recorder
(:mod:`callvault.runtime.passive.pcap_import`), then rendered and sealed by
the media engine's renderer and sealer (:class:`~callvault.runtime.passive.pcap_import.OfflineSealing`),
so an imported call is stored exactly as a sniffed or SIPREC one. A folder
is imported several files at a time (``--jobs``); a progress bar counts
files. Prints one JSON line per file (its recordings, damage and any error).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from callvault.cli.common import cli_principal, err, handle_errors, service_context
from callvault.errors import CallvaultError, InvalidInput
from callvault.runtime.passive.pcap_import import CaptureImport, OfflineSealing, import_capture
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")


def capture_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(CAPTURE_SUFFIXES)
            )
            if not found:
                raise InvalidInput(f"no capture files ({', '.join(CAPTURE_SUFFIXES)}) under {path}")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise InvalidInput(f"{path} does not exist")
    return files


async def _import_all(ctx: ServiceContext, files: list[Path], jobs: int, tags: list[str]) -> int:
    actor = cli_principal()
    source = IngestSource("import", user=actor.username, os_user=actor.username.removeprefix("cli:"))
    sealing = OfflineSealing(ctx)
    gate = asyncio.Semaphore(jobs)
    failures = 0
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, disable=len(files) == 1,
    )  # fmt: skip

    async def one(file: Path) -> None:
        nonlocal failures
        async with gate:
            try:
                data = await asyncio.to_thread(file.read_bytes)
                result = await import_capture(ctx, data, file.name, source, sealing.seal, tags=tags)
            except (CallvaultError, OSError) as exc:
                failures += 1
                message = exc.message if isinstance(exc, CallvaultError) else str(exc)
                err.print(f"[red]error:[/red] {file}: {message}", highlight=False)
                result = CaptureImport(file.name, error=message)
            else:
                if result.error:
                    failures += 1
                    err.print(f"[yellow]damaged:[/yellow] {file}: {result.error}", highlight=False)
                if result.calls_lost:
                    failures += 1
                    err.print(
                        f"[red]lost:[/red] {file}: {result.calls_lost} call(s) not recorded "
                        "(the catalogue refused them; import the file again)",
                        highlight=False,
                    )
            detail = f"capture={file.name[:80]}, calls={len(result.recording_ids)}"
            await asyncio.to_thread(ctx.access_log.record, actor, "capture_import", None, detail)
            sys.stdout.write(json.dumps({"file": str(file), **result.to_json()}) + "\n")
            sys.stdout.flush()
            progress.advance(task)

    with progress:
        task = progress.add_task("importing captures", total=len(files))
        try:
            await asyncio.gather(*(one(f) for f in files))
        finally:
            sealing.close()
    return failures


@handle_errors
def import_pcap(
    paths: Annotated[
        list[Path], typer.Argument(help="Capture files (pcap, pcapng, gzip) or folders of them.")
    ],
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Files imported at a time.")] = 4,
    tag: Annotated[list[str] | None, typer.Option(help="Tag for every recording (repeatable).")] = None,
) -> None:
    """Record every SIP call in packet captures (agent left, customer right), as if sniffed live."""
    files = capture_files(paths)
    with service_context() as ctx:
        failures = asyncio.run(_import_all(ctx, files, jobs, list(tag or [])))
    if failures:
        raise typer.Exit(2)
