"""``callvault announcements add|list|remove``: the same service as the API, errors as exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.audio import mono_wav
from tests.support.cli import invoke_cli
from tests.support.phone_line import ANNOUNCEMENT, RATE, speak


def test_add_list_remove(data_dir: Path, database_url: str, tmp_path: Path) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    wav = tmp_path / "greeting-en.wav"
    wav.write_bytes(mono_wav(speak(ANNOUNCEMENT), RATE))
    added = invoke_cli(["announcements", "add", str(wav)], env)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["name"] == "greeting-en"
    listed = invoke_cli(["announcements", "list"], env)
    assert [a["name"] for a in json.loads(listed.stdout)] == ["greeting-en"]
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("not audio\n" * 50)
    refused = invoke_cli(["announcements", "add", str(not_audio), "--name", "notes"], env)
    assert refused.returncode == 2 and "not an audio file" in refused.stderr
    missing = invoke_cli(["announcements", "add", str(tmp_path / "absent.wav")], env)
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    assert invoke_cli(["announcements", "remove", "greeting-en"], env).returncode == 0
    gone = invoke_cli(["announcements", "remove", "greeting-en"], env)
    assert gone.returncode == 4 and "no announcement" in gone.stderr
    assert json.loads(invoke_cli(["announcements", "list"], env).stdout) == []
