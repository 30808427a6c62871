"""The console script's entry point ``callvault.cli:main`` stays the function whatever the
process imported before: a submodule of the package named like one of its attributes would
replace that attribute once imported (the import system binds submodules on their parent)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import typer

import callvault.cli


def test_importing_every_cli_module_keeps_the_entry_points() -> None:
    for module in pkgutil.iter_modules(callvault.cli.__path__):
        importlib.import_module(f"callvault.cli.{module.name}")

    from callvault.cli import app, main

    assert inspect.isfunction(main) and main.__module__ == "callvault.cli"
    assert isinstance(app, typer.Typer)


def test_no_cli_module_is_named_like_an_entry_point() -> None:
    names = {module.name for module in pkgutil.iter_modules(callvault.cli.__path__)}
    assert names.isdisjoint(callvault.cli.__all__)
