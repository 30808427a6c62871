"""The project's own SIPREC fixtures (tests/fixtures/siprec) and helpers to read and damage them.

Each fixture was written for this project to show one SRC dialect or framing
quirk; tests/fixtures/siprec/README.md says which file shows what.
"""

from __future__ import annotations

import random
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIPREC_FIXTURES = FIXTURES / "siprec"
OFFERS = SIPREC_FIXTURES / "offers"
PLAIN_SDPS = SIPREC_FIXTURES / "sdp"
METADATA = SIPREC_FIXTURES / "metadata"
MESSAGES = SIPREC_FIXTURES / "messages"


def offer(name: str) -> bytes:
    """The bytes of ``offers/<name>``: a multipart SIPREC body as the vendor frames it."""
    return (OFFERS / name).read_bytes()


def first_boundary(body: bytes) -> str:
    """The boundary of the first ``--boundary`` line of a multipart body (what an SRC's header names)."""
    line = next(line for line in body.decode("latin-1").splitlines() if line.startswith("--"))
    return line.strip()[2:]


def split_sip_message(raw: bytes) -> tuple[str, bytes]:
    """Content-Type and body of a full SIP message, split at the blank line (no SIP parser here)."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    content_type = ""
    for line in head.decode().split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-type", "c"):
            content_type = value.strip()
    return content_type, body


def mutate(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one to four random edits: flipped bytes, cuts, insertions, markup, truncation."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        pos = rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            del out[pos : pos + rng.randint(1, 40)]
        elif op == 2:
            out[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif op == 3:
            start = rng.randrange(len(out) + 1)
            out[pos:pos] = out[start : start + rng.randint(1, 80)]
        elif op == 4:
            out[pos:pos] = rng.choice(
                [b"<", b">", b"&", b"--", b"\r\n", b"\n\n", b"<!DOCTYPE x [", b"]]>", b'"']
            )
        else:
            del out[pos:]
    return bytes(out)
