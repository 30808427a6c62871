"""``callvault qa`` as an operator scripts it: forms from JSON files, sampling, CSV scorecards."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from callvault.services.context import open_context
from callvault.settings import load_settings
from tests.qa.conftest import FORM
from tests.support.cli import invoke_cli
from tests.support.people import ADMIN
from tests.support.vault_calls import seal_call


@pytest.fixture
def env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}


def test_forms_sampling_and_scorecard_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    form_file = tmp_path / "form.json"
    form_file.write_text(json.dumps(FORM))
    created = invoke_cli(["qa", "form-add", str(form_file)], env)
    assert created.returncode == 0, created.stderr
    form = json.loads(created.stdout)
    assert form["version"] == 1 and len(form["sections"]) == 2

    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "sections": [')
    refused = invoke_cli(["qa", "form-add", str(broken)], env)
    assert refused.returncode == 2 and "is not JSON" in " ".join(refused.stderr.split())
    bad_weights = tmp_path / "weights.json"
    bad_weights.write_text(json.dumps({**FORM, "sections": FORM["sections"][:1]}))
    refused = invoke_cli(["qa", "form-add", str(bad_weights)], env)
    assert refused.returncode == 2 and "section weights add up to 40" in " ".join(refused.stderr.split())
    assert [f["id"] for f in json.loads(invoke_cli(["qa", "forms"], env).stdout)] == [form["id"]]

    ctx = open_context(load_settings(env=env))
    try:
        ctx.users.create_user(ADMIN, "alice", "agent", team="red", sip_identities=["sip:1001@pbx.example"])
        recording = seal_call(ctx, agent_aor="sip:1001@pbx.example", days_ago=1)
        ctx.qa.sampling.create_rule(ADMIN, {"name": "Weekly", "form_id": form["id"], "per_week": 1})
        evaluation = ctx.qa.evaluations.create(ADMIN, {"recording_id": recording, "form_id": form["id"]})
        answers = [{"question_id": q, "value": v} for q, v in ((1, "yes"), (2, "yes"), (3, 5), (4, "full"))]
        ctx.qa.evaluations.save(ADMIN, evaluation["id"], {"answers": answers})
        ctx.qa.evaluations.submit(ADMIN, evaluation["id"])
    finally:
        ctx.close()

    assert invoke_cli(["qa", "sample", "--week", "someday"], env).returncode == 2
    sampled = invoke_cli(["qa", "sample"], env)
    assert sampled.returncode == 0, sampled.stderr
    assert json.loads(sampled.stdout)["added"] == 0  # the one call is evaluated already
    exported = invoke_cli(["qa", "scorecard", "--group", "agent", "--csv"], env)
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert rows[0]["name"] == "alice" and rows[0]["week"] == "all" and rows[0]["average_score"] == "100.0"
    assert rows[0]["target"] == "12"  # 1 a week over the default 12 weeks
    assert invoke_cli(["qa", "scorecard", "--group", "desk"], env).returncode == 2
