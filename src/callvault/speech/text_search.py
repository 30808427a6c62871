"""Transcript text search, the pure part: tokens, the user's query, and where it matched.

The catalog's full-text engines (SQLite FTS5, PostgreSQL tsvector) are handed
text that this module has already tokenised: lower-case letters and digits,
accents folded, separated by single spaces. Both engines then see the same
tokens, so a search finds the same calls on either database, and the times of
the matching words are found here, in Python, against the same tokens.

A query is words and ``"quoted phrases"``; every word and phrase must be said
by the same side of the call (AND). A word ending in ``*`` matches as a prefix
(``refund*`` finds "refunds", "refunded"). Everything else the user types
(FTS operators, quotes left open, punctuation) is not syntax here: it
separates words and is otherwise ignored, so no input reaches an engine as an
operator. Control characters are refused (the search is audited with its text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from callvault.speech.transcript import ChannelTranscript

MAX_QUERY_CHARS = 500
MAX_TERMS = 16
MAX_PHRASE_TOKENS = 12
# Tokens per index row: well under PostgreSQL's 16,383 tsvector positions (about 55 minutes
# of one side talking non-stop at 150 words a minute).
PART_TOKENS = 8000
_OVERLAP_TOKENS = MAX_PHRASE_TOKENS - 1
# Letters and digits; the underscore is a separator in both engines' tokenisers.
_TOKEN = re.compile(r"[^\W_]+")
# What redaction (speech/pii.py) leaves in place of a word, e.g. "[card]": shown, never a word.
_REDACTION_TAG = re.compile(r"^\[[a-z]+\]$")
# A quoted phrase, a word with an optional prefix star, or one stray character.
_QUERY_PART = re.compile(r'"([^"]*)"|([^\s"]+)|(")')


class Unit(NamedTuple):
    """One timed stretch of a channel: a word, or a whole segment that came without words.

    A tuple, so the index's stored ``[start, end, text]`` lists serve as units as they are
    (a page of hits reads thousands of words; building an object for each costs more).
    """

    start: float
    end: float
    text: str


# A unit as stored: [start, end, text].
UnitRow = Sequence[Any]


@dataclass(frozen=True)
class Term:
    tokens: tuple[str, ...]  # one token for a word, several for a phrase
    prefix: bool = False  # the last token matches as a prefix


@dataclass(frozen=True)
class TextQuery:
    terms: tuple[Term, ...]

    def fts5(self) -> str:
        """The FTS5 MATCH expression: each term a quoted string (tokens cannot hold quotes)."""
        return " AND ".join(f'"{" ".join(t.tokens)}"' + ("*" if t.prefix else "") for t in self.terms)

    def tsquery(self) -> str:
        """The ``to_tsquery('simple', …)`` expression: phrases with ``<->``, prefixes with ``:*``."""
        return " & ".join("(" + " <-> ".join(t.tokens) + (":*" if t.prefix else "") + ")" for t in self.terms)


@dataclass(frozen=True)
class Match:
    start: float
    end: float
    text: str  # the matching words as transcribed
    snippet: str  # the words around them, for a result list


def tokens(text: str) -> list[str]:
    """The searchable tokens of ``text``: accents folded, case folded, letters and digits only."""
    if text.isascii():  # most words: nothing to fold
        return _TOKEN.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return _TOKEN.findall(folded)


def word_tokens(word: str) -> list[str]:
    """The tokens of one transcribed word; none for a redaction tag such as ``[card]``."""
    return [] if _REDACTION_TAG.match(word.strip()) else tokens(word)


def parse_query(text: str) -> TextQuery:
    """The user's search text as terms; ValueError with a message a user can act on."""
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"text is {len(text)} characters long; at most {MAX_QUERY_CHARS}")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in text):
        # Refused, not dropped: the search is audited with its text, and NUL cannot be stored.
        raise ValueError("text contains control characters")
    terms: list[Term] = []
    for phrase, word, _stray in _QUERY_PART.findall(text):
        if phrase:
            found = tokens(phrase)
            if len(found) > MAX_PHRASE_TOKENS:
                raise ValueError(f"a quoted phrase may hold at most {MAX_PHRASE_TOKENS} words")
            if found:
                terms.append(Term(tuple(found)))
        elif word:
            found = tokens(word)
            # "refund*" is a prefix; "e-mail" is the phrase "e mail", as the engines index it.
            prefix = word.endswith("*") and bool(found) and word.rstrip("*")[-1:].isalnum()
            if len(found) > 1:
                terms.append(Term(tuple(found), prefix=prefix))
            elif found:
                terms.append(Term((found[0],), prefix=prefix))
    if not terms:
        raise ValueError("text has no words to search for (letters or digits)")
    unique = tuple(dict.fromkeys(terms))
    if len(unique) > MAX_TERMS:
        raise ValueError(f"text has {len(unique)} words or phrases; at most {MAX_TERMS}")
    return TextQuery(unique)


