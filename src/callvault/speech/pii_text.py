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

from callvault.speech.spoken_numbers import ZERO_SOUNDS, normalise, word_digits

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
    chunks = [_iban_chunks(texts, index) for index in range(len(texts))]
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(texts):
        found = _iban_from(chunks, index) if _may_start_iban(texts[index]) else None
        if found is None:
            index += 1
            continue
        spans.append((index, found))
        index = found + 1
    return spans


def _iban_chunks(texts: Sequence[str], index: int) -> tuple[str, ...]:
    """What word ``index`` may contribute to a spelled or written IBAN (upper-case letters and digits).

    A spoken "O" is the letter or zero: both are kept and the checksum decides.
    """
    raw = texts[index].strip().strip(",.;:!?\"'")
    digits = word_digits(texts, index)
    if raw.lower() in ZERO_SOUNDS:
        return ("O", "0") if digits else ("O",)
    if digits is not None:
        return (digits,)
    parts = [part for part in raw.split("-") if part]
    if parts and all(part.isalnum() and part.isascii() for part in parts):
        joined = "".join(parts)
        if len(joined) <= 34:
            return (joined.upper(),)
    return ()


def _may_start_iban(text: str) -> bool:
    """A country code is written upper case ("GB82") or spelled ("G"): the words "is" and "at" are not."""
    raw = text.strip().strip(",.;:!?\"'")
    return len(raw) == 1 or raw[:2].isupper()


# At most this many readings of a candidate are followed (each "O" doubles them).
MAX_READINGS = 16


def _iban_from(chunks: Sequence[tuple[str, ...]], start: int) -> int | None:
    """The index of the last word of a valid IBAN starting at word ``start``, or None."""
    readings = [head for head in chunks[start] if head[:1].isalpha()]
    for index in range(start, len(chunks)):
        if index > start:
            readings = [reading + chunk for reading in readings for chunk in chunks[index]][:MAX_READINGS]
        readings = [reading for reading in readings if _may_become_iban(reading)]
        if not readings:
            return None
        if any(reading_complete and iban_valid(reading) for reading, reading_complete in _complete(readings)):
            return index
    return None


def _may_become_iban(reading: str) -> bool:
    if len(reading) < 2:
        return reading.isalpha()
    if len(reading) < 4:
        return reading[:2] in IBAN_LENGTHS and (len(reading) == 2 or reading[2].isdigit())
    length = IBAN_LENGTHS.get(reading[:2])
    return length is not None and reading[2:4].isdigit() and len(reading) <= length


def _complete(readings: Sequence[str]) -> list[tuple[str, bool]]:
    return [(reading, len(reading) == IBAN_LENGTHS.get(reading[:2], -1)) for reading in readings]


def iban_valid(iban: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 is 1."""
    if not iban.isalnum() or not iban.isascii() or len(iban) < 15:
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(char, 36)) for char in moved.upper())
    return int(number) % 97 == 1
