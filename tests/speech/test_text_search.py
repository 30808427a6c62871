"""The pure part of transcript search: tokens, query parsing, where a query matched."""

from __future__ import annotations

import pytest

from callvault.speech.text_search import Term, TextQuery, Unit, find_matches, parse_query, tokens


def test_tokens_fold_case_and_accents_and_split_on_everything_else() -> None:
    assert tokens(" Déjà-vu, CAFÉ_au lait! don't 4111") == [
        "deja",
        "vu",
        "cafe",
        "au",
        "lait",
        "don",
        "t",
        "4111",
    ]


def test_words_phrases_and_prefixes() -> None:
    query = parse_query('refund "broken  Phone" cancel* e-mail')
    assert query.terms == (
        Term(("refund",)),
        Term(("broken", "phone")),
        Term(("cancel",), prefix=True),
        Term(("e", "mail")),
    )
    assert query.fts5() == '"refund" AND "broken phone" AND "cancel"* AND "e mail"'
    assert query.tsquery() == "(refund) & (broken <-> phone) & (cancel:*) & (e <-> mail)"


@pytest.mark.parametrize(
    ("hostile", "terms"),
    [
        ('refund" OR "x', [("refund",), ("or",), ("x",)]),
        ("NEAR(a b)", [("near", "a"), ("b",)]),
        ("refund:* & !phone", [("refund",), ("phone",)]),
        ('"unclosed phrase', [("unclosed",), ("phrase",)]),
        ("a <-> b", [("a",), ("b",)]),
        ("***x*", [("x",)]),
    ],
)
def test_engine_syntax_is_only_words(hostile: str, terms: list[tuple[str, ...]]) -> None:
    query = parse_query(hostile)
    assert [t.tokens for t in query.terms] == terms
    for term in query.terms:  # nothing but letters and digits reaches an engine's expression
        assert all(token.isalnum() for token in term.tokens)


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no words"), ('"" * ()', "no words"), ("a" * 501, "at most 500"), ("a\x00b", "control")],
)
def test_refusals(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_query(text)


def test_a_match_carries_the_times_of_its_words_and_a_snippet() -> None:
    words = "Hello I would like a Refund, please. A refund!".split()
    units = [Unit(float(i), i + 0.5, w) for i, w in enumerate(words)]
    matches = find_matches(units, TextQuery((Term(("a", "refund")),)), context_words=2)
    assert [(m.start, m.end, m.text) for m in matches] == [(4.0, 5.5, "a Refund,"), (7.0, 8.5, "A refund!")]
    assert matches[0].snippet == "… would like a Refund, please. A …"
    assert matches[1].snippet == "… Refund, please. A refund!"


def test_prefix_matches_and_limit() -> None:
    units = [Unit(float(i), i + 1.0, w) for i, w in enumerate("refunds refunded refund re".split())]
    matches = find_matches(units, parse_query("refund*"), limit=2)
    assert [m.text for m in matches] == ["refunds", "refunded"]
