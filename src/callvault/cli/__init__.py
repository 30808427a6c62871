"""The ``callvault`` command line.

``callvault.cli.main`` (Typer, Rich and every command) is imported on first
use only: modules of this package such as ``callvault.cli.serve``, which the
tests and the server import, should not pay for the whole command table.
"""

from __future__ import annotations


def main() -> None:
    from callvault.cli.main import app

    app()


def __getattr__(name: str) -> object:
    if name == "app":
        from callvault.cli.main import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
