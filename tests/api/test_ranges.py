"""Range header parsing: strict, RFC 9110."""

from __future__ import annotations

import pytest

from callvault.api.ranges import parse_range, unsatisfiable_headers
from callvault.errors import RangeNotSatisfiable

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 100)),
        ("bytes=990-", (990, 1000)),
        ("bytes=500-5000", (500, 1000)),
        ("bytes=-100", (900, 1000)),
        ("bytes=-5000", (0, 1000)),
        ("bytes=10-19, 30-39", (10, 20)),
        ("BYTES = 1-1", (1, 2)),
        ("items=0-5", None),  # another unit is ignored (RFC 9110 §14.2)
    ],
)
def test_valid_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    "header",
    [
        "bytes=5-2",
        "bytes=abc",
        "bytes=-",
        "bytes=",
        "bytes=1-2,,3-4",
        "bytes=1-2, x",
        "bytes=+1-2",
        "bytes=1 -2",
        "bytes=0x10-20",
        "bytes 0-5",
        "bytes=-0",
        "bytes=1000-",
        "bytes=" + ",".join(["0-1"] * 17),
        "bytes=99999999999999999999-",
    ],
)
def test_malformed_or_unsatisfiable_ranges_are_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


def test_416_states_the_size() -> None:
    assert unsatisfiable_headers(SIZE)["Content-Range"] == "bytes */1000"
