"""HTTP ``Range: bytes=`` parsing (RFC 9110 §14), one range per request."""

from __future__ import annotations

from callvault.errors import RangeNotSatisfiable


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end_exclusive) for a single byte range, None for no/ignorable Range.

    Multiple ranges are answered with the first one only, which RFC 9110
    allows (a server may ignore or coalesce ranges); malformed headers are
    ignored as the RFC requires, unsatisfiable ones raise 416.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    first = spec.split(",")[0].strip()
    start_s, sep, end_s = first.partition("-")
    if not sep:
        return None
    try:
        if start_s == "":
            suffix = int(end_s)
            if suffix <= 0:
                raise RangeNotSatisfiable(f"empty suffix range in {header!r}")
            return (max(0, size - suffix), size)
        start = int(start_s)
        end = int(end_s) + 1 if end_s else size
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start} but the audio has {size} bytes")
    if start < 0 or end <= start:
        return None
    return (start, min(end, size))
