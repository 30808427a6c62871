"""``callvault import-pcap`` on a folder: captures imported in parallel, a torn one reported, every
recording verifiable."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tests.support.audio import voice
from tests.support.cli import invoke_cli
from tests.support.wire import CallPlan, Party, call_frames, pcap, pcapng


def _plan(call_id: str, start: float, seconds: int = 2) -> CallPlan:
    return CallPlan(
        caller=Party("1001", "10.20.0.15", 5060, 16000, voice(seconds, 8000, 120, 1)),
        callee=Party("+442071838750", "198.51.100.4", 5060, 30000, voice(seconds, 8000, 200, 2)),
        call_id=call_id,
        start=start,
    )


def test_a_folder_of_captures_with_a_torn_one(data_dir: Path, database_url: str, tmp_path: Path) -> None:
    env = {"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    assert (
        invoke_cli(
            ["admin", "create-user", "alice", "--role", "agent", "--sip-identity", "1001"], env
        ).returncode
        == 0
    )
    folder = tmp_path / "captures"
    folder.mkdir()
    (folder / "one.pcap").write_bytes(pcap(call_frames(_plan("one@test", 1_760_000_000.0))))
    (folder / "two.pcapng.gz").write_bytes(
        gzip.compress(pcapng(call_frames(_plan("two@test", 1_760_000_100.0))))
    )
    first, second = (
        call_frames(_plan("a@test", 1_760_000_200.0)),
        call_frames(_plan("b@test", 1_760_000_300.0, 4)),
    )
    torn = pcap(first + second)
    (folder / "torn.pcap").write_bytes(torn[: len(torn) - len(pcap(second[-150:])) + 24 + 7])
    (folder / "notes.txt").write_text("not a capture, not picked up")

    result = invoke_cli(["import-pcap", str(folder), "--jobs", "3", "--tag", "mirrored"], env)
    assert result.returncode == 2, result.stderr  # the torn file
    stderr = result.stderr.replace("\n", "")  # the console wraps long lines
    assert "damaged:" in stderr and "torn.pcap" in stderr and "cut short" in stderr
    lines = {Path(r["file"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert set(lines) == {"one.pcap", "two.pcapng.gz", "torn.pcap"}
    assert lines["one.pcap"]["sealed"] == lines["two.pcapng.gz"]["sealed"] == 1
    assert lines["torn.pcap"]["calls"] == lines["torn.pcap"]["sealed"] == 2
    assert "cut short" in lines["torn.pcap"]["error"]

    listing = json.loads(invoke_cli(["recordings", "list", "--json"], env).stdout)
    items = listing["items"] if isinstance(listing, dict) else listing
    statuses = sorted(item["status"] for item in items)
    assert statuses == ["complete", "complete", "complete", "interrupted"], statuses
    assert all(item["agent"] == "alice" for item in items), items  # the caller's extension is hers
    verified = invoke_cli(["verify", "--all"], env)
    assert verified.returncode == 0 and "4 checked, 0 failed" in verified.stdout, verified.stdout
