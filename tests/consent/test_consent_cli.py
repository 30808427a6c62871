"""``callvault consent jurisdictions|set|reset|lookup``: the same service as the API, audited,
errors as exit codes with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from tests.support.cli import invoke_cli


def test_an_operator_edits_the_table_from_a_shell(data_dir: Path, database_url: str) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    listed = invoke_cli(["consent", "jurisdictions"], env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["jurisdiction"]: r for r in json.loads(listed.stdout)["jurisdictions"]}
    assert rows["US-PA"]["requirement"] == "all_party_notification" and rows["US-PA"]["source"] == "shipped"
    edited = invoke_cli(
        ["consent", "set", "us-tx", "--requirement", "all_party_notification", "--name", "Texas"], env
    )
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout) == {
        "jurisdiction": "US-TX",
        "requirement": "all_party_notification",
        "gdpr": False,
        "name": "Texas",
        "effective_requirement": "all_party_notification",
        "source": "edited",
    }
    looked = invoke_cli(["consent", "lookup", "+12145550100"], env)  # Dallas
    assert json.loads(looked.stdout)["requirement"] == "all_party_notification"
    bad = invoke_cli(["consent", "set", "US-TX", "--requirement", "two_party"], env)
    assert bad.returncode == 2 and "requirement must be one of" in bad.stderr
    assert invoke_cli(["consent", "reset", "US-TX"], env).returncode == 0
    gone = invoke_cli(["consent", "reset", "US-TX"], env)
    assert gone.returncode == 4 and "no edited row" in gone.stderr
    assert invoke_cli(["consent", "lookup", "1001"], env).returncode == 2
    catalog = Catalog(database_url or f"sqlite:///{data_dir / 'catalog.sqlite3'}")
    try:
        with catalog.read() as session:
            trail = session.execute(
                select(AccessEvent.action, AccessEvent.detail)
                .where(AccessEvent.action.like("consent_jurisdiction%"))
                .order_by(AccessEvent.seq)
            ).all()
    finally:
        catalog.dispose()
    assert [tuple(t) for t in trail] == [
        ("consent_jurisdiction_set", "US-TX requirement=all_party_notification gdpr=False"),
        ("consent_jurisdiction_reset", "US-TX"),
    ]
