"""Transcript full-text search latency: ``text=`` over 100,000 indexed transcripts, SQLite and PostgreSQL.

Run: ``python bench/search_text.py [--count 100000] [--db sqlite,postgresql] [--runs 15]``.
Prints figures; not a test. PostgreSQL at ``CALLVAULT_BENCH_POSTGRES_URL`` (as bench/web.py).

The catalog holds ``--count`` recordings in bench/web.py's shape (most calls other
agents', one in ten tagged), each with a transcript index row per side as
:class:`callvault.services.transcript_index.TranscriptIndex` writes them:
about five minutes of a call, ~300 words a side (Zipf-distributed words from a
2,000-word vocabulary, 0.35-0.45 s apart, with pauses), with the words searched for
planted at known rates: "refund" said by ~5 % of customers, "speak to a manager"
by 1 %, "chargeback" by 0.1 %, "thank" by nearly every agent. Sides are drawn
from 1,000 generated ones per kind (plain, or with a planted phrase) so that
100,000 recordings index in about a minute; each row is still indexed on its
own, so the engines' posting lists have their true sizes. The rows are inserted
in bulk: PostgreSQL's generated tsvector and GIN index are built as in
production; SQLite's FTS5 table is built once after the rows are in
(``'rebuild'``) instead of row by row by its insert trigger, the same index.

Each search goes through the JSON API (``/api/v1/recordings``, a bearer token) of
the application ``callvault serve`` runs, in process: routing, scope, the
full-text engine, the page, the count, the matches' word times, the audit entry.
Baseline: the same request without ``text=`` (and ``speaker=``), from the same
run. Reported: median and 95th percentile wall time and the median CPU time of
this process (ms; SQLite works in process, PostgreSQL in its own: only in the wall time).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Text,
    TypeDecorator,
    cast,
    column,
    insert,
    select,
    table,
)
from sqlalchemy.sql.expression import TableClause

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.web import SYSTEM, catalog_url, populate, staff, timed  # noqa: E402

from callvault.api.app import create_app  # noqa: E402
from callvault.db.models import Recording  # noqa: E402
from callvault.services.context import ServiceContext, open_context  # noqa: E402
from callvault.settings import load_settings  # noqa: E402

WORDS_PER_SIDE = 300
BATCH = 2000
VOCABULARY = 2000
# (side, words planted, share of recordings)
PLANTED = [
    ("customer", "i would like a refund", 0.05),
    ("customer", "can i speak to a manager", 0.01),
    ("customer", "i will file a chargeback", 0.001),
    ("agent", "thank you for calling", 0.95),
]
SEARCHES = [
    ("carol", "refund (5 %)", {"text": "refund"}, {}),
    ("carol", "refund, customer", {"text": "refund", "speaker": "customer"}, {}),
    ("carol", '"speak to a manager" (1 %)', {"text": '"speak to a manager"'}, {}),
    ("carol", "chargeback (0.1 %)", {"text": "chargeback"}, {}),
    ("carol", "thank (95 %)", {"text": "thank"}, {}),
    ("carol", "refun* (prefix)", {"text": "refun*"}, {}),
    ("carol", "absent word (no hit)", {"text": "zyzzyva"}, {}),
    ("carol", "refund + queue-3", {"text": "refund"}, {"queue": "queue-3"}),
    ("carol", "refund + tag complaint", {"text": "refund"}, {"tag": "complaint"}),
    ("carol", "refund, longest first", {"text": "refund"}, {"sort": "-duration"}),
    ("sam", "supervisor: refund", {"text": "refund"}, {}),
    ("alice", "agent: refund", {"text": "refund"}, {}),
]


def vocabulary(rng: np.random.Generator) -> list[str]:
    """Made-up words, 3-9 letters, none of them the planted ones."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    made = {"".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(VOCABULARY * 2)}
    planted = {w for _, phrase, _ in PLANTED for w in phrase.split()} | {"zyzzyva"}
    return sorted(made - planted)[:VOCABULARY]


def side_words(
    rng: np.random.Generator, words: list[str], ranks: np.ndarray, planted: list[str]
) -> list[str]:
    said = [words[r] for r in ranks]
    for phrase in planted:
        at = int(rng.integers(0, len(said)))
        said[at:at] = phrase.split()
    return said


def timed_words(rng: np.random.Generator, said: list[str]) -> list[list[Any]]:
    """[start, end, text] per word: 0.3-0.4 s each, a pause of 1.5 s before one in twelve."""
    starts = np.cumsum(rng.uniform(0.35, 0.45, len(said)) + (rng.random(len(said)) < 0.08) * 1.5)
    ends = starts + 0.3
    return [[s, e, w] for s, e, w in zip(starts.round(2).tolist(), ends.round(2).tolist(), said, strict=True)]


# Distinct sides generated per kind of side (agent or customer, and which phrases it says);
# each recording's side is one of them. Every row is indexed on its own, so the engines'
# posting lists have their true sizes.
TEMPLATES = 1000


class JsonText(TypeDecorator[str]):
    """JSON made beforehand, sent as text and cast to json by PostgreSQL (SQLite keeps text)."""

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue: Any) -> Any:
        return cast(bindvalue, JSON)


def index_table(words: type[Text] | type[JsonText]) -> TableClause:
    """The index table as plain columns: the words go in as JSON text made once per template."""
    return table(
        "transcript_index",
        column("recording_id", String),
        column("speaker", String),
        column("part", Integer),
        column("parts", Integer),
        column("tokens", Text),
        column("words", words()),
        column("indexed_at", DateTime(timezone=True)),
    )


