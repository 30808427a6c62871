"""Web UI page times: search over 100,000 catalogued recordings, and a one-hour call's recording page.

Run: ``python bench/web.py [--count 100000] [--db sqlite,postgresql] [--runs 15]``.
Prints figures; not a test. PostgreSQL at ``CALLVAULT_BENCH_POSTGRES_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``, a fresh schema).

Each request goes through the application `callvault serve` runs (API + web UI,
in process, with a signed-in session cookie), so a time is the server's: routing,
session check, services, catalog, template. Reported: median and 95th percentile.

Searches, as a compliance officer (all recordings) and a supervisor (team scope),
over ``--count`` rows in the shape of tests/api/test_limits_and_indexes.py (most
calls belong to other agents; one in ten tagged): the first page, by customer
number written another way, by agent, by tag, by team, by a day sorted by length.
Baseline: the same search through the JSON API (``/api/v1/recordings``), i.e. what
the page adds.

The recording page of a one-hour call (sealed through the recording service):
the HTML page, the peaks the player asks for (cached, as after sealing), the
first 64 KiB of audio; and, as the baseline, the first peaks of a call whose peaks
were never computed (decoding the whole archive, what a page without the cache
would wait for).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from callvault.db.models import Call, Recording, RecordingTag  # noqa: E402
from callvault.db.web_models import RecordingPeaks  # noqa: E402
from callvault.media.archive import encode_archive  # noqa: E402
from callvault.services.access import Principal  # noqa: E402
from callvault.services.call_record import ArchiveAudio, CallRecord, StreamRecord  # noqa: E402
from callvault.services.context import ServiceContext, open_context  # noqa: E402
from callvault.settings import load_settings  # noqa: E402
from callvault.web.app import create_app  # noqa: E402

POSTGRES_URL = os.environ.get(
    "CALLVAULT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SYSTEM = Principal.system()
PASSWORD = "bench-vault-passphrase"
HOUR = 3600


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


def staff(ctx: ServiceContext) -> dict[str, Principal]:
    made = {}
    for name, role, team, identities in (
        ("alice", "agent", "red", ["sip:1001@pbx.example"]),
        ("bob", "agent", "blue", []),
        ("sam", "supervisor", "red", []),
        ("carol", "compliance_officer", None, []),
    ):
        ctx.users.create_user(SYSTEM, name, role, team=team, sip_identities=identities, password=PASSWORD)
        made[name] = ctx.users.authenticate_password(name, PASSWORD)
    return made


def populate(ctx: ServiceContext, people: dict[str, Principal], count: int) -> None:
    agents = [people["alice"], people["bob"]]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    calls, recordings, tags = [], [], []
    for i in range(count):
        agent = agents[i % 20] if i % 20 < len(agents) else None
        started = base + timedelta(minutes=i // 3)
        call_id, recording_id = str(uuid.UUID(int=i + 1)), str(uuid.uuid4())
        calls.append({"id": call_id, "started_at": started, "source": "import"})
        recordings.append(
            {
                "id": recording_id,
                "call_id": call_id,
                "status": "complete",
                "started_at": started,
                "duration_seconds": float(i % 600),
                "direction": "inbound",
                "queue": f"queue-{i % 20}",
                "customer_number": f"+1415555{i % 5000:04d}",
                "agent_user_id": agent.user_id if agent else None,
                "team_id": agent.team_id if agent else None,
                "format": "ogg-opus",
                "mixed": False,
                "created_at": started,
            }
        )
        if i % 10 == 0:
            tags.append({"recording_id": recording_id, "tag": "complaint" if i % 20 == 0 else "sale"})
    with ctx.catalog.write() as session:
        for start in range(0, count, 20000):
            session.execute(insert(Call), calls[start : start + 20000])
            session.execute(insert(Recording), recordings[start : start + 20000])
        session.execute(insert(RecordingTag), tags)
    with ctx.catalog.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def one_hour_call(ctx: ServiceContext) -> str:
    """A one-hour call of alice's, agent and customer taking turns of 20 s, sealed."""
    rate, n = 8000, HOUR * 8000
    rng = np.random.default_rng(1)
    turn = (np.arange(n) // (20 * rate)) % 2 == 0
    speech = (rng.standard_normal(n) * 4000).astype(np.int16)
    pcm = np.stack([np.where(turn, speech, 0), np.where(turn, 0, speech)]).astype(np.int16)
    archive = encode_archive(pcm, rate)
    call = CallRecord(
        started_at=datetime(2026, 6, 1, 9, tzinfo=UTC),
        source="import",
        direction="inbound",
        calling_number="+14155550123",
        called_number="+14155559999",
    )
    return ctx.recordings.store_new(
        call, ArchiveAudio(archive, rate, 2, float(HOUR)), [StreamRecord("agent", "PCMU", 0)]
    )


def signed_in(app: object, username: str) -> TestClient:
    client = TestClient(app, headers={"Accept": "text/html"})  # type: ignore[arg-type]
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    answer = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def timed(request: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """Median and 95th percentile wall time, and median CPU time of this process (ms): on a
    shared, loaded machine the CPU time says what a request costs, the wall time what it waited.
    (PostgreSQL's own CPU is in another process: only in the wall time.)"""
    request()  # warm: first plan, template compilation
    times, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        request()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    times.sort()
    return (
        statistics.median(times),
        times[min(len(times) - 1, int(len(times) * 0.95))],
        statistics.median(cpu),
    )


def check(client: TestClient, path: str, headers: dict[str, str] | None = None) -> Callable[[], object]:
    def call() -> object:
        answer = client.get(path, headers=headers or {})
        assert answer.status_code in (200, 206), (path, answer.status_code, answer.text[:300])
        return answer

    return call


SEARCHES = [
    ("carol", "first page, newest first", ""),
    ("carol", "customer (415) 555-0042", "customer=%28415%29+555-0042"),
    ("carol", "agent alice", "agent=alice"),
    ("carol", "tag complaint", "tag=complaint"),
    ("carol", "team red", "team=red"),
    ("carol", "one day, longest first", "from=2026-02-01T00:00&to=2026-02-02T00:00&sort=-duration"),
    ("sam", "supervisor: first page", ""),
    ("sam", "supervisor: tag sale", "tag=sale"),
]


def measure(backend: str, count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cv-web-bench-") as tmp, catalog_url(backend) as url:
        settings = load_settings(
            env={"CALLVAULT_DATA_DIR": str(Path(tmp) / "data"), "CALLVAULT_DATABASE_URL": url}
        )
        ctx = open_context(settings)
        try:
            people = staff(ctx)
            populate(ctx, people, count)
            app = create_app(ctx)
            clients = {name: signed_in(app, name) for name in ("carol", "sam")}
            tokens = {name: ctx.users.create_token(SYSTEM, name, "bench") for name in clients}
            print(f"\n{backend}: {count:,} recordings · ms, median / p95")
            print(f"  {'search':<34} {'page: median / p95 (cpu)':>28} {'JSON API (baseline)':>28}")
            for who, label, query in SEARCHES:
                page = timed(check(clients[who], f"/recordings?{query}"), runs)
                api = timed(
                    check(
                        clients[who],
                        f"/api/v1/recordings?{query}",
                        {"Authorization": f"Bearer {tokens[who]}"},
                    ),
                    runs,
                )
                print(
                    f"  {label:<34} {page[0]:>7.1f} / {page[1]:>7.1f} ({page[2]:>6.1f})"
                    f" {api[0]:>9.1f} / {api[1]:>7.1f} ({api[2]:>6.1f})"
                )
            started = time.perf_counter()
            recording_id = one_hour_call(ctx)
            sealed = time.perf_counter() - started
            ctx.waveforms.close()  # the seal-time computation has finished (or never began)
            carol = clients["carol"]
            with ctx.catalog.write() as session:
                session.execute(delete(RecordingPeaks).where(RecordingPeaks.recording_id == recording_id))
            started = time.perf_counter()
            check(carol, f"/recordings/{recording_id}/peaks?points=2000")()
            cold = (time.perf_counter() - started) * 1000
            print(f"  one-hour call (sealed in {sealed:.1f} s)")
            for label, path, headers in (
                ("recording page", f"/recordings/{recording_id}", None),
                ("peaks, 2000 points (cached)", f"/recordings/{recording_id}/peaks?points=2000", None),
                ("first 64 KiB of audio", f"/recordings/{recording_id}/audio", {"Range": "bytes=0-65535"}),
            ):
                median, p95, cpu = timed(check(carol, path, headers), runs)
                print(f"  {label:<34} {median:>7.1f} / {p95:>7.1f} ({cpu:>6.1f})")
            print(f"  {'peaks never computed (baseline)':<34} {cold:>6.0f} ms once")
        finally:
            ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in [b.strip() for b in args.db.split(",") if b.strip()]:
        measure(backend, args.count, args.runs)
    print("\n(target: under 200 ms server time for each page)")


if __name__ == "__main__":
    main()
