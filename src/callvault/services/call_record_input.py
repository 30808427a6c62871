"""Call records as the PBX/ACD sends them: validated before anything is stored.

The same fields arrive as JSON (``POST /api/v1/call-records``) and as CSV
columns (``callvault assurance import FILE.csv``); both are checked here, whole,
before the first row is written, so a malformed record leaves nothing behind.
An error names where it is (``record 3`` of a JSON batch, ``line 7`` of a
file) and the field, never the value of a number field: phone numbers do not
go into error messages, which end up in logs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from callvault.errors import InvalidInput

MAX_BATCH = 10_000  # records in one JSON request
MAX_FILE_ROWS = 500_000  # rows in one CSV file
REQUIRED = ("pbx_call_id", "started_at")
OPTIONAL = (
    "ended_at",
    "duration_seconds",
    "direction",
    "calling_number",
    "called_number",
    "agent",
    "queue",
    "sip_call_id",
    "vendor_call_id",
)
FIELDS = REQUIRED + OPTIONAL
_LIMITS = {
    "pbx_call_id": 255,
    "calling_number": 64,
    "called_number": 64,
    "agent": 255,
    "queue": 120,
    "sip_call_id": 255,
    "vendor_call_id": 255,
}
MAX_CALL = timedelta(days=2)  # a longer "call" is a broken record


@dataclass(frozen=True)
class CallRecordInput:
    """One expected call, valid and normalised (UTC times)."""

    pbx_call_id: str
    started_at: datetime
    ended_at: datetime | None = None
    direction: str | None = None
    calling_number: str | None = None
    called_number: str | None = None
    agent: str | None = None
    queue: str | None = None
    sip_call_id: str | None = None
    vendor_call_id: str | None = None


def _text(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string")
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > _LIMITS[field]:
        raise ValueError(f"longer than {_LIMITS[field]} characters")
    if not cleaned.isprintable():
        raise ValueError("holds control characters")
    return cleaned


def _time(value: object) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not an ISO 8601 time, e.g. 2026-01-31T09:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-01-31T09:00:00Z")
    return parsed.astimezone(UTC)


def _duration(value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("must be a number of seconds")
    try:
        seconds = float(value) if isinstance(value, (int, float, str)) else float("nan")
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not 0 <= seconds <= MAX_CALL.total_seconds():
        raise ValueError(f"must be between 0 and {int(MAX_CALL.total_seconds())} seconds")
    return seconds


def _field(field: str, fn: Any, value: object) -> Any:
    """``fn(value)``; its ValueError as InvalidInput naming the field (never the value)."""
    try:
        return fn(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}") from None


def parse_record(raw: Mapping[str, object]) -> CallRecordInput:
    """One record; InvalidInput names the field (the caller adds where the record is)."""
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    texts = {f: _field(f, lambda v, f=f: _text(f, v), raw.get(f)) for f in _LIMITS}
    if texts["pbx_call_id"] is None:
        raise InvalidInput("pbx_call_id: required")
    started = _field("started_at", _time, raw.get("started_at"))
    if started is None:
        raise InvalidInput("started_at: required")
    ended = _field("ended_at", _time, raw.get("ended_at"))
    duration = _field("duration_seconds", _duration, raw.get("duration_seconds"))
    if ended is not None and duration is not None:
        raise InvalidInput("give ended_at or duration_seconds, not both")
    if duration is not None:
        ended = started + timedelta(seconds=duration)
    if ended is not None and not started <= ended <= started + MAX_CALL:
        raise InvalidInput("ended_at: must be after started_at and within 2 days of it")
    direction = _field("direction", lambda v: _direction(v), raw.get("direction"))
    return CallRecordInput(started_at=started, ended_at=ended, direction=direction, **texts)


def _direction(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or value.strip().lower() not in ("inbound", "outbound"):
        raise ValueError("must be inbound or outbound")
    return value.strip().lower()


def parse_batch(body: object) -> list[CallRecordInput]:
    """A JSON body: ``{"records": [...]}`` or a bare list of records."""
    records = body.get("records") if isinstance(body, dict) and set(body) == {"records"} else body
    if not isinstance(records, list):
        raise InvalidInput('the body must be {"records": [...]} (a list of call records)')
    if not 1 <= len(records) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} records")
    parsed: list[CallRecordInput] = []
    for index, raw in enumerate(records, start=1):
        if not isinstance(raw, dict):
            raise InvalidInput(f"record {index}: must be an object")
        try:
            parsed.append(parse_record(raw))
        except InvalidInput as exc:
            raise InvalidInput(f"record {index}: {exc.message}") from None
    return unique(parsed, lambda i: f"record {i}")


def parse_csv(data: bytes) -> list[CallRecordInput]:
    """A CSV file with a header line naming the columns (see the README)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(f"line {line}: not UTF-8 text") from None
    if "\x00" in text:
        raise InvalidInput(f"line {text[: text.index(chr(0))].count(chr(10)) + 1}: holds a NUL byte")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise InvalidInput("line 1: the file is empty; it needs a header line naming the columns")
        columns = [c.strip().lower() for c in header]
        _check_header(columns)
        parsed: list[tuple[int, CallRecordInput]] = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise InvalidInput(f"line {line}: {len(row)} fields, the header names {len(columns)}")
            if len(parsed) >= MAX_FILE_ROWS:
                raise InvalidInput(f"line {line}: a file holds at most {MAX_FILE_ROWS} records")
            try:
                parsed.append((line, parse_record(dict(zip(columns, row, strict=True)))))
            except InvalidInput as exc:
                raise InvalidInput(f"line {line}: {exc.message}") from None
    except csv.Error as exc:
        raise InvalidInput(f"line {reader.line_num}: not valid CSV ({exc})") from None
    if not parsed:
        raise InvalidInput("the file holds no call records (only a header line)")
    lines = [line for line, _ in parsed]
    return unique([record for _, record in parsed], lambda i: f"line {lines[i - 1]}")


def _check_header(columns: list[str]) -> None:
    unknown = [c for c in columns if c not in FIELDS]
    if unknown:
        raise InvalidInput(f"line 1: unknown columns: {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InvalidInput(f"line 1: columns named twice: {', '.join(repeated)}")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise InvalidInput(f"line 1: missing required columns: {', '.join(missing)}")


def unique(records: Iterable[CallRecordInput], where: Any) -> list[CallRecordInput]:
    """Drop exact repeats; the same PBX call id with different content is an error."""
    seen: dict[str, CallRecordInput] = {}
    kept: list[CallRecordInput] = []
    for index, record in enumerate(records, start=1):
        earlier = seen.get(record.pbx_call_id)
        if earlier is None:
            seen[record.pbx_call_id] = record
            kept.append(record)
        elif earlier != record:
            raise InvalidInput(f"{where(index)}: pbx_call_id repeats an earlier record with other values")
    return kept
