"""``callvault recordings list`` as a table that reads at 80 columns, and short recording ids.

A recording id is a 36-character UUID: at 80 columns a table that
shows it whole leaves no room for the rest, and rich then cut every column to
a stub ("2026-…", "compl…"). So the table shows what fits and is enough to
act on: the first :data:`SHORT_ID` characters of the id (which ``recordings
show`` accepts, see :mod:`callvault.services.recording_ids`), a compact UTC date, the status in
full; those columns never wrap. The columns whose values vary in length
(agent, customer, queue) wrap inside their cell instead of being cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from callvault.services.recording_ids import SHORT_ID, short_id


def compact_date(iso: str | None, now: datetime | None = None) -> str:
    """``MM-DD HH:MM`` (UTC) this year, ``YYYY-MM-DD`` before; the input as it is if unreadable."""
    if not iso:
        return "-"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return iso
    current = (now or datetime.now(UTC)).astimezone(UTC)
    return when.strftime("%m-%d %H:%M") if when.year == current.year else when.strftime("%Y-%m-%d")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"


def recordings_table(items: Iterable[dict[str, Any]], now: datetime | None = None) -> Table:
    """The search results as a borderless table: fixed columns never wrap, the rest fold."""
    # One space between columns (padding on the right only): two would cost 8 of the 80.
    table = Table(box=None, padding=(0, 1, 0, 0), expand=False, header_style="bold")
    table.add_column("id", no_wrap=True, min_width=SHORT_ID)
    table.add_column("started UTC", no_wrap=True, min_width=11)
    table.add_column("length", no_wrap=True, justify="right", min_width=5)
    table.add_column("status", no_wrap=True, min_width=11)
    table.add_column("dir", no_wrap=True, min_width=3)
    table.add_column("agent", overflow="fold")
    table.add_column("customer", overflow="fold")
    table.add_column("queue", overflow="fold")
    for item in items:
        direction = item.get("direction")
        table.add_row(
            short_id(item["id"]),
            compact_date(item.get("started_at"), now),
            _duration(item.get("duration")),
            item["status"],
            {"inbound": "in", "outbound": "out"}.get(direction or "", "-"),
            item.get("agent") or "-",
            item.get("customer_number") or "-",
            item.get("queue") or "-",
        )
    return table
