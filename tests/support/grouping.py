"""Which tests one pytest-xdist worker runs together: a web module's tests on one database.

A web module's server (with its staff and recorded calls) and its browser are module-scoped
fixtures: built once per worker that runs the module's tests, and again each time that
worker comes back to the module after running something else. Handed out test by test
(``--dist worksteal``), a module's tests land on both workers, interleaved with others, and
the server and its 24 s recorded call were built three times over.

``./scripts/test`` runs ``--dist loadgroup`` with the scheduler below: each web module's
SQLite tests go to one worker together, in collection order, and its PostgreSQL tests
likewise (the two servers are separate fixtures anyway, and the halves can run at the same
time on the two workers); every other test is handed out on its own as workers free up.
The groups are decided from test ids alone: the scheduler runs in the controlling process,
which collects nothing. (pytest-xdist's own ``xdist_group`` marker does not reach the
scheduler under pytest 9.2, which no longer reads the node id xdist rewrites.)
"""

from __future__ import annotations

import re
from typing import TypeVar

T = TypeVar("T")

# Every module here takes the module-scoped `web` server (tests/web/conftest.py).
SHARED_SERVER_MODULES = re.compile(r"^tests/web/test_[^/]+\.py$")
DATABASES = ("sqlite", "postgresql")


def shared_fixture_group(nodeid: str) -> str | None:
    """The test's group ("module::database"), or None when it is handed out on its own."""
    module, _, rest = nodeid.partition("::")
    if not SHARED_SERVER_MODULES.match(module):
        return None
    params = rest.partition("[")[2].rstrip("]").split("-")
    database = next((p for p in params if p in DATABASES), "")
    return f"{module}::{database}"


def from_both_ends(units: list[T]) -> list[T]:
    """First, last, second, second to last...: handed out in collection order, the two workers
    ran neighbouring tests at once, alike in what they load (two `callvault worker` processes
    starting, two Whisper runs) and slower for it; taken from both ends, like work-stealing's
    two halves, they mostly run unlike tests side by side."""
    mixed: list[T] = []
    low, high = 0, len(units) - 1
    while low <= high:
        mixed.append(units[low])
        if low != high:
            mixed.append(units[high])
        low, high = low + 1, high - 1
    return mixed