def made_side(
    rng: np.random.Generator, words: list[str], weights: np.ndarray, per_side: int, planted: list[str]
) -> tuple[str, str]:
    """(tokens, words as JSON) of one side saying ``planted`` among ``per_side`` Zipf words."""
    said = side_words(rng, words, rng.choice(len(words), size=per_side, p=weights), planted)
    return " ".join(said), json.dumps(timed_words(rng, said), separators=(",", ":"))


def index_rows(ctx: ServiceContext, count: int, per_side: int = WORDS_PER_SIDE, seed: int = 7) -> float:
    """Two transcript index rows per recording, inserted in bulk; returns the seconds it took."""
    rng = np.random.default_rng(seed)
    words = vocabulary(rng)
    weights = 1.0 / np.arange(1, len(words) + 1)
    weights /= weights.sum()
    with ctx.catalog.read() as session:
        ids = list(session.scalars(select(Recording.id).order_by(Recording.started_at)))
    now = datetime.now(UTC)
    started = time.perf_counter()
    templates: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}

    def side_for(side: str, planted: list[str]) -> tuple[str, str]:
        made = templates.setdefault((side, tuple(planted)), [])
        if len(made) < TEMPLATES:
            made.append(made_side(rng, words, weights, per_side, planted))
            return made[-1]
        return made[int(rng.integers(0, TEMPLATES))]

    with bulk_fts(ctx):
        for first in range(0, len(ids), BATCH):
            insert_batch(ctx, rng, ids[first : first + BATCH], side_for, now)
    with ctx.catalog.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


@contextmanager
def bulk_fts(ctx: ServiceContext) -> Iterator[None]:
    """SQLite: the FTS5 table built once after the rows are in ('rebuild'), not row by row by
    its insert trigger (a merge of small segments per batch: most of the writing). What is
    searched afterwards is the same index."""
    if not ctx.catalog.is_sqlite:
        yield
        return
    with ctx.catalog.engine.begin() as conn:
        trigger = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'transcript_index_ai'"
        ).scalar_one()
        conn.exec_driver_sql("DROP TRIGGER transcript_index_ai")
    try:
        yield
    finally:
        with ctx.catalog.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO transcript_fts(transcript_fts) VALUES ('rebuild')")
            conn.exec_driver_sql(trigger)


def insert_batch(
    ctx: ServiceContext,
    rng: np.random.Generator,
    ids: list[str],
    side_for: Callable[[str, list[str]], tuple[str, str]],
    now: datetime,
) -> None:
    """Both sides of each recording, what each says planted at the shares of PLANTED."""
    rows: list[dict[str, Any]] = []
    for recording_id in ids:
        for side in ("agent", "customer"):
            planted = [p for s, p, share in PLANTED if s == side and rng.random() < share]
            tokens, timed = side_for(side, planted)
            rows.append(
                {
                    "recording_id": recording_id,
                    "speaker": side,
                    "part": 0,
                    "parts": 1,
                    "tokens": tokens,
                    "words": timed,
                    "indexed_at": now,
                }
            )
    with ctx.catalog.write() as session:
        session.execute(insert(index_table(Text if ctx.catalog.is_sqlite else JsonText)), rows)


def request(client: TestClient, token: str, params: dict[str, str]) -> Callable[[], object]:
    path = "/api/v1/recordings?" + urlencode(params)

    def call() -> object:
        answer = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        return answer

    return call


def measure(backend: str, count: int, runs: int, per_side: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cv-text-bench-") as tmp, catalog_url(backend) as url:
        settings = load_settings(
            env={"CALLVAULT_DATA_DIR": str(Path(tmp) / "data"), "CALLVAULT_DATABASE_URL": url}
        )
        ctx = open_context(settings)
        try:
            people = staff(ctx)
            populate(ctx, people, count)
            seconds = index_rows(ctx, count, per_side)
            client = TestClient(create_app(ctx))
            tokens = {
                name: ctx.users.create_token(SYSTEM, name, "bench") for name in ("carol", "sam", "alice")
            }
            print(
                f"\n{backend}: {count:,} recordings, {2 * count:,} indexed sides of ~{per_side} words"
                f" ({seconds:.0f} s to index)"
            )
            print(
                f"  {'search':<30} {'text=: median / p95 (cpu)':>30} {'hits':>7}"
                f" {'without text= (baseline)':>34}"
            )
            for who, label, said, filters in SEARCHES:
                with_text = {**filters, **said}
                hits = json.loads(request(client, tokens[who], with_text)().text)["total"]  # type: ignore[attr-defined]
                text_ms = timed(request(client, tokens[who], with_text), runs)
                base_ms = timed(request(client, tokens[who], filters), runs)
                print(
                    f"  {label:<30} {text_ms[0]:>9.1f} / {text_ms[1]:>7.1f} ({text_ms[2]:>6.1f}) {hits:>7,}"
                    f" {base_ms[0]:>15.1f} / {base_ms[1]:>7.1f} ({base_ms[2]:>6.1f})",
                    flush=True,
                )
        finally:
            ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument(
        "--words", type=int, default=WORDS_PER_SIDE, help="words a side (300: a 5-minute call)"
    )
    args = parser.parse_args()
    for backend in [b.strip() for b in args.db.split(",") if b.strip()]:
        measure(backend, args.count, args.runs, args.words)


if __name__ == "__main__":
    main()
