"""Expensive parametrised tests whose database is beside the point: one database per case.

``@pytest.mark.one_database_each(queue={"embedded": "sqlite", "celery-redis": "postgresql"})``
on a test that takes the catalog (``db_backend``) runs each ``queue`` case on the database
named for it, rather than every case on every database: each case and each database is still
run end to end, at half the cost. When ``--db`` names a single backend every case runs on it.
"""

from __future__ import annotations

import pytest

MARKER = "one_database_each(param={value: backend, ...}): run each case of param on one database"


def keep(item: pytest.Item, backends: list[str]) -> bool:
    """Whether the item runs: unmarked, a single backend chosen, or its case's own database."""
    mark = item.get_closest_marker("one_database_each")
    callspec = getattr(item, "callspec", None)
    if mark is None or callspec is None or len(backends) < 2:
        return True
    for param, databases in mark.kwargs.items():
        case = callspec.params.get(param)
        wanted = databases.get(case)
        if wanted not in backends:
            wanted = backends[0]  # its database is not among those chosen: the first one
        if callspec.params.get("db_backend") != wanted:
            return False
    return True


def deselect_other_databases(config: pytest.Config, items: list[pytest.Item], backends: list[str]) -> None:
    kept = [item for item in items if keep(item, backends)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept
