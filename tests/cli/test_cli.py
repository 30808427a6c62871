"""The CLI as operators use it: serve, admin, import-audio, recordings, verify, keys rotate."""

from __future__ import annotations

import getpass
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from callvault.services.context import open_context
from callvault.settings import load_settings
from tests.support.audio import mono_wav, stereo_wav, voice
from tests.support.cli import invoke_cli
from tests.support.people import ADMIN
from tests.support.ports import free_port, rtp_range
from tests.support.processes import run_cli, running_server


@pytest.fixture
def env(data_dir: Path, database_url: str) -> dict[str, str]:
    return {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port()),
        "CALLVAULT_RTP_PORTS": rtp_range(100),
    }


def test_serve_first_start_admin_and_admin_commands_while_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with running_server(env, log):
        base = f"http://127.0.0.1:{env['CALLVAULT_HTTP_PORT']}"
        output = log.read_text()
        assert "one-time password" in output
        password = output.split("one-time password:")[1].split()[0]
        login = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": password})
        assert login.status_code == 200
        created = invoke_cli(
            [
                "admin",
                "create-user",
                "alice",
                "--role",
                "agent",
                "--team",
                "red",
                "--sip-identity",
                "sip:1001@pbx",
                "--password-stdin",
            ],
            env,
            stdin="correct horse battery\n",
        )
        assert created.returncode == 0, created.stderr
        token = invoke_cli(["admin", "create-token", "alice"], env)
        assert token.returncode == 0, token.stderr
        assert token.stdout.count("\n") == 1 and token.stdout.startswith("cv_")
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
        assert me.json()["username"] == "alice"
        duplicate = invoke_cli(["admin", "create-user", "alice", "--role", "agent"], env)
        assert duplicate.returncode != 0 and "already exists" in duplicate.stderr
        bad_role = invoke_cli(["admin", "create-user", "eve", "--role", "overlord"], env)
        assert bad_role.returncode == 2 and "unknown role" in bad_role.stderr
    # Second start: no new password printed.
    with running_server(env, tmp_path / "serve2.log"):
        assert "one-time password" not in (tmp_path / "serve2.log").read_text()


