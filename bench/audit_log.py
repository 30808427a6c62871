"""What the hash chain costs: audit appends per second and verification speed, on both databases.

Run: ``python bench/audit_log.py [--entries 5000] [--postgres URL]``. Prints figures; not a test.

* Append: ``AccessLog.record_event`` end to end (one write transaction per
  event, as every API request writes it), chained (the service's path: lock,
  read the head, hash, insert) versus the same insert without the chain
  columns (the pre-chain baseline, same transaction shape), single writer.
* Verify: ``AuditVerifier.verify`` over the whole log (read, recompute every
  hash, walk the links, check checkpoints), entries per second.

The PostgreSQL run uses a fresh schema in the given database (default: the
test server at 127.0.0.1) and drops it afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from callvault.services.access import Principal
from callvault.services.audit_verify import AuditVerifier
from callvault.services.context import open_context
from callvault.settings import load_settings

ADMIN = Principal.system()


def _plain_insert(catalog: Catalog, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        with catalog.write() as session:
            session.add(
                AccessEvent(
                    at=datetime.now(UTC), username="bench", action="play", detail=f"{i}", outcome="ok"
                )
            )
    return time.perf_counter() - started


def run(label: str, data_dir: Path, database_url: str, entries: int) -> None:
    settings = load_settings(
        env={"CALLVAULT_DATA_DIR": str(data_dir), "CALLVAULT_DATABASE_URL": database_url}
    )
    ctx = open_context(settings)
    try:
        baseline = _plain_insert(ctx.catalog, entries)
        with ctx.catalog.engine.begin() as conn:
            # The unchained baseline rows would read as inserted entries: leave them out of the chain walk.
            if ctx.catalog.is_sqlite:
                conn.execute(text("DROP TRIGGER access_events_no_delete"))
            else:
                conn.execute(text("ALTER TABLE access_events DISABLE TRIGGER access_events_append_only"))
            conn.execute(text("DELETE FROM access_events"))
        started = time.perf_counter()
        for i in range(entries):
            ctx.access_log.record_event("play", "ok", username="bench", detail=f"{i}")
        chained = time.perf_counter() - started
        ctx.audit_log.checkpoint()
        verifier = AuditVerifier(ctx.catalog, ctx.signer, ctx.audit_log)
        started = time.perf_counter()
        report = verifier.verify(ADMIN)
        verify_s = time.perf_counter() - started
        assert report.ok, [p.line() for p in report.problems]
        print(
            f"{label:10s} append chained {chained / entries * 1e6:7.0f} µs/entry "
            f"({entries / chained:6.0f}/s) | baseline unchained {baseline / entries * 1e6:7.0f} µs "
            f"({entries / baseline:6.0f}/s) | verify {report.entries / verify_s:8.0f} entries/s "
            f"({report.entries} in {verify_s:.2f} s)"
        )
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", Path(tmp) / "sqlite", "", args.entries)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            run(
                "postgresql",
                Path(tmp) / "pg",
                f"{args.postgres}?options=-csearch_path%3D{schema}",
                args.entries,
            )
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
