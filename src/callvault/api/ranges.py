"""HTTP ``Range: bytes=`` parsing (RFC 9110 §14), one range per request.

Strict: a ``bytes`` range set that does not follow the grammar (``5-2``,
``abc``, ``-``, an empty element, a huge number of ranges) is refused with
416 like an unsatisfiable one, never guessed at. Only a unit other than
``bytes`` is ignored, as RFC 9110 requires. The 416 answer carries
``Content-Range: bytes */<size>`` (see :func:`unsatisfiable_headers`).
"""

from __future__ import annotations

import re

from callvault.errors import RangeNotSatisfiable

MAX_RANGES = 16
_SPEC = re.compile(r"(?:(\d{1,18})-(\d{0,18})|-(\d{1,18}))")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end_exclusive) for a byte range, None for no/ignorable Range.

    Of several ranges the first is answered, which RFC 9110 allows (a server
    may ignore or coalesce ranges).
    """
    if header is None:
        return None
    unit, sep, spec = header.partition("=")
    if not sep:
        raise RangeNotSatisfiable(f"malformed Range header {header[:60]!r}")
    if unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) > MAX_RANGES:
        raise RangeNotSatisfiable(f"more than {MAX_RANGES} ranges requested")
    ranges = [_one(s, size, header) for s in specs]
    return ranges[0]


def _one(spec: str, size: int, header: str) -> tuple[int, int]:
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise RangeNotSatisfiable(f"malformed byte range {spec[:40]!r} in {header[:60]!r}")
    first, last, suffix = match.groups()
    if suffix is not None:
        length = int(suffix)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(f"empty suffix range in {header[:60]!r}")
        return (max(0, size - length), size)
    start = int(first)
    end = int(last) + 1 if last else size
    if end <= start:
        raise RangeNotSatisfiable(f"byte range {spec!r} ends before it starts")
    if start >= size:
        raise RangeNotSatisfiable(f"range starts at {start} but the audio has {size} bytes")
    return (start, min(end, size))


def unsatisfiable_headers(size: int) -> dict[str, str]:
    """Headers of a 416 answer: the representation's size, so the client can ask again (RFC 9110 §14.4)."""
    return {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}
