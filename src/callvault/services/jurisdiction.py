"""Where a party is, for consent law: its jurisdiction from its phone number.

A number's country comes from ``phonenumbers`` (ISO 3166-1: ``US``, ``DE``,
``PR``). In the North American Numbering Plan the country code is shared, and
what matters for recording law is the state or province: it comes from the
area code, through the shipped table ``data/nanp_area_codes.csv`` (ISO 3166-2:
``US-CA``, ``CA-ON``). An area code missing from the table (a new overlay, a
non-geographic code such as 800) leaves the country alone, which the
requirements table then answers for.

The area code says where a number was issued, not where its holder stands: a
mobile from California answers in Texas. Consent law follows the parties, so
the recorder takes the number's home as the best evidence it has, and a
compliance officer can set a call's consent state where they know better.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources

import phonenumbers

_CODE = re.compile(r"^(?:\*|[A-Z]{2}(?:-[A-Z0-9]{1,3})?)$")
_NANP_COUNTRY_CODE = 1


def valid_code(code: str) -> bool:
    """An ISO 3166-1 country (``DE``), an ISO 3166-2 subdivision (``US-CA``) or ``*``."""
    return bool(_CODE.match(code))


def country_of(code: str) -> str:
    """``US-CA`` → ``US``; ``DE`` → ``DE``."""
    return code.partition("-")[0]


def read_csv_rows(name: str) -> list[list[str]]:
    """The rows of a shipped table in ``services/data`` (comments and the header skipped)."""
    text = resources.files("callvault.services").joinpath("data", name).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [[cell.strip() for cell in row] for row in csv.reader(lines[1:])]


@cache
def nanp_area_codes() -> dict[str, str]:
    """Area code → subdivision (``415`` → ``US-CA``), from the shipped table."""
    table: dict[str, str] = {}
    for row in read_csv_rows("nanp_area_codes.csv"):
        if len(row) >= 2 and len(row[0]) == 3 and row[0].isdigit() and valid_code(row[1]):
            table[row[0]] = row[1]
    return table


def jurisdiction_of(number: str | None) -> str | None:
    """The jurisdiction of an E.164 number (``+14155550100`` → ``US-CA``), None when unknown.

    Only numbers in E.164 (as the catalogue stores them) are placed: an
    extension or a SIP user name says nothing about where its holder is.
    """
    if not number or not number.startswith("+"):
        return None
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    country = phonenumbers.region_code_for_number(parsed)
    if parsed.country_code == _NANP_COUNTRY_CODE:
        national = str(parsed.national_number)
        subdivision = nanp_area_codes().get(national[:3]) if len(national) == 10 else None
        if subdivision is not None and (country in (None, "US", "CA") or country == country_of(subdivision)):
            return subdivision
    if not country or country == "ZZ":
        return None
    return str(country)
