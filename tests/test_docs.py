"""The README stays true to the code: settings table, commands, access matrix."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from callvault.cli import app
from callvault.settings import settings_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented_with_its_default() -> None:
    for env, default, _help in settings_table():
        assert f"| `{env}` | `{default}` |" in README, env


def test_the_two_setup_commands_come_first() -> None:
    blocks = README.split("```sh\n")
    assert blocks[1].strip().startswith("./scripts/serve")
    assert blocks[2].strip().startswith("./scripts/test")
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


def test_documented_commands_exist() -> None:
    runner = CliRunner()
    for command in (
        ["serve"],
        ["import-audio"],
        ["import-pcap"],
        ["recordings", "list"],
        ["recordings", "show"],
        ["verify"],
        ["keys", "rotate"],
        ["admin", "create-user"],
        ["admin", "create-token"],
        ["admin", "list-tokens"],
        ["admin", "revoke-token"],
        ["admin", "disable-user"],
        ["admin", "set-password"],
        ["demo"],
        ["settings"],
        ["webhooks", "add"],
        ["webhooks", "list"],
        ["webhooks", "deliveries"],
        ["webhooks", "remove"],
        ["announcements", "add"],
        ["announcements", "list"],
        ["announcements", "remove"],
        ["consent", "jurisdictions"],
        ["consent", "set"],
        ["consent", "reset"],
        ["consent", "lookup"],
        ["assurance", "import"],
        ["assurance", "reconcile"],
        ["assurance", "report"],
        ["rules", "add"],
        ["rules", "list"],
        ["rules", "test"],
        ["rules", "update"],
        ["rules", "remove"],
        ["qa", "form-add"],
        ["qa", "form-edit"],
        ["qa", "forms"],
        ["qa", "sample"],
        ["qa", "scorecard"],
        ["worker"],
        ["jobs", "list"],
        ["jobs", "retry"],
        ["jobs", "cancel"],
        ["jobs", "selftest"],
        ["analytics", "backfill"],
    ):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert f"callvault {' '.join(command)}" in README or command == ["serve"], command
