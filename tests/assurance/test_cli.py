"""``callvault assurance import|reconcile|report``: a CSV file in, malformed lines named with
nothing stored, the report out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from callvault.db.assurance_models import ExpectedCall
from callvault.services.context import ServiceContext
from tests.assurance.conftest import Catalogued, catalogue
from tests.support.cli import invoke_cli
from tests.support.people import create_staff

HEADER = "pbx_call_id,started_at,ended_at,direction,calling_number,called_number,agent,queue,sip_call_id\n"
ROWS = (
    "cdr-1,2026-01-31T09:00:00Z,2026-01-31T09:03:00Z,inbound,+14155550199,+14155550100,alice,sales,one@sbc\n"
    "cdr-2,2026-01-31T09:30:00Z,2026-01-31T09:33:00Z,outbound,+14155550100,+14155550177,bob,,\n"
)


@pytest.fixture
def env(ctx: ServiceContext, data_dir: Path, database_url: str) -> dict[str, str]:
    create_staff(ctx)
    return {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}


def _stored(ctx: ServiceContext) -> int:
    with ctx.catalog.read() as session:
        return int(session.scalar(select(func.count()).select_from(ExpectedCall)) or 0)


def test_import_reconciles_and_the_report_lists_the_missing_call(
    ctx: ServiceContext, env: dict[str, str], tmp_path: Path
) -> None:
    catalogue(ctx, Catalogued(identifiers={"sip_call_id": "one@sbc"}))
    cdr = tmp_path / "cdr.csv"
    cdr.write_text(HEADER + ROWS)
    imported = invoke_cli(["assurance", "import", str(cdr)], env)
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert (summary["created"], summary["reconciliation"]["outcomes"]["missing"]) == (2, 1)
    again = json.loads(invoke_cli(["assurance", "import", str(cdr)], env).stdout)
    assert (again["created"], again["unchanged"]) == (0, 2)
    report = invoke_cli(
        ["assurance", "report", "--from", "2026-01-31T00:00:00Z", "--to", "2026-02-01T00:00:00Z"], env
    )
    assert report.returncode == 0, report.stderr
    body = json.loads(report.stdout)
    assert body["totals"]["expected"] == 2 and body["totals"]["recorded_complete"] == 1
    assert [(i["pbx_call_id"], i["outcome"], i["agent"]) for i in body["items"]] == [
        ("cdr-2", "missing", "bob")
    ]
    assert "+1415555" not in report.stdout
    paged = invoke_cli(["assurance", "report", "--limit", "1", "--offset", "1"], env)
    assert json.loads(paged.stdout)["items"] == [] and json.loads(paged.stdout)["total"] == 1
    reconciled = invoke_cli(["assurance", "reconcile"], env)
    assert reconciled.returncode == 0 and json.loads(reconciled.stdout)["reconciled"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + ROWS + "cdr-3,31/01/2026 09:00,,,,,,,\n", "line 4: started_at: is not an ISO 8601 time"),
        (HEADER + ROWS + "cdr-3,2026-01-31T09:00:00Z\n", "line 4: 2 fields, the header names 9"),
        (HEADER.replace("queue", "skill") + ROWS, "line 1: unknown columns: skill"),
    ],
)
def test_a_malformed_file_is_refused_naming_the_line_and_nothing_is_stored(
    ctx: ServiceContext, env: dict[str, str], tmp_path: Path, text: str, message: str
) -> None:
    cdr = tmp_path / "cdr.csv"
    cdr.write_text(text)
    result = invoke_cli(["assurance", "import", str(cdr)], env)
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split()), result.stderr
    assert "+1415555" not in result.stderr
    assert _stored(ctx) == 0


def test_bad_options_and_files(env: dict[str, str], tmp_path: Path) -> None:
    missing = invoke_cli(["assurance", "import", str(tmp_path / "nope.csv")], env)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad_time = invoke_cli(["assurance", "report", "--from", "2026-01-31"], env)
    assert bad_time.returncode == 2 and "time zone" in bad_time.stderr
    bad_outcome = invoke_cli(["assurance", "report", "--outcome", "lost"], env)
    assert bad_outcome.returncode == 2 and "outcome must be one of" in bad_outcome.stderr
