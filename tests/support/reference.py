"""The third-party reference corpus: an extra over the project's own fixtures.

The project's tests pass from its own files (``tests/fixtures/``). A corpus of
real SIPREC messages and captures may sit beside the checkout
(``../shared/reference``, or ``$CALLVAULT_REFERENCE_DIR``); tests that read it
take the ``reference_dir`` fixture (tests/conftest.py): without the folder they
are skipped with the reason, and with ``CI=true`` they fail, since CI must run
them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = Path(
    os.environ.get("CALLVAULT_REFERENCE_DIR", REPO.parent / "shared" / "reference")
).resolve()
# Stands in for the corpus' file names when the folder is absent, so each parametrised
# corpus test still appears once, as skipped (or failed on CI) with the reason.
ABSENT = "reference-corpus-absent"


def corpus_required() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def absence_reason() -> str:
    return (
        f"reference corpus not found at {REFERENCE_DIR} (an optional extra beside the checkout; "
        "set CALLVAULT_REFERENCE_DIR)"
    )


def corpus_names(folder: str, pattern: str = "*") -> list[str]:
    """Paths (relative to the corpus) of the files under ``folder`` matching ``pattern``,
    for parametrising; ``[ABSENT]`` when the corpus is not there."""
    base = REFERENCE_DIR / folder
    if not base.is_dir():
        return [ABSENT]
    return sorted(
        str(p.relative_to(REFERENCE_DIR)) for p in base.rglob(pattern) if p.is_file() and p.name != "LICENSE"
    )
