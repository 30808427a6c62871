"""PII that is spelled rather than counted: email addresses and IBANs.

Both arrive written (``john.smith@example.com``, ``GB82 WEST 1234 …``) or spoken
("john dot smith at example dot com", "G B eight two W E S T …"). Each finder
returns word ranges ``(first, last)`` inclusive over the channel's words; an
IBAN only counts when its ISO 13616 mod-97 check passes and it has its
country's length, so a random mix of letters and digits is not redacted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from callvault.speech.spoken_numbers import normalise, word_digits

TLDS = frozenset(
    "com org net edu gov mil int io co uk us de fr eu info biz me ca au nl ie es it ch at be se no dk fi pl pt"
    " nz in jp br mx za ru cn app dev online shop".split()
)
_WRITTEN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}")
_LOCAL = re.compile(r"[a-z0-9][a-z0-9._+-]*")
_LABEL = re.compile(r"[a-z0-9][a-z0-9-]*")
_CONNECTORS = {"dot": ".", "period": ".", "point": ".", "underscore": "_", "dash": "-", "hyphen": "-"}
_AT = frozenset({"at", "@"})

# Length of an IBAN per country (ISO 13616 registry, the countries callers most often quote).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15,
    "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}  # fmt: skip


def find_emails(texts: Sequence[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for index, text in enumerate(texts):
        if _WRITTEN_EMAIL.fullmatch(normalise(text)):
            spans.append((index, index))
        elif normalise(text) in _AT:
            spoken = _spoken_email(texts, index)
            if spoken:
                spans.append(spoken)
    return spans


def _spoken_email(texts: Sequence[str], at: int) -> tuple[int, int] | None:
    """ "john dot smith at example dot com" around the word "at" at index ``at``."""
    last = _domain_end(texts, at + 1)
    if last is None or at == 0 or not _LOCAL.fullmatch(normalise(texts[at - 1])):
        return None
    first = at - 1
    while (
        first >= 2
        and normalise(texts[first - 1]) in _CONNECTORS
        and _LOCAL.fullmatch(normalise(texts[first - 2]))
    ):
        first -= 2
    return first, last


def _domain_end(texts: Sequence[str], start: int) -> int | None:
    """Index of the last word of a domain ("example dot com", "example.com") starting at ``start``."""
    labels: list[str] = []
    index = start
    while index < len(texts):
        token = normalise(texts[index])
        pieces = token.split(".")
        if not pieces or not all(_LABEL.fullmatch(piece) for piece in pieces):
            break
        labels.extend(pieces)
        if index + 2 < len(texts) and _CONNECTORS.get(normalise(texts[index + 1])) == ".":
            index += 2
            continue
        break
    if len(labels) >= 2 and labels[-1] in TLDS:
        return index
    return None


def find_ibans(texts: Sequence[str]) -> list[tuple[int, int]]:
    chunks = [_iban_chunk(texts, index) for index in range(len(texts))]
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(texts):
        found = _iban_from(chunks, index)
        if found is None:
            index += 1
            continue
        spans.append((index, found))
        index = found + 1
    return spans


def _iban_chunk(texts: Sequence[str], index: int) -> str | None:
    """What word ``index`` contributes to a spelled or written IBAN: upper-case letters and digits."""
    raw = texts[index].strip().strip(",.;:!?\"'")
    digits = word_digits(texts, index)
    if digits is not None:
        return digits
    parts = [part for part in raw.split("-") if part]
    if parts and all(part.isalnum() and part.isascii() for part in parts):
        joined = "".join(parts)
        if len(joined) <= 34:
            return joined.upper()
    return None


def _iban_from(chunks: Sequence[str | None], start: int) -> int | None:
    """The index of the last word of a valid IBAN starting at word ``start``, or None."""
    head = chunks[start]
    if head is None or not head[:1].isalpha():
        return None
    joined = ""
    for index in range(start, len(chunks)):
        chunk = chunks[index]
        if chunk is None:
            return None
        joined += chunk
        if len(joined) >= 4:
            country = joined[:2]
            length = IBAN_LENGTHS.get(country)
            if length is None or not joined[2:4].isdigit() or len(joined) > length:
                return None
            if len(joined) == length:
                return index if iban_valid(joined) else None
    return None


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 is 1."""
    if not iban.isalnum() or not iban.isascii() or len(iban) < 15:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in moved.upper())
    return int(number) % 97 == 1
