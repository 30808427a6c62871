"""The ``callvault`` command line."""

from __future__ import annotations

from callvault.cli.main import app


def main() -> None:
    app()


__all__ = ["app", "main"]
