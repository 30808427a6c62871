"""`callvault webhooks add|list|deliveries|remove` as an operator scripts them."""

from __future__ import annotations

import json
from pathlib import Path

from callvault.services.context import open_context
from callvault.settings import load_settings
from tests.support.people import ADMIN
from tests.support.processes import run_cli


def test_add_list_deliveries_remove_and_refusals(data_dir: Path, database_url: str) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    refused = run_cli(["webhooks", "add", "http://127.0.0.1:9/hook", "-e", "recording.sealed"], env)
    assert refused.returncode == 2 and "CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS" in refused.stderr

    env["CALLVAULT_WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    secret = "my-own-secret-of-enough-length"
    added = run_cli(
        [
            "webhooks",
            "add",
            "http://127.0.0.1:9/hook",
            "-e",
            "recording.sealed",
            "-e",
            "alert.raised",
            "--secret-stdin",
            "--json",
        ],
        env,
        stdin=secret + "\n",
    )
    assert added.returncode == 0, added.stderr
    created = json.loads(added.stdout)
    assert created["secret"] == secret and created["events"] == ["recording.sealed", "alert.raised"]

    listed = run_cli(["webhooks", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    (hook,) = json.loads(listed.stdout)
    assert hook["id"] == created["id"] and secret not in listed.stdout
    assert hook["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0}

    ctx = open_context(load_settings(env=env))
    try:
        ctx.events.publish("alert.raised", {"alert_id": "a1"})
        trail = ctx.access_log.list(ADMIN, limit=50)
    finally:
        ctx.close()
    # Audited under the OS user who ran the command.
    assert any(
        e.username.startswith("cli:") and e.action == "webhook.create" and e.outcome == "ok" for e in trail
    )
    assert any(e.action == "webhook.create" and e.outcome == "refused" for e in trail)
    shown = run_cli(["webhooks", "deliveries", created["id"], "--json"], env)
    assert shown.returncode == 0, shown.stderr
    (delivery,) = json.loads(shown.stdout)
    assert (
        delivery["event"] == "alert.raised" and delivery["status"] == "pending" and delivery["attempts"] == 0
    )

    assert run_cli(["webhooks", "remove", created["id"]], env).returncode == 0
    gone = run_cli(["webhooks", "remove", created["id"]], env)
    assert gone.returncode == 4 and "not found" in gone.stderr
