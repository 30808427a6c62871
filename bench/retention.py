"""Retention deletions per second on SQLite and PostgreSQL with the local vault.

Run: ``python bench/retention.py [--count 2000] [--baseline 300] [--db sqlite,postgresql]``.
Prints figures; not a test. PostgreSQL at ``CALLVAULT_BENCH_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``, a fresh schema).

For each catalog, ``--count`` recordings are sealed through the real recording
service (data key, encrypted object in a local vault, signed manifest, seal log;
4 KB of random audio each, three days old), a policy keeping recordings one day
is added, and the timed part is one ``retention run``: find what is due, check
holds, crypto-shred, scrub personal data, re-sign each tombstone into the seal
log, audit, delete every object, clear the markers. Deletions/s = count / time.

Baseline, same run and catalog: the one-at-a-time crypto-shred that existed
before retention (``RecordingService.destroy_audio_key``: one transaction, one
manifest signature, one seal log append and one object delete per recording)
over ``--baseline`` further recordings.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from callvault.services.access import Principal
from callvault.services.call_record import ArchiveAudio, CallRecord, ParticipantRecord, StreamRecord
from callvault.services.context import ServiceContext, open_context
from callvault.settings import load_settings

POSTGRES_URL = os.environ.get(
    "CALLVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SYSTEM = Principal.system()


@contextmanager
def catalog_url(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        yield ""
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def seal(ctx: ServiceContext, count: int, days_ago: float) -> list[str]:
    started = time.time() - days_ago * 86400
    ids = []
    for n in range(count):
        from datetime import UTC, datetime

        call = CallRecord(
            started_at=datetime.fromtimestamp(started + n, UTC),
            source="import",
            direction="inbound",
            calling_number=f"+1415555{n % 10000:04d}",
            called_number="+14155559999",
            participants=[ParticipantRecord(aor=f"+1415555{n % 10000:04d}", role="customer")],
        )
        audio = ArchiveAudio(os.urandom(4000), 8000, 2, 3.0)
        ids.append(ctx.recordings.store_new(call, audio, [StreamRecord("customer", "PCMU", 1)]))
    return ids


def measure(backend: str, count: int, baseline: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="cv-retention-bench-") as tmp, catalog_url(backend) as url:
        settings = load_settings(
            env={"CALLVAULT_DATA_DIR": str(Path(tmp) / "data"), "CALLVAULT_DATABASE_URL": url}
        )
        ctx = open_context(settings)
        try:
            singles = seal(ctx, baseline, days_ago=0)
            started = time.perf_counter()
            for recording_id in singles:
                ctx.recordings.destroy_audio_key(recording_id)
            single_rate = baseline / (time.perf_counter() - started)

            seal(ctx, count, days_ago=3)
            ctx.retention.add_policy(SYSTEM, {"name": "one day", "keep_days": 1})
            started = time.perf_counter()
            result = ctx.retention.run(SYSTEM)
            elapsed = time.perf_counter() - started
            assert result["count"] == count, result
            return count / elapsed, single_rate
        finally:
            ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=300)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'catalog':<12} {'retention run':>16} {'one-at-a-time (baseline)':>26} {'speed-up':>9}")
    for backend in [b.strip() for b in args.db.split(",") if b.strip()]:
        rate, single = measure(backend, args.count, args.baseline)
        print(f"{backend:<12} {rate:>11,.0f} del/s {single:>21,.0f} del/s {rate / single:>8.1f}x")
    print(f"({args.count} recordings per run, target >= 1,000 deletions/s)")


if __name__ == "__main__":
    main()