def test_import_list_show_verify_rotate(env: dict[str, str], tmp_path: Path, data_dir: Path) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(stereo_wav(voice(3, 8000, 120, 1), voice(3, 8000, 200, 2), 8000))
    assert (
        invoke_cli(
            ["admin", "create-user", "alice", "--role", "agent", "--sip-identity", "1001"], env
        ).returncode
        == 0
    )
    result = invoke_cli(
        [
            "import-audio",
            str(wav),
            "--agent",
            "alice",
            "--customer",
            "(415) 555-0100",
            "--direction",
            "inbound",
            "--started-at",
            "2026-05-01T09:30:00Z",
            "--queue",
            "billing",
            "--tag",
            "vip",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    recording_id = result.stdout.strip()
    listing = json.loads(
        invoke_cli(["recordings", "list", "--json", "--customer", "+14155550100"], env).stdout
    )
    assert [item["id"] for item in listing["items"]] == [recording_id]
    assert listing["items"][0]["agent"] == "alice"
    shown = json.loads(invoke_cli(["recordings", "show", recording_id, "--json"], env).stdout)
    assert shown["queue"] == "billing" and shown["direction"] == "inbound"
    # A CLI import is signed as such, with the operating-system account that ran it.
    assert shown["provenance"]["kind"] == "import"
    assert (
        shown["provenance"]["os_user"]
        and shown["provenance"]["user"] == "cli:" + shown["provenance"]["os_user"]
    )

    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(3):
        (folder / f"c{i}.wav").write_bytes(mono_wav(voice(1, 8000, 150, i), 8000))
    (folder / "notes.txt").write_text("ignored")
    batch = invoke_cli(["import-audio", str(folder)], env)
    assert batch.returncode == 0, batch.stderr
    assert len(batch.stdout.split()) == 3

    ok = invoke_cli(["verify", "--all"], env)
    assert ok.returncode == 0 and "4 checked, 0 failed" in ok.stdout
    rotated = invoke_cli(["keys", "rotate"], env)
    assert rotated.returncode == 0 and "4 data keys re-wrapped" in rotated.stdout
    assert invoke_cli(["verify", "--all"], env).returncode == 0

    shredded = batch.stdout.split()[0]
    destroyed = invoke_cli(["recordings", "destroy-audio", shredded, "--reason", "erasure request 7"], env)
    assert destroyed.returncode == 0 and "audio destroyed" in destroyed.stdout, destroyed.stderr
    assert invoke_cli(["verify", shredded], env).returncode == 0
    assert_cli_trail(env, recording_id, shredded)

    if not env["CALLVAULT_DATABASE_URL"]:
        with sqlite3.connect(data_dir / "catalog.sqlite3") as db:
            db.execute("UPDATE calls SET queue = 'billinh' WHERE queue = 'billing'")
        failed = invoke_cli(["verify", "--all"], env)
        assert failed.returncode == 5
        assert f"FAIL {recording_id}" in failed.stdout


def assert_cli_trail(env: dict[str, str], shown: str, shredded: str) -> None:
    """Every CLI command above is in the access trail under the OS user who ran it."""
    ctx = open_context(load_settings(env=env))
    try:
        events = list(reversed(ctx.access_log.list(ADMIN, limit=1000)))
    finally:
        ctx.close()
    actor = f"cli:{getpass.getuser()}"
    rows = [(e.username, e.action, e.recording_id, e.outcome) for e in events]
    batch = rows[4:7]  # import-audio of a folder: one upload entry per file
    assert [(user, action, outcome) for user, action, _, outcome in batch] == [(actor, "upload", "ok")] * 3
    assert all(recording_id not in (None, shown) for _, _, recording_id, _ in batch)
    assert rows[:4] + rows[7:] == [
        (actor, "user_create", None, "ok"),  # admin create-user
        (actor, "upload", shown, "ok"),  # import-audio of one file
        (actor, "search", None, "ok"),  # recordings list
        (actor, "view", shown, "ok"),  # recordings show
        (actor, "verify", None, "ok"),
        (actor, "keys_rotate", None, "ok"),
        (actor, "verify", None, "ok"),
        (actor, "destroy_audio", shredded, "ok"),
        (actor, "verify", None, "ok"),
    ]
    assert events[0].detail == "user=alice role=agent team=- identities=1"
    assert events[7].detail == "4 checked, 0 failed, 0 seal log problems"
    assert events[10].detail == "erasure request 7"
    assert all(e.remote_addr is None for e in events)  # local, not over the network


def test_bad_input_gives_clear_errors(env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + b"\x00" * 10)
    # One in a real process: the status the shell sees comes from the console script.
    result = run_cli(["import-audio", str(junk)], env)
    assert result.returncode == 2 and "cannot import" in result.stderr
    assert invoke_cli(["import-audio", str(tmp_path / "missing.wav")], env).returncode == 2
    bad_time = invoke_cli(["import-audio", str(junk), "--started-at", "tuesday"], env)
    assert bad_time.returncode == 2 and "ISO 8601" in bad_time.stderr
    bad_setting = invoke_cli(["recordings", "list"], {**env, "CALLVAULT_HTTP_PORT": "99999"})
    assert bad_setting.returncode != 0 and "CALLVAULT_HTTP_PORT" in bad_setting.stderr
    assert invoke_cli(["verify"], env).returncode == 2
    listing = json.loads(invoke_cli(["recordings", "list", "--json"], env).stdout)
    assert listing["total"] == 0


def _catalog_url(env: dict[str, str], data_dir: Path) -> str:
    return env["CALLVAULT_DATABASE_URL"] or f"sqlite:///{data_dir / 'catalog.sqlite3'}"


def test_keys_rotate_signing_then_verify_names_a_missing_recording(
    env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    from sqlalchemy import create_engine, text

    wav = tmp_path / "call.wav"
    wav.write_bytes(mono_wav(voice(1, 8000, 150, 1), 8000))
    first = invoke_cli(["import-audio", str(wav)], env)
    assert first.returncode == 0, first.stderr
    rotated = invoke_cli(["keys", "rotate", "--signing"], env)
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("new signing key ed25519:") and "retired" in rotated.stdout
    second = invoke_cli(["import-audio", str(wav)], env)
    assert second.returncode == 0, second.stderr
    ok = invoke_cli(["verify", "--all"], env)
    assert ok.returncode == 0 and "2 checked, 0 failed" in ok.stdout, ok.stdout + ok.stderr

    victim = first.stdout.strip()
    engine = create_engine(_catalog_url(env, data_dir))
    with engine.begin() as conn:
        call_id = conn.execute(text("SELECT call_id FROM recordings WHERE id = :id"), {"id": victim}).scalar()
        for table in ("recording_tags", "recording_events", "streams"):
            conn.execute(text(f"DELETE FROM {table} WHERE recording_id = :id"), {"id": victim})
        conn.execute(text("DELETE FROM recordings WHERE id = :id"), {"id": victim})
        for table in ("call_identifiers", "participants"):
            conn.execute(text(f"DELETE FROM {table} WHERE call_id = :id"), {"id": call_id})
        conn.execute(text("DELETE FROM calls WHERE id = :id"), {"id": call_id})
    engine.dispose()
    failed = invoke_cli(["verify", "--all"], env)
    assert failed.returncode == 5
    assert f"FAIL missing {victim}: sealed at" in failed.stdout
    assert "1 checked, 0 failed, 1 seal log problem(s)" in failed.stdout


def test_serve_refuses_to_start_without_the_keyring_of_a_vault_with_recordings(
    env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(mono_wav(voice(1, 8000, 150, 1), 8000))
    assert invoke_cli(["import-audio", str(wav)], env).returncode == 0
    (data_dir / "keyring.json").unlink()
    # run_cli's default 120 s: the imports before the refusal take tens of seconds on a busy machine.
    refused = run_cli(["serve"], env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "keyring.json is missing but the vault holds recordings" in " ".join(refused.stderr.split())
    assert not (data_dir / "keyring.json").exists()
