"""The ``callvault`` command line.

``callvault.cli.commands`` (Typer, Rich and every command) is imported on first
use only: modules of this package such as ``callvault.cli.serve``, which the
tests and the server import, should not pay for the whole command table.

No submodule may be called ``main`` or ``app``: importing a submodule binds it as an
attribute of this package, which would replace the console script's entry point
``callvault.cli:main`` (or ``app``) with the module for the rest of the process.
"""

from __future__ import annotations


def main() -> None:
    from callvault.cli.commands import app

    app()


def __getattr__(name: str) -> object:
    if name == "app":
        from callvault.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
