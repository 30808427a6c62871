"""``recordings list`` at 80 columns (short id, compact date, full status, the rest wrapped), short ids
accepted by ``recordings show``, and ``callvault demo`` calls with an agent and a direction."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from callvault.cli.recordings_table import SHORT_ID, compact_date, recordings_table
from tests.support.cli import invoke_cli
from tests.support.ports import free_port, rtp_range
from tests.support.processes import run_cli, running_server, wait_for

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _render(items: list[dict[str, object]], width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(recordings_table(items, NOW))
    return console.export_text().splitlines()


def test_compact_date() -> None:
    assert compact_date("2026-11-30T23:59:58Z", NOW) == "11-30 23:59"
    assert compact_date("2025-01-02T10:00:00+01:00", NOW) == "2025-01-02"
    assert compact_date(None, NOW) == "-"
    assert compact_date("yesterday", NOW) == "yesterday"


def test_table_fits_80_columns_with_whole_ids_dates_statuses_and_wrapped_rest() -> None:
    items: list[dict[str, object]] = [
        {
            "id": "3f2a9c1e-7b4d-4e0a-9d2c-1a2b3c4d5e6f",
            "started_at": "2026-12-01T08:15:00Z",
            "duration": 754.2,
            "status": "interrupted",
            "direction": "outbound",
            "agent": "supervisor.with.a.rather.long.name",
            "customer_number": "+441632960961",
            "queue": "premium-support-after-hours-overflow",
        },
        {
            "id": "a0b1c2d3-0000-4000-8000-000000000000",
            "started_at": "2026-12-03T08:59:00Z",
            "duration": 8.04,
            "status": "complete",
            "direction": None,
            "agent": None,
            "customer_number": None,
            "queue": None,
        },
    ]
    lines = _render(items)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    text = "\n".join(lines)
    for expected in (
        "3f2a9c1e",
        "a0b1c2d3",
        "12-01 08:15",
        "12-03 08:59",
        "interrupted",
        "complete",
        "12:34",
    ):
        assert expected in text, f"{expected!r} missing from\n{text}"
    assert "…" not in text  # nothing cut to a stub
    # The long values wrap inside their cells: the cell's pieces, line after line, make them whole.
    header = next(i for i, line in enumerate(lines) if "queue" in line)
    second = next(i for i, line in enumerate(lines) if "a0b1c2d3" in line)
    start = {name: lines[header].index(name) for name in ("agent", "customer", "queue")}
    cells = {
        "agent": (start["agent"], start["customer"]),
        "queue": (start["queue"], 80),
    }
    for name, value in (("agent", items[0]["agent"]), ("queue", items[0]["queue"])):
        left, right = cells[name]
        pieces = [line[left:right].strip() for line in lines[header + 1 : second]]
        assert "".join(pieces) == value, "\n".join(lines)


def test_wide_terminal_shows_each_recording_on_one_line() -> None:
    item: dict[str, object] = {
        "id": "3f2a9c1e-7b4d-4e0a-9d2c-1a2b3c4d5e6f",
        "started_at": "2025-06-01T08:15:00Z",
        "duration": 4000.0,
        "status": "interrupted",
        "direction": "inbound",
        "agent": "supervisor.with.a.rather.long.name",
        "customer_number": "+441632960961",
        "queue": "premium-support-after-hours-overflow",
    }
    lines = _render([item, {**item, "id": "a0b1c2d3-0000-4000-8000-000000000000"}], width=200)
    assert len(lines) == 3, "\n".join(lines)  # the header and one line per recording
    row = lines[1].split()
    assert row == [
        "3f2a9c1e",
        "2025-06-01",
        "1h06",
        "interrupted",
        "in",
        *[str(item[k]) for k in ("agent", "customer_number", "queue")],
    ]
    assert max(len(line) for line in lines) < 200  # natural width, not stretched to the terminal


def test_demo_then_list_and_show_by_short_id(tmp_path: Path, data_dir: Path, database_url: str) -> None:
    env = {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_HTTP_PORT": str(free_port()),
        "CALLVAULT_SIP_PORT": str(free_port()),
        "CALLVAULT_RTP_PORTS": rtp_range(20),
        "CALLVAULT_MIN_FREE_DISK_MB": "16",
    }
    with running_server(env, tmp_path / "serve.log"):
        # In this process: a `callvault` subprocess would cost seconds of start-up (the
        # agent's creation itself is tested in test_demo_agent.py).
        demo = invoke_cli(["demo", "--calls", "2", "--seconds", "1"], env)
        assert demo.returncode == 0, demo.stderr
        assert "agent demo.agent (created now)" in demo.stderr

        def listing() -> list[dict[str, object]]:
            result = invoke_cli(["recordings", "list", "--json"], env)
            assert result.returncode == 0, result.stderr
            items: list[dict[str, object]] = json.loads(result.stdout)["items"]
            return items

        wait_for(
            lambda: [i["status"] for i in listing()] == ["complete", "complete"], 60, "two sealed demo calls"
        )
    items = listing()
    assert {i["agent"] for i in items} == {"demo.agent"}
    assert sorted(str(i["direction"]) for i in items) == ["inbound", "outbound"]

    table = run_cli(["recordings", "list"], {**env, "COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), table.stdout
    short = str(items[0]["id"])[:SHORT_ID]
    assert short in table.stdout and "complete" in table.stdout and "demo.agent" in table.stdout
    assert str(items[0]["id"]) not in table.stdout
    # Every column filled: the demo calls have a direction, an agent and a customer.
    for item in items:
        (row,) = [line for line in lines if line.startswith(f"{str(item['id'])[:SHORT_ID]} ")]
        cells = row.split()
        assert cells[5] == {"inbound": "in", "outbound": "out"}[str(item["direction"])], table.stdout
        assert cells[6:] == ["demo.agent", str(item["customer_number"]), item["queue"]], table.stdout
        assert item["queue"] == {"inbound": "support", "outbound": "sales"}[str(item["direction"])]

    shown = invoke_cli(["recordings", "show", short, "--json"], env)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["id"] == items[0]["id"] and detail["channels"] == 2
    # The stereo layout: the demo agent's stream on the left, the customer's on the right.
    channels = {s["channel"]: s["participant_aor"] or "" for s in detail["streams"]}
    assert set(channels) == {"left", "right"}, detail["streams"]
    assert "1001@pbx.example" in channels["left"], detail["streams"]

    by_prefix = invoke_cli(["recordings", "show", short[:4], "--json"], env)
    other = str(items[1]["id"])
    if other.startswith(short[:4]):  # the two random ids share 4 characters: then the prefix is ambiguous
        assert by_prefix.returncode != 0 and "more than one recording" in by_prefix.stderr
    else:
        assert by_prefix.returncode == 0 and json.loads(by_prefix.stdout)["id"] == items[0]["id"]
    too_short = invoke_cli(["recordings", "show", short[:3]], env)
    assert too_short.returncode != 0 and "at least 4 characters" in too_short.stderr
    unknown = invoke_cli(
        ["recordings", "show", "ffffffff" if not short.startswith("ffff") else "00000000"], env
    )
    assert unknown.returncode != 0 and "no recording" in unknown.stderr