def channel_units(channel: ChannelTranscript) -> list[Unit]:
    """The channel's words with their times; a segment without word times is one unit."""
    units: list[Unit] = []
    for segment in channel.segments:
        if segment.words:
            units += [Unit(w.start, w.end, w.text.strip()) for w in segment.words if tokens(w.text)]
        elif tokens(segment.text):
            units.append(Unit(segment.start, segment.end, segment.text.strip()))
    return units


def index_parts(units: Sequence[Unit], max_tokens: int = PART_TOKENS) -> list[list[Unit]]:
    """``units`` cut into parts of at most about ``max_tokens`` tokens, in time order.

    PostgreSQL keeps word positions only up to 16,383 in a tsvector: later words all sit at
    16,383, so phrases said after that never match. Each part but the first repeats the
    previous part's last words (at least ``MAX_PHRASE_TOKENS - 1`` tokens), so a phrase
    said across the cut is whole in one part. A channel that fits is one part.
    """
    parts: list[list[Unit]] = []
    current: list[Unit] = []
    count = 0
    for unit in units:
        size = len(word_tokens(unit.text))
        if current and count + size > max_tokens and count > _OVERLAP_TOKENS:
            parts.append(current)
            current = _tail(current)
            count = sum(len(word_tokens(u.text)) for u in current)
        current.append(unit)
        count += size
    if current:
        parts.append(current)
    return parts


def _tail(units: list[Unit]) -> list[Unit]:
    """The last units of a part holding at least ``_OVERLAP_TOKENS`` tokens."""
    tokens_seen, start = 0, len(units)
    while start > 0 and tokens_seen < _OVERLAP_TOKENS:
        start -= 1
        tokens_seen += len(word_tokens(units[start].text))
    return list(units[start:])


def indexed_text(units: Sequence[Unit]) -> str:
    """What the engines index for one channel: every unit's tokens, space-separated."""
    return " ".join(token for unit in units for token in word_tokens(unit.text))


def find_matches(
    units: Sequence[UnitRow], query: TextQuery, *, limit: int = 5, context_words: int = 6
) -> list[Match]:
    """Where each term of ``query`` occurs in ``units``, in time order, at most ``limit``.

    A page of results reads a few hundred words per hit; only the words that could start
    a term (an ASCII word containing a term's first token, or any other word) are tokenised.
    """
    firsts = {term.tokens[0] for term in query.terms}
    said = _Tokens(units)
    spans: set[tuple[int, int]] = set()
    for i, unit in enumerate(units):
        lowered = str(unit[2]).lower()
        if lowered.isascii() and not any(first in lowered for first in firsts):
            continue
        for j in range(len(said.of(i))):
            for term in query.terms:
                last = said.match(i, j, term)
                if last is not None:
                    spans.add((i, last))
    matches = []
    for first, last in sorted(spans)[:limit]:
        before = max(0, first - context_words)
        after = min(len(units), last + 1 + context_words)
        matches.append(
            Match(
                start=float(units[first][0]),
                end=float(units[last][1]),
                text=" ".join(str(u[2]) for u in units[first : last + 1]),
                snippet=("… " if before else "")
                + " ".join(str(u[2]) for u in units[before:after])
                + (" …" if after < len(units) else ""),
            )
        )
    return matches


class _Tokens:
    """The units' tokens, worked out when first needed."""

    def __init__(self, units: Sequence[UnitRow]) -> None:
        self._units = units
        self._known: dict[int, list[str]] = {}

    def of(self, i: int) -> list[str]:
        if i not in self._known:
            self._known[i] = word_tokens(str(self._units[i][2]))
        return self._known[i]

    def match(self, i: int, j: int, term: Term) -> int | None:
        """The index of the unit where ``term`` ends if it starts at token ``j`` of unit ``i``."""
        last = len(term.tokens) - 1
        for offset, wanted in enumerate(term.tokens):
            while j >= len(self.of(i)):  # on to the next unit with tokens (a tag has none)
                i, j = i + 1, 0
                if i >= len(self._units):
                    return None
            token = self.of(i)[j]
            if not (token.startswith(wanted) if offset == last and term.prefix else token == wanted):
                return None
            if offset < last:
                j += 1
        return i
