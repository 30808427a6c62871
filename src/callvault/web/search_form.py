"""The search form's query string, read into a :class:`RecordingQuery`.

The parameters are the API's (``/api/v1/recordings``), so a search page URL
and an API call say the same thing; what a person typed wrong becomes one
message saying what to write instead, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from callvault.errors import InvalidInput
from callvault.services.search import MAX_DURATION, MAX_OFFSET, SORTS, STATUSES, RecordingQuery

TEXT_FIELDS = ("agent", "team", "customer", "queue", "tag", "call_id", "text")
CHOICES = {
    "direction": ("inbound", "outbound"),
    "speaker": ("agent", "customer"),
    "status": STATUSES,
    "disclosure": ("verified", "missing", "not_required"),
}
PAGE_SIZES = (25, 50, 100, 200)
SORT_CHOICES = tuple(f"{sign}{name}" for name in SORTS for sign in ("-", ""))
MAX_TEXT = 200


@dataclass
class SearchForm:
    """What the form shows (as typed) and the query it makes."""

    values: dict[str, str]
    query: RecordingQuery

    def link(self, **changes: str | int) -> str:
        """This search's URL with some parameters changed (paging, sorting)."""
        merged = {k: v for k, v in self.values.items() if v}
        merged.update({k: str(v) for k, v in changes.items()})
        return "/recordings?" + urlencode(merged)


def _time(name: str, raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name}: write a date and time like 2026-03-01T09:30 (UTC)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _seconds(name: str, raw: str) -> float | None:
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name}: write a number of seconds, e.g. 60") from None
    if not 0 <= value <= MAX_DURATION:
        raise InvalidInput(f"{name}: between 0 and {MAX_DURATION:.0f} seconds")
    return value


def _whole(name: str, raw: str, default: int, low: int, high: int) -> int:
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(f"{name}: a whole number between {low} and {high}")
    return int(raw)


def read_search(params: QueryParams) -> SearchForm:
    """The form's values as typed and the query; raises InvalidInput naming the field to fix."""
    names = (*TEXT_FIELDS, *CHOICES, "from", "to", "min_duration", "max_duration", "limit", "offset", "sort")
    values = {name: params.get(name, "").strip()[:MAX_TEXT] for name in names}
    form = SearchForm(values, RecordingQuery())
    for name, allowed in CHOICES.items():
        if values[name] and values[name] not in allowed:
            raise InvalidInput(f"{name}: choose one of {', '.join(allowed)}")
    if values["sort"] and values["sort"] not in SORT_CHOICES:
        raise InvalidInput(f"sort: one of {', '.join(SORT_CHOICES)}")
    form.query = RecordingQuery(
        agent=values["agent"] or None,
        team=values["team"] or None,
        customer=values["customer"] or None,
        started_from=_time("from", values["from"]),
        started_to=_time("to", values["to"]),
        direction=values["direction"] or None,  # type: ignore[arg-type]
        queue=values["queue"] or None,
        tag=values["tag"] or None,
        min_duration=_seconds("min_duration", values["min_duration"]),
        max_duration=_seconds("max_duration", values["max_duration"]),
        call_id=values["call_id"] or None,
        status=values["status"] or None,
        disclosure=values["disclosure"] or None,
        text=values["text"] or None,
        speaker=values["speaker"] or None,
        limit=_whole("limit", values["limit"], 50, 1, 500),
        offset=_whole("offset", values["offset"], 0, 0, MAX_OFFSET),
        sort=values["sort"] or "-started_at",
    )
    return form
