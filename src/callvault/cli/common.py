"""Shared CLI plumbing: settings, service context, error translation to exit codes."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from callvault.errors import CallvaultError
from callvault.services.access import Principal, Role
from callvault.services.context import ServiceContext, open_context
from callvault.settings import load_settings

# Errors are never folded: a path or name split across lines can't be searched for in a log.
err = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
T = TypeVar("T")


def cli_principal() -> Principal:
    """Local administration: whoever can read the data directory acts as admin, and is logged by OS user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(user_id=None, username=f"cli:{user}", role=Role.ADMIN)


@contextmanager
def service_context() -> Iterator[ServiceContext]:
    ctx = open_context(load_settings())
    try:
        yield ctx
    finally:
        ctx.close()


def handle_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn callvault errors into a one-line message and the error's exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except CallvaultError as exc:
            err.print(f"[red]error:[/red] {exc.message}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
